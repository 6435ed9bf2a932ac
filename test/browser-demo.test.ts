/**
 * The demo page's features in real Chromium (Debian's /usr/bin/chromium, driven by playwright-core
 * through web/harness.ts, as in browser.test.ts): live charts, the confusion matrix and the
 * test-digit grid after training through the form; the draw pad classifying a small off-centre
 * "1" and "7" drawn with mouse pointer events, and a "7" drawn with real touch events on a
 * phone-sized page; model files — a corrupt file and one of another architecture are refused with
 * a message naming the file while the pad keeps its model, and a downloaded model loaded back
 * (file input and drop) predicts exactly as before. Screenshots go to test/.tmp/artifacts/.
 * Skipped (with a reason printed) only when no Chromium is installed; CI installs it.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeModel } from '../src/io/safetensors.js';
import { createModel } from '../src/nn/create.js';
import { sequential } from '../src/nn/spec.js';
import { CHROMIUM, haveChromium, openDemo, type Demo } from '../web/harness.js';

const artifacts = fileURLToPath(new URL('./.tmp/artifacts/', import.meta.url));
if (!haveChromium())
  console.warn(`browser demo tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

/** Test digits in the quick set (20 % of the `mnist` package's 10,000, per class, rounded down). */
const QUICK_TEST_COUNT = 1996;
/** Side of the pad's canvas in its own pixels. */
const PAD = 280;

/** Strokes in pad pixels (0..280): a small "1" in the top-left quarter. */
const ONE: [number, number][][] = [
  [
    [72, 22],
    [70, 60],
    [68, 118],
  ],
];
/** A small "7" right of and below the centre: the top bar, then the diagonal down to the left. */
const SEVEN: [number, number][][] = [
  [
    [150, 150],
    [232, 150],
    [214, 195],
    [190, 262],
  ],
];

describe.runIf(process.env.CI)('CI', () => {
  it(`has Chromium at ${CHROMIUM}, so the demo tests below run`, () => {
    expect(haveChromium()).toBe(true);
  });
});

