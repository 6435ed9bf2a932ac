/**
 * Training on several threads in Chromium's worker (Debian's /usr/bin/chromium, driven by
 * playwright-core with web/harness.ts's flags): on the demo served cross-origin isolated (COOP +
 * COEP, web/vite.config.ts), `?threads=2` runs two threads — the trainer and one nested helper
 * worker on a shared memory — and gives the weights of `?threads=1`, bit for bit, and of Node on
 * two threads, with the baseline build pinned everywhere; the Threads select restarts the engine.
 * Served without those headers, `?threads=2` falls back to one thread, says why on the page, and
 * still trains. Skipped (with a reason printed) only when no Chromium is installed.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, loadConfigFromFile } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrainerClient } from '../src/browser/client.js';
import type { TrainRequestOptions } from '../src/browser/protocol.js';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import { createModel } from '../src/nn/create.js';
import { preset } from '../src/nn/presets.js';
import type { ModelSpec } from '../src/nn/spec.js';
import { fit } from '../src/train/fit.js';
import { CHROMIUM, CHROMIUM_FLAGS, haveChromium } from '../web/harness.js';
import { prepareWebData, WEB_DIR } from '../web/prepare-data.js';

if (!haveChromium())
  console.warn(
    `browser threads tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`,
  );

const spec = preset('mlp-128')!;
/** Big enough that every GEMM but the 10-wide output layer's and every Adam step are split. */
const options: TrainRequestOptions = {
  epochs: 1,
  batchSize: 32,
  seed: 7,
  limit: 640,
  optimizer: { type: 'adam', learningRate: 1e-3 },
};

/** The demo served by Vite with web/vite.config.ts, with or without its COOP/COEP headers. */
async function serveDemo(isolated: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const file = join(WEB_DIR, 'vite.config.ts');
  const { config } = (await loadConfigFromFile({ command: 'serve', mode: 'development' }, file))!;
  const server = await createServer({
    ...config,
    configFile: false,
    logLevel: 'error',
    server: { ...config.server, port: 0, headers: isolated ? config.server?.headers : {} },
  });
  await server.listen();
  return { url: server.resolvedUrls!.local[0]!, close: () => server.close() };
}

async function openPage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
  return page;
}

/** Train `spec` on the first `options.limit` quick-set images in the page's worker. */
async function trainInPage(page: Page): Promise<{ hash: string; threads: number | undefined }> {
  return page.evaluate(
    async ({ spec, options }: { spec: ModelSpec; options: TrainRequestOptions }) => {
      const { client } = (window as unknown as { mnistDemo: { client: TrainerClient } }).mnistDemo;
      await client.loadData('quick', './data/');
      await client.train(spec, options);
      return { hash: await client.weightsHash(), threads: client.threads };
    },
    { spec, options },
  );
}

describe.runIf(haveChromium())('training on threads in the browser worker', () => {
  let browser: Browser;

  beforeAll(async () => {
    prepareWebData(['quick']);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('?threads=2 on the isolated demo trains the weights of one thread and of Node, bit for bit', async () => {
    const demo = await serveDemo(true);
    try {
      const two = await openPage(browser, `${demo.url}?simd=baseline&threads=2`);
      expect(await two.evaluate(() => crossOriginIsolated)).toBe(true);
      expect(await two.getAttribute('body', 'data-threads')).toBe('2');
      expect(await two.getAttribute('body', 'data-simd')).toBe('baseline');
      expect(await two.textContent('#engine')).toContain('2 threads');
      expect(await two.isVisible('#threads-notice')).toBe(false);
      const onTwo = await trainInPage(two);
      expect(onTwo.threads).toBe(2);
      expect(onTwo.hash).toMatch(/^[0-9a-f]{64}$/);
      // The trainer and its helper (playwright lists nested workers too). A new model gets a new
      // engine and helper; the replaced model's helper is terminated, so the count stays at 2.
      expect(two.workers().length).toBe(2);
      expect((await trainInPage(two)).hash).toBe(onTwo.hash);
      await expect.poll(() => two.workers().length, { timeout: 10_000 }).toBe(2);

      const one = await openPage(browser, `${demo.url}?simd=baseline&threads=1`);
      expect(await one.getAttribute('body', 'data-threads')).toBe('1');
      const onOne = await trainInPage(one);
      expect(onOne.hash).toBe(onTwo.hash);

      // The select restarts the engine on two threads; a new model gets a new pool.
      await one.selectOption('select[name=threads]', '2');
      await one.waitForSelector('body[data-threads="2"]', { timeout: 30_000 });
      expect(new URL(one.url()).searchParams.get('threads')).toBe('2');
      const again = await trainInPage(one);
      expect(again).toEqual(onTwo);

      const engine = createEngine({ simd: 'baseline', threads: 2 });
      try {
        const quick = loadMnistQuick();
        const model = createModel(spec, { seed: options.seed, engine });
        fit(model, { train: subset(quick.train, 0, options.limit!), test: quick.test }, options);
        expect(createHash('sha256').update(model.parameters()).digest('hex')).toBe(onTwo.hash);
      } finally {
        engine.close();
      }
    } finally {
      await demo.close();
    }
  }, 120_000);

  it('?threads=2 on a page that is not cross-origin isolated runs one thread and says why', async () => {
    const demo = await serveDemo(false);
    try {
      const page = await openPage(browser, `${demo.url}?threads=2`);
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
      expect(await page.getAttribute('body', 'data-threads')).toBe('1');
      expect(await page.textContent('#engine')).toContain('1 thread.');
      expect(await page.isVisible('#threads-notice')).toBe(true);
      const notice = (await page.textContent('#threads-notice'))!;
      expect(notice).toContain('threads: 1');
      expect(notice).toContain('not cross-origin isolated');
      expect(notice).toContain('Cross-Origin-Embedder-Policy: require-corp');

      await page.selectOption('select[name=dataset]', 'quick');
      await page.selectOption('select[name=model]', 'mlp-128');
      await page.fill('input[name=epochs]', '1');
      await page.click('#train');
      await page.waitForSelector('body[data-state="trained"]', { timeout: 60_000 });
      expect(await page.isVisible('#error')).toBe(false);
      expect(Number.parseFloat((await page.textContent('#accuracy'))!)).toBeGreaterThanOrEqual(85);
    } finally {
      await demo.close();
    }
  }, 120_000);
});
