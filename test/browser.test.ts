/**
 * The demo in real Chromium (Debian's /usr/bin/chromium, driven by playwright-core): the page loads,
 * trains in its worker and reaches an accuracy floor on the quick set, and — the design's promise —
 * the same spec, data order and seed give bit-identical weights in Node and in the browser, for
 * each kernel build (baseline SIMD and relaxed SIMD) pinned on both sides.
 * A screenshot is saved to test/.tmp/artifacts/. Skipped (with a reason printed) only when no
 * Chromium is installed; CI installs it, so there these tests always run.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import { createModel } from '../src/nn/create.js';
import { preset } from '../src/nn/presets.js';
import { fit } from '../src/train/fit.js';
import { CHROMIUM, haveChromium, openDemo, type Demo } from '../web/harness.js';

const artifacts = fileURLToPath(new URL('./.tmp/artifacts/', import.meta.url));
if (!haveChromium())
  console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

describe.runIf(process.env.CI)('CI', () => {
  it(`has Chromium at ${CHROMIUM} (.ci/run installs it), so the browser tests below run`, () => {
    expect(haveChromium()).toBe(true);
  });
});

describe.runIf(haveChromium())('the demo in Chromium', () => {
  let demo: Demo;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    demo = await openDemo(['quick', 'mnist']);
    page = demo.page;
  }, 180_000);

  afterAll(async () => {
    await demo?.close();
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

  it('trains mlp-256-128 on the full MNIST to ≥ 97.5% while the page stays responsive (no long main-thread tasks)', async () => {
    // Long tasks (> 50 ms on the main thread) are what makes a page feel frozen.
    await page.evaluate(() => {
      const w = window as unknown as { longTasks: number[] };
      w.longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.longTasks.push(e.duration);
      }).observe({ type: 'longtask', buffered: false });
    });
    await page.selectOption('select[name=dataset]', 'mnist');
    await page.selectOption('select[name=model]', 'mlp-256-128');
    await page.fill('input[name=epochs]', '5');
    await page.evaluate(() => delete document.body.dataset.state);
    const started = Date.now();
    await page.click('#train');
    await page.waitForSelector('body[data-state="trained"]', { timeout: 150_000 });
    const seconds = (Date.now() - started) / 1000;
    const accuracy = Number.parseFloat((await page.textContent('#accuracy'))!);
    const longTasks = await page.evaluate(
      () => (window as unknown as { longTasks: number[] }).longTasks,
    );
    const samplesPerSecond = await page.evaluate(() =>
      [...document.querySelectorAll('#epochs tbody tr')].map((tr) =>
        Number(tr.lastElementChild!.textContent!.replace(/,/g, '')),
      ),
    );
    console.log(
      `Chromium: mlp-256-128 on MNIST, 5 epochs in ${seconds.toFixed(1)} s, ${accuracy}% test, samples/s per epoch ${samplesPerSecond.join(', ')}; ` +
        `main-thread long tasks: ${longTasks.length} (max ${Math.max(0, ...longTasks).toFixed(0)} ms)`,
    );
    expect(accuracy).toBeGreaterThanOrEqual(97.5);
    expect(Math.max(0, ...longTasks)).toBeLessThan(200);
    expect(longTasks.reduce((a, b) => a + b, 0)).toBeLessThan(0.05 * seconds * 1000);
    await page.screenshot({ path: `${artifacts}demo-mnist.png`, fullPage: true });
  }, 200_000);

  it('pauses, resumes and stops training in the worker', async () => {
    await page.selectOption('select[name=dataset]', 'mnist');
    await page.selectOption('select[name=model]', 'mlp-256-128');
    await page.fill('input[name=epochs]', '3');
    await page.evaluate(() => delete document.body.dataset.state);
    await page.click('#train');
    await page.waitForFunction(
      () => /batch \d+/.test(document.querySelector('#status')!.textContent!),
      null,
      { timeout: 30_000 },
    );
    await page.click('#pause');
    await page.waitForTimeout(400); // let the batch event already in flight arrive
    const pausedAt = await page.textContent('#status');
    expect(pausedAt).toBe('Paused.');
    // While paused the worker sends no batches: the loss chart's point count stands still.
    const points = () => page.getAttribute('#loss-chart', 'data-batch-points');
    const before = await points();
    await page.waitForTimeout(800);
    expect(await points()).toBe(before);
    expect(await page.textContent('#status')).toBe('Paused.');
    await page.click('#pause'); // Resume
    await page.waitForFunction(
      () => /batch \d+/.test(document.querySelector('#status')!.textContent!),
      null,
      { timeout: 30_000 },
    );
    await page.click('#stop');
    await page.waitForSelector('body[data-state="trained"]', { timeout: 30_000 });
    expect(await page.textContent('#status')).toMatch(/Stopped/);
    expect(await page.locator('#epochs tbody tr').count()).toBeLessThanOrEqual(1);
  }, 120_000);

  it('runs the relaxed-SIMD kernels by default (Chromium validates them), like Node', async () => {
    expect(await page.getAttribute('body', 'data-simd')).toBe('relaxed');
    expect(createEngine().build).toBe('relaxed');
  });

  /**
   * Determinism is per kernel build: the relaxed build's FMA rounds once where the baseline's
   * mul + add rounds twice. So each build is pinned on both sides (?simd= on the page, simd: in
   * Node) and compared with itself. The relaxed build matches across Node and Chromium because
   * both V8s lower relaxed_madd to the same FMA instruction on this CPU (Engine.fusedMadd); on
   * a CPU without FMA both would run it unfused, which again agrees.
   */
  for (const build of ['baseline', 'relaxed'] as const) {
    it(`gives bit-identical weights to Node for the same spec, data order and seed (${build} build)`, async () => {
      const spec = preset('mlp-128-64')!;
      const options = {
        epochs: 1,
        batchSize: 32,
        seed: 7,
        limit: 640,
        optimizer: { type: 'adam' as const, learningRate: 1e-3 },
      };
      const pinned = await demo.browser.newPage();
      try {
        await pinned.goto(`${demo.url}?simd=${build}`);
        await pinned.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
        expect(await pinned.getAttribute('body', 'data-simd')).toBe(build);
        const browser = await pinned.evaluate(
          async ({ spec, options }) => {
            const { client } = (
              window as unknown as {
                mnistDemo: { client: import('../src/browser/client.js').TrainerClient };
              }
            ).mnistDemo;
            await client.loadData('quick', './data/');
            await client.train(spec, options);
            return { hash: await client.weightsHash(), fused: client.fusedMadd };
          },
          { spec, options },
        );
        const quick = loadMnistQuick();
        const engine = createEngine({ simd: build });
        const model = createModel(spec, { seed: options.seed, engine });
        const train = subset(quick.train, 0, options.limit);
        fit(model, { train, test: quick.test }, { ...options });
        const nodeHash = createHash('sha256').update(model.parameters()).digest('hex');
        expect(browser.fused).toBe(engine.fusedMadd);
        expect(browser.hash).toMatch(/^[0-9a-f]{64}$/);
        expect(browser.hash).toBe(nodeHash);
      } finally {
        await pinned.close();
      }
    }, 180_000);
  }
});