describe.runIf(haveChromium())('the demo page in Chromium', () => {
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  /** The model file downloaded from the page (set by the download test). */
  let modelFile: { name: string; bytes: Buffer } | undefined;

  /** Draw `strokes` with mouse pointer events, then wait for the pad's prediction of them. */
  async function draw(strokes: [number, number][][]): Promise<PadState> {
    const box = (await page.locator('#pad').boundingBox())!;
    const at = ([x, y]: [number, number]): [number, number] => [
      box.x + (x * box.width) / PAD,
      box.y + (y * box.height) / PAD,
    ];
    for (const stroke of strokes) {
      await page.mouse.move(...at(stroke[0]!));
      await page.mouse.down();
      for (const point of stroke.slice(1)) await page.mouse.move(...at(point), { steps: 12 });
      await page.mouse.up();
    }
    return padState();
  }

  interface PadState {
    state: string;
    digit: string | null;
    probabilities: string | null;
  }

  /** The pad's prediction once it is current (not pending). */
  async function padState(): Promise<PadState> {
    const prediction = page.locator('#prediction:not([data-state="pending"])');
    await prediction.waitFor({ state: 'attached', timeout: 10_000 });
    return {
      state: (await prediction.getAttribute('data-state'))!,
      digit: await prediction.getAttribute('data-digit'),
      probabilities: await prediction.getAttribute('data-probabilities'),
    };
  }

  /** Wait until `selector`'s text contains `text` (and return the whole text). */
  async function waitForText(selector: string, text: string): Promise<string> {
    await page.waitForFunction(
      ([selector, text]) => document.querySelector(selector)?.textContent?.includes(text) ?? false,
      [selector, text] as const,
      { timeout: 10_000 },
    );
    return (await page.textContent(selector))!;
  }

  async function clearPad(): Promise<void> {
    await page.click('#clear');
    expect((await padState()).state).toBe('empty');
  }

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    // Serves web/ with Vite on 127.0.0.1 (after prepareWebData(['quick'])), opens Chromium.
    demo = await openDemo(['quick']);
    ({ browser, page } = demo);
  }, 180_000);

  afterAll(async () => {
    await demo?.close();
  });

  it('says "no model yet" when a digit is drawn before any model exists', async () => {
    const before = await draw(ONE);
    expect(before.state).toBe('no-model');
    expect(before.digit).toBeNull();
    await waitForText('#prediction .message', 'No model yet');
    await page.locator('#draw').screenshot({ path: `${artifacts}draw-no-model.png` });
    expect(Number(await page.getAttribute('#digit-input', 'data-ink'))).toBeGreaterThan(20);
    await clearPad();
  });

  it('trains through the form and fills charts, confusion matrix and test digits', async () => {
    await page.selectOption('select[name=dataset]', 'quick');
    await page.selectOption('select[name=model]', 'mlp-128');
    await page.fill('input[name=epochs]', '3');
    await page.click('#train');
    await page.waitForSelector('body[data-state="trained"]', { timeout: 60_000 });
    expect(await page.locator('#epochs tbody tr').count()).toBe(3);
    expect(await page.isVisible('#error')).toBe(false);

    // Charts: per-batch train loss (at least the last batch of each epoch), one point per epoch.
    const points = await page.evaluate(() => {
      const { charts } = (
        window as unknown as { mnistDemo: { charts: import('../web/charts.js').TrainingCharts } }
      ).mnistDemo;
      return {
        loss: charts.loss.data.datasets.map((d) => d.data.length),
        accuracy: charts.accuracy.data.datasets.map((d) => d.data.length),
      };
    });
    expect(points.loss[0]).toBeGreaterThanOrEqual(3);
    expect(points.loss.slice(1)).toEqual([3, 3]);
    expect(points.accuracy).toEqual([3, 3]);
    expect(Number(await page.getAttribute('#loss-chart', 'data-batch-points'))).toBe(
      points.loss[0],
    );
    expect(await page.getAttribute('#accuracy-chart', 'data-epoch-points')).toBe('3');
    await waitForText('#speed', 'samples/s');

    // Confusion matrix: 10×10 counts over the whole test set, the diagonal highlighted, and its
    // accuracy the table's.
    const cells = await page.locator('#confusion tbody td').allTextContents();
    expect(cells).toHaveLength(100);
    const total = cells.reduce((s, c) => s + Number(c), 0);
    expect(total).toBe(QUICK_TEST_COUNT);
    expect(await page.getAttribute('#confusion', 'data-total')).toBe(String(QUICK_TEST_COUNT));
    const diagonal = await page.locator('#confusion td.diagonal').allTextContents();
    expect(diagonal).toHaveLength(10);
    const correct = diagonal.reduce((s, c) => s + Number(c), 0);
    const accuracyText = (await page.textContent('#accuracy'))!;
    expect(((100 * correct) / total).toFixed(2)).toBe(Number.parseFloat(accuracyText).toFixed(2));
    expect(Number.parseFloat(accuracyText)).toBeGreaterThanOrEqual(90);

    // Test digits: 48 images, each with a prediction; errors marked "pred/label".
    await page.waitForSelector('#test-digits[data-state="ready"]');
    const digits = page.locator('#test-digits .digit');
    expect(await digits.count()).toBe(48);
    expect(await page.locator('#test-digits .digit[data-prediction]').count()).toBe(48);
    const wrong = page.locator('#test-digits .digit.wrong');
    for (let i = 0; i < (await wrong.count()); i++) {
      const w = wrong.nth(i);
      const [label, prediction] = await Promise.all([
        w.getAttribute('data-label'),
        w.getAttribute('data-prediction'),
      ]);
      expect(label).not.toBe(prediction);
      expect(await w.locator('figcaption').textContent()).toBe(`${prediction}/${label}`);
    }
    expect(await page.getAttribute('#model', 'data-name')).toBe('mlp-128');
  });

  it('classifies a small off-centre "1" and "7" drawn with pointer events', async () => {
    const one = await draw(ONE);
    await page.locator('#draw').screenshot({ path: `${artifacts}draw-1.png` });
    expect(one.state).toBe('ready');
    expect(one.digit).toBe('1');
    await clearPad();

    const seven = await draw(SEVEN);
    await page.locator('#draw').screenshot({ path: `${artifacts}draw-7.png` });
    expect(seven.state).toBe('ready');
    expect(seven.digit).toBe('7');
    await page.screenshot({ path: `${artifacts}demo-full.png`, fullPage: true });
  });

  it('refuses a corrupt file and a non-digit model, naming the file, and keeps the model', async () => {
    const before = await padState();
    expect(before.digit).toBe('7');

    await page.setInputFiles('#model-file', {
      name: 'broken.safetensors',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from('this is not a model file, just some text'),
    });
    await page.waitForSelector('#error', { state: 'visible' });
    await waitForText('#error', 'broken.safetensors');
    let after = await padState();
    expect(after).toEqual(before);

    const fiveClasses = createModel(sequential(784).dense(5, 'softmax').spec('five-classes'));
    await page.setInputFiles('#model-file', {
      name: 'five-classes.safetensors',
      mimeType: 'application/octet-stream',
      buffer: Buffer.from(encodeModel(fiveClasses)),
    });
    await waitForText('#error', 'five-classes.safetensors');
    await waitForText('#error', '5 outputs');
    after = await padState();
    expect(after).toEqual(before);
    expect(await page.getAttribute('#model', 'data-name')).toBe('mlp-128');
  });

  it('downloads the model and loads it back (file input and drop) with the same predictions', async () => {
    const before = await padState();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    expect(download.suggestedFilename()).toBe('mnist-wasm-mlp-128.safetensors');
    const bytes = readFileSync((await download.path())!);
    modelFile = { name: download.suggestedFilename(), bytes };
    expect(bytes.length).toBeGreaterThan(4 * 101_770); // mlp-128's parameters, as f32

    await page.setInputFiles('#model-file', {
      name: download.suggestedFilename(),
      mimeType: 'application/octet-stream',
      buffer: bytes,
    });
    await waitForText('#model', `loaded from ${download.suggestedFilename()}`);
    expect(await page.getAttribute('#model', 'data-source')).toBe('file');
    expect(await page.getAttribute('#model', 'data-name')).toBe('mlp-128');
    expect(await page.isVisible('#error')).toBe(false);
    expect(await padState()).toEqual(before);
    await page.waitForSelector('#test-digits[data-state="ready"]');
    expect(await page.getAttribute('#confusion', 'data-total')).toBe(String(QUICK_TEST_COUNT));

    const dataTransfer = await page.evaluateHandle((base64) => {
      const raw = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([raw], 'dropped.safetensors'));
      return transfer;
    }, bytes.toString('base64'));
    await page.dispatchEvent('body', 'dragenter', { dataTransfer });
    expect(await page.evaluate(() => document.body.classList.contains('dragging'))).toBe(true);
    await page.dispatchEvent('body', 'drop', { dataTransfer });
    await waitForText('#model', 'loaded from dropped.safetensors');
    expect(await page.evaluate(() => document.body.classList.contains('dragging'))).toBe(false);
    expect(await padState()).toEqual(before);
  });
  it('draws with touch (real touch events) on a phone-sized page', async () => {
    expect(modelFile).toBeDefined();
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      hasTouch: true,
      isMobile: true,
      deviceScaleFactor: 2,
    });
    try {
      const phone = await context.newPage();
      phone.on('pageerror', (e) => console.error('page error:', e.message));
      await phone.goto(demo.url);
      await phone.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
      await phone.setInputFiles('#model-file', {
        name: modelFile!.name,
        mimeType: 'application/octet-stream',
        buffer: modelFile!.bytes,
      });
      await phone.waitForSelector('#model[data-source="file"]');

      const pad = phone.locator('#pad');
      await pad.scrollIntoViewIfNeeded();
      const box = (await pad.boundingBox())!;
      const scrollBefore = await phone.evaluate(() => {
        const types: string[] = [];
        (window as unknown as { pointerTypes: string[] }).pointerTypes = types;
        document
          .querySelector('#pad')!
          .addEventListener('pointerdown', (e) => types.push((e as PointerEvent).pointerType));
        return window.scrollY;
      });
      const cdp = await context.newCDPSession(phone);
      const touch = (type: string, points: [number, number][]) =>
        cdp.send('Input.dispatchTouchEvent', {
          type: type as 'touchStart' | 'touchMove' | 'touchEnd',
          touchPoints: points.map(([x, y]) => ({
            x: box.x + (x * box.width) / PAD,
            y: box.y + (y * box.height) / PAD,
          })),
        });
      for (const stroke of SEVEN) {
        await touch('touchStart', [stroke[0]!]);
        for (let i = 1; i < stroke.length; i++) {
          const [x0, y0] = stroke[i - 1]!;
          const [x1, y1] = stroke[i]!;
          for (let t = 1; t <= 12; t++)
            await touch('touchMove', [[x0 + ((x1 - x0) * t) / 12, y0 + ((y1 - y0) * t) / 12]]);
        }
        await touch('touchEnd', []);
      }
      // Under load a prediction of the first stroke alone may still be showing for a moment:
      // wait for the finished drawing's answer (a wrong digit times out and fails).
      const prediction = phone.locator('#prediction[data-state="ready"]');
      await phone.waitForSelector('#prediction[data-state="ready"][data-digit="7"]', {
        timeout: 10_000,
      });
      expect(await prediction.getAttribute('data-digit')).toBe('7');
      expect(
        await phone.evaluate(() => (window as unknown as { pointerTypes: string[] }).pointerTypes),
      ).toEqual(['touch']);
      // Touch moves on the pad draw instead of scrolling the page (touch-action: none).
      expect(await phone.evaluate(() => window.scrollY)).toBe(scrollBefore);
      await phone.screenshot({ path: `${artifacts}demo-phone.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });
});
