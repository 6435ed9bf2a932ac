/**
 * Drives the demo from Node: serve web/ with Vite on 127.0.0.1 and open it in Debian's Chromium
 * through playwright-core (never a downloaded browser). Used by the browser tests and benchmarks.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { prepareWebData, WEB_DIR } from './prepare-data.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveChromium = (): boolean => existsSync(CHROMIUM);
/** Headless flags for this machine's closed network (see the developers' brief). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Demo {
  server: ViteDevServer;
  browser: Browser;
  page: Page;
  url: string;
  close(): Promise<void>;
}

/** Prepare the data, start the server and the browser, and wait until the page's engine is ready. */
export async function openDemo(
  datasets: readonly ('quick' | 'mnist')[] = ['quick'],
): Promise<Demo> {
  prepareWebData(datasets);
  const server = await createServer({
    configFile: join(WEB_DIR, 'vite.config.ts'),
    server: { port: 0, host: '127.0.0.1' },
    logLevel: 'error',
  });
  await server.listen();
  const url = server.resolvedUrls!.local[0]!;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
  return {
    server,
    browser,
    page,
    url,
    close: async () => {
      await browser.close();
      await server.close();
    },
  };
}
