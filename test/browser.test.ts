/**
 * The demo in real Chromium (Debian's /usr/bin/chromium, driven by playwright-core): the page loads,
 * trains in its worker and reaches an accuracy floor on the quick set, and — the design's promise —
 * the same spec, data order and seed give bit-identical weights in Node and in the browser.
 * A screenshot is saved to test/.tmp/artifacts/. Skipped (with a reason printed) only when no
 * Chromium is installed; CI installs it, so there these tests always run.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createModel } from '../src/nn/create.js';
import { preset } from '../src/nn/presets.js';
import { fit } from '../src/train/fit.js';
import { prepareWebData } from '../web/prepare-data.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const artifacts = fileURLToPath(new URL('./.tmp/artifacts/', import.meta.url));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium)
  console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

describe.runIf(process.env.CI)('CI', () => {
  it(`has Chromium at ${CHROMIUM} (.ci/run installs it), so the browser tests below run`, () => {
    expect(haveChromium).toBe(true);
  });
});

describe.runIf(haveChromium)('the demo in Chromium', () => {
  let server: ViteDevServer;
  let browser: Browser;
  let page: Page;
  let url: string;

  beforeAll(async () => {
    prepareWebData(['quick']);
    mkdirSync(artifacts, { recursive: true });
    server = await createServer({
      configFile: fileURLToPath(new URL('../web/vite.config.ts', import.meta.url)),
      server: { port: 0, host: '127.0.0.1' },
      logLevel: 'error',
    });
    await server.listen();
    url = server.resolvedUrls!.local[0]!;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(url);
    await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('trains mlp-128 on the quick set in the worker and reaches ≥ 90% test accuracy', async () => {
    await page.selectOption('select[name=dataset]', 'quick');
    await page.selectOption('select[name=model]', 'mlp-128');
    await page.fill('input[name=epochs]', '2');
    await page.click('#train');
    await page.waitForSelector('body[data-state="trained"]', { timeout: 120_000 });
    const rows = await page.locator('#epochs tbody tr').count();
    expect(rows).toBe(2);
    const text = (await page.textContent('#accuracy'))!;
    expect(Number.parseFloat(text)).toBeGreaterThanOrEqual(90);
    expect(await page.isVisible('#error')).toBe(false);
    await page.screenshot({ path: `${artifacts}demo-trained.png`, fullPage: true });
  }, 180_000);

  it('gives bit-identical weights to Node for the same spec, data order and seed', async () => {
    const spec = preset('mlp-128-64')!;
    const options = {
      epochs: 1,
      batchSize: 32,
      seed: 7,
      limit: 640,
      optimizer: { type: 'adam' as const, learningRate: 1e-3 },
    };
    const browserHash = await page.evaluate(
      async ({ spec, options }) => {
        const { client } = (
          window as unknown as {
            mnistDemo: { client: import('../src/browser/client.js').TrainerClient };
          }
        ).mnistDemo;
        await client.loadData('quick', './data/');
        await client.train(spec, options);
        return client.weightsHash();
      },
      { spec, options },
    );
    const quick = loadMnistQuick();
    const model = createModel(spec, { seed: options.seed });
    fit(model, { train: subset(quick.train, 0, options.limit), test: quick.test }, { ...options });
    const nodeHash = createHash('sha256').update(model.parameters()).digest('hex');
    expect(browserHash).toMatch(/^[0-9a-f]{64}$/);
    expect(browserHash).toBe(nodeHash);
  }, 180_000);
});
