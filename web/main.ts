/**
 * The demo page: a form that starts training in the worker (src/browser/worker.ts through
 * TrainerClient), live status, charts (./charts.ts) and an epoch table, the confusion matrix and a
 * grid of test digits after each epoch / run, a draw-a-digit pad (./draw.ts) classified by the
 * current model, and model files in and out (./model-files.ts). The main thread only updates the
 * DOM: training, inference and model validation all run in the worker.
 *
 * State exposed for tests: body[data-state] (ready → trained), #model[data-source|data-name],
 * #prediction[data-state|data-digit|data-probabilities], #digit-input[data-ink],
 * #test-digits[data-state|data-count], #confusion[data-total], chart canvases'
 * data-batch-points / data-epoch-points, body[data-simd] (the kernel build: baseline | relaxed;
 * ?simd=baseline|relaxed pins it), body[data-threads] (the threads the worker trains on;
 * ?threads=N|auto and the Threads select ask for them, #threads-notice says why fewer run), and
 * window.mnistDemo.
 */
import wasmUrl from '../build/mnist-wasm.wasm?url';
import relaxedWasmUrl from '../build/mnist-wasm-relaxed.wasm?url';
import threadsWasmUrl from '../build/mnist-wasm-threads.wasm?url';
import relaxedThreadsWasmUrl from '../build/mnist-wasm-relaxed-threads.wasm?url';
import { TrainerClient, type TestImages } from '../src/browser/client.js';
import type { DatasetName, ThreadsChoice } from '../src/browser/protocol.js';
import { PRESETS, preset } from '../src/nn/presets.js';
import type { OptimizerName } from '../src/train/optimizer.js';
import type { EpochRecord } from '../src/train/fit.js';
import { TrainingCharts } from './charts.js';
import { renderConfusion } from './confusion.js';
import { paintDigit, renderDigitGrid } from './digits.js';
import { DrawPad } from './draw.js';
import { acceptDroppedFiles, downloadBytes, modelName } from './model-files.js';

const $ = <T extends HTMLElement>(selector: string): T => document.querySelector<T>(selector)!;
const form = $<HTMLFormElement>('#train-form');
const status = $<HTMLParagraphElement>('#status');
const errorBox = $<HTMLParagraphElement>('#error');
const engineInfo = $<HTMLParagraphElement>('#engine');
const threadsNotice = $<HTMLParagraphElement>('#threads-notice');
const progress = $<HTMLProgressElement>('#data-progress');
const pauseButton = $<HTMLButtonElement>('#pause');
const stopButton = $<HTMLButtonElement>('#stop');
const trainButton = $<HTMLButtonElement>('#train');
const tbody = $<HTMLTableSectionElement>('#epochs tbody');
const accuracy = $<HTMLElement>('#accuracy');
const speed = $<HTMLElement>('#speed');
const modelInfo = $<HTMLParagraphElement>('#model');
const modelSummary = $<HTMLDetailsElement>('#model-summary');
const downloadButton = $<HTMLButtonElement>('#download');
const modelFileInput = $<HTMLInputElement>('#model-file');
const confusionTable = $<HTMLTableElement>('#confusion');
const confusionCaption = $<HTMLParagraphElement>('#confusion-caption');
const testDigits = $<HTMLDivElement>('#test-digits');
const digitInput = $<HTMLCanvasElement>('#digit-input');
const prediction = $<HTMLDivElement>('#prediction');
const predictionMessage = $<HTMLParagraphElement>('#prediction .message');
const predictedDigit = $<HTMLSpanElement>('#predicted-digit');
const confidence = $<HTMLSpanElement>('#confidence');
const probabilityBars = $<HTMLDivElement>('#probabilities');

const modelSelect = form.elements.namedItem('model') as HTMLSelectElement;
for (const name of Object.keys(PRESETS))
  modelSelect.add(new Option(name, name, name === 'mlp-128', name === 'mlp-128'));
const datasetSelect = form.elements.namedItem('dataset') as HTMLSelectElement;
const threadsSelect = form.elements.namedItem('threads') as HTMLSelectElement;

/** How many test digits the grid shows. */
const GRID_DIGITS = 48;

const pct = (x: number | undefined): string => (x === undefined ? '—' : `${(100 * x).toFixed(2)}%`);
const count = (x: number): string => Math.round(x).toLocaleString('en-US');

function showError(message: string | null): void {
  errorBox.hidden = message === null;
  errorBox.textContent = message ?? '';
}

function addEpochRow(r: EpochRecord): void {
  const row = tbody.insertRow();
  for (const cell of [
    String(r.epoch),
    r.trainLoss.toFixed(4),
    pct(r.trainAccuracy),
    r.testLoss?.toFixed(4) ?? '—',
    pct(r.testAccuracy),
    r.seconds.toFixed(2),
    count(r.samplesPerSecond),
  ]) {
    row.insertCell().textContent = cell;
  }
  if (r.testAccuracy !== undefined) accuracy.textContent = pct(r.testAccuracy);
}

// ---- the current model -----------------------------------------------------------------------

/** The architecture of the worker's current model, once there is one. */
let currentModel: string | undefined;
/** The architecture being trained from the form, and whether the page has said so yet. */
let trainingModel: string | undefined;
let announceTraining = false;

function setModel(name: string, source: 'training' | 'file', description: string): void {
  currentModel = name;
  modelInfo.dataset.name = name;
  modelInfo.dataset.source = source;
  modelInfo.textContent = description;
  downloadButton.disabled = false;
}

// ---- charts, confusion matrix, test digits ----------------------------------------------------

const charts = new TrainingCharts(
  $<HTMLCanvasElement>('#loss-chart'),
  $<HTMLCanvasElement>('#accuracy-chart'),
);

function showTestDigits(test: TestImages): void {
  renderDigitGrid(testDigits, test);
  testDigits.dataset.state = 'ready';
}

async function refreshTestDigits(): Promise<void> {
  testDigits.dataset.state = 'loading';
  try {
    showTestDigits(await client.testImages(0, GRID_DIGITS));
  } catch (e) {
    testDigits.dataset.state = 'error';
    testDigits.textContent = `The test digits could not be shown: ${(e as Error).message}`;
  }
}

/** Confusion matrix, accuracy and digit grid of a loaded model, from one pass over the test set. */
async function evaluateLoadedModel(name: string, fileName: string): Promise<void> {
  testDigits.dataset.state = 'loading';
  await ensureData(datasetSelect.value as DatasetName);
  const test = await client.testImages(0, testCount);
  showTestDigits({
    images: test.images.subarray(0, GRID_DIGITS * 784),
    labels: test.labels.subarray(0, GRID_DIGITS),
    predictions: test.predictions?.subarray(0, GRID_DIGITS) ?? null,
  });
  if (!test.predictions) return;
  const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  let correct = 0;
  for (let i = 0; i < test.labels.length; i++) {
    confusion[test.labels[i]!]![test.predictions[i]!]!++;
    if (test.labels[i] === test.predictions[i]) correct++;
  }
  renderConfusion(confusionTable, confusion);
  confusionCaption.textContent = `${name} loaded from ${fileName}, on ${count(test.labels.length)} test digits.`;
  accuracy.textContent = pct(correct / test.labels.length);
}

// ---- the draw pad -----------------------------------------------------------------------------

/** Bumped on every change of the drawing or the model; a prediction is current if it matches. */
let drawingVersion = 0;
let digit: Uint8Array | null = null;
let digitVersion = 0;
let predicting = false;
let predictAgain = false;

const bars = Array.from({ length: 10 }, (_, d) => {
  const bar = document.createElement('div');
  bar.className = 'bar';
  bar.dataset.digit = String(d);
  const value = document.createElement('span');
  value.className = 'value';
  const track = document.createElement('span');
  track.className = 'track';
  const fill = document.createElement('span');
  fill.className = 'fill';
  track.append(fill);
  const label = document.createElement('span');
  label.className = 'label';
  label.textContent = String(d);
  bar.append(value, track, label);
  probabilityBars.append(bar);
  return { bar, value, fill };
});

function showProbabilities(p: Float32Array, current: boolean): void {
  let best = 0;
  for (let d = 1; d < 10; d++) if (p[d]! > p[best]!) best = d;
  bars.forEach(({ bar, value, fill }, d) => {
    fill.style.transform = `scaleY(${p[d]!.toFixed(4)})`;
    value.textContent = `${Math.round(100 * p[d]!)}%`;
    bar.classList.toggle('top', d === best);
  });
  predictedDigit.textContent = String(best);
  confidence.textContent = `${(100 * p[best]!).toFixed(1)}% sure`;
  prediction.dataset.digit = String(best);
  prediction.dataset.probabilities = Array.from(p, (x) => x.toFixed(6)).join(',');
  if (current) prediction.dataset.state = 'ready';
}

function showPredictionMessage(state: 'empty' | 'no-model' | 'error', message: string): void {
  bars.forEach(({ bar, value, fill }) => {
    fill.style.transform = 'scaleY(0)';
    value.textContent = '';
    bar.classList.remove('top');
  });
  predictionMessage.textContent = message;
  predictedDigit.textContent = '?';
  confidence.textContent = '';
  delete prediction.dataset.digit;
  delete prediction.dataset.probabilities;
  prediction.dataset.state = state;
}

/** Classify the latest drawing in the worker; one request in flight, the newest drawing wins. */
async function predictDrawing(): Promise<void> {
  if (predicting) {
    predictAgain = true;
    return;
  }
  predicting = true;
  try {
    do {
      predictAgain = false;
      const input = digit;
      const version = digitVersion;
      if (input === null) {
        showPredictionMessage('empty', 'Draw a digit (0–9) in the black box.');
      } else if (currentModel === undefined) {
        showPredictionMessage(
          'no-model',
          'No model yet: train one or load a model file, and the pad will classify your digit.',
        );
      } else {
        try {
          const p = await client.predict(input);
          if (!predictAgain) showProbabilities(p, version === drawingVersion);
        } catch (e) {
          showPredictionMessage('error', (e as Error).message);
        }
      }
    } while (predictAgain);
  } finally {
    predicting = false;
  }
}

function showInput(input: Uint8Array | null): void {
  paintDigit(digitInput, input ?? new Uint8Array(784));
  let ink = 0;
  if (input) for (const v of input) if (v > 0) ink++;
  digitInput.dataset.ink = String(ink);
}

const pad = new DrawPad($<HTMLCanvasElement>('#pad'), {
  onDirty: () => {
    drawingVersion++;
    prediction.dataset.state = 'pending';
  },
  onChange: (input) => {
    digit = input;
    digitVersion = drawingVersion;
    showInput(input);
    void predictDrawing();
  },
});
$<HTMLButtonElement>('#clear').addEventListener('click', () => pad.clear());
showInput(null);
showPredictionMessage('empty', 'Draw a digit (0–9) in the black box.');

// ---- training -----------------------------------------------------------------------------------

// The kernel builds: the worker runs the relaxed-SIMD one where the browser supports it, and its
// shared-memory variant for more than one thread.
const wasmUrls = {
  baseline: wasmUrl,
  relaxed: relaxedWasmUrl,
  baselineThreads: threadsWasmUrl,
  relaxedThreads: relaxedThreadsWasmUrl,
};
const client = new TrainerClient(wasmUrls, {
  onDataProgress: (loaded, total) => {
    progress.hidden = false;
    progress.max = Math.max(total, loaded, 1);
    progress.value = loaded;
  },
  onBatch: (e) => {
    // A batch that finished just before the worker saw "pause" must not overwrite "Paused."
    if (!paused) {
      status.textContent =
        `epoch ${e.epoch}: batch ${e.batch + 1}/${e.batches}, loss ${e.loss.toFixed(4)}, ` +
        `${count(e.samplesPerSecond)} samples/s`;
    }
    speed.textContent = `${count(e.samplesPerSecond)} samples/s`;
    charts.addBatch(e);
    // The worker's model exists from the first batch on: the pad can use it while it trains.
    if (announceTraining && trainingModel !== undefined) {
      announceTraining = false;
      setModel(trainingModel, 'training', `${trainingModel}, training…`);
      pad.refresh();
    }
  },
  onEpoch: (record, evaluation) => {
    addEpochRow(record);
    charts.addEpoch(record);
    speed.textContent = `${count(record.samplesPerSecond)} samples/s (epoch ${record.epoch})`;
    if (evaluation) {
      renderConfusion(confusionTable, evaluation.confusion);
      confusionCaption.textContent =
        `${trainingModel ?? 'The model'} after epoch ${record.epoch}, on ` +
        `${count(evaluation.count)} test digits.`;
    }
    pad.refresh();
  },
});

let loadedDataset: DatasetName | undefined;
let testCount = 0;
let paused = false;

async function ensureData(dataset: DatasetName): Promise<void> {
  if (loadedDataset === dataset) return;
  status.textContent = `Loading the ${dataset === 'mnist' ? 'MNIST' : 'quick'} dataset…`;
  const counts = await client.loadData(dataset, './data/');
  progress.hidden = true;
  loadedDataset = dataset;
  testCount = counts.testCount;
  status.textContent = `${count(counts.trainCount)} training and ${count(testCount)} test images loaded.`;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void (async () => {
    showError(null);
    const f = new FormData(form);
    const name = String(f.get('model'));
    const spec = preset(name)!;
    const epochs = Number(f.get('epochs'));
    trainButton.disabled = true;
    threadsSelect.disabled = true;
    try {
      await ensureData(f.get('dataset') as DatasetName);
      tbody.replaceChildren();
      accuracy.textContent = '—';
      speed.textContent = '—';
      charts.reset(epochs);
      pauseButton.disabled = false;
      stopButton.disabled = false;
      status.textContent = `Training ${name}…`;
      trainingModel = name;
      announceTraining = true;
      const result = await client.train(spec, {
        epochs,
        batchSize: Number(f.get('batch')),
        optimizer: { type: f.get('optimizer') as OptimizerName, learningRate: Number(f.get('lr')) },
        seed: Number(f.get('seed')),
      });
      charts.flush();
      const done = result.history.length;
      setModel(
        name,
        'training',
        `${name}, trained here for ${done} epoch${done === 1 ? '' : 's'}.`,
      );
      modelSummary.hidden = true;
      status.textContent = result.stopped ? 'Stopped.' : 'Done.';
      testDigits.dataset.state = 'loading';
      document.body.dataset.state = 'trained';
      pad.refresh();
      void refreshTestDigits();
    } catch (e) {
      showError((e as Error).message);
      status.textContent = 'Failed.';
    } finally {
      trainingModel = undefined;
      announceTraining = false;
      trainButton.disabled = false;
      threadsSelect.disabled = false;
      pauseButton.disabled = true;
      stopButton.disabled = true;
      pauseButton.textContent = 'Pause';
      paused = false;
    }
  })();
});

pauseButton.addEventListener('click', () => {
  paused = !paused;
  if (paused) client.pause();
  else client.resume();
  pauseButton.textContent = paused ? 'Resume' : 'Pause';
  status.textContent = paused ? 'Paused.' : 'Training…';
});

stopButton.addEventListener('click', () => client.stop());

// ---- model files --------------------------------------------------------------------------------

downloadButton.addEventListener('click', () => {
  void (async () => {
    try {
      const bytes = await client.exportModel();
      downloadBytes(bytes, `mnist-wasm-${currentModel ?? 'model'}.safetensors`);
    } catch (e) {
      showError(`The model could not be saved: ${(e as Error).message}`);
    }
  })();
});

/** Replace the worker's model by a file's; on any failure the current model stays. */
async function loadModelFile(file: File): Promise<void> {
  showError(null);
  status.textContent = `Loading ${file.name}…`;
  let bytes: Uint8Array;
  let summary: string;
  try {
    bytes = new Uint8Array(await file.arrayBuffer());
    summary = await client.importModel(bytes, file.name);
  } catch (e) {
    const message = (e as Error).message;
    showError(message.includes(file.name) ? message : `${file.name}: ${message}`);
    status.textContent = currentModel
      ? `${file.name} was not loaded; the current model (${currentModel}) is unchanged.`
      : `${file.name} was not loaded.`;
    pad.refresh(); // the pad keeps classifying with the model it had
    return;
  }
  const name = modelName(bytes, file.name);
  pad.refresh(); // marks the prediction pending before the model's data-source changes
  setModel(name, 'file', `${name}, loaded from ${file.name}.`);
  modelSummary.querySelector('pre')!.textContent = summary;
  modelSummary.hidden = false;
  status.textContent = `Loaded ${file.name} (${name}).`;
  try {
    await evaluateLoadedModel(name, file.name);
  } catch (e) {
    testDigits.dataset.state = 'error';
    showError(`${file.name} was loaded, but evaluating it failed: ${(e as Error).message}`);
  }
}

modelFileInput.addEventListener('change', () => {
  const file = modelFileInput.files?.[0];
  modelFileInput.value = ''; // choosing the same file again is a change too
  if (file) void loadModelFile(file);
});
acceptDroppedFiles(document.body, (file) => void loadModelFile(file));

// ---- start --------------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
// ?simd=baseline or ?simd=relaxed pins the kernel build (default: relaxed where supported).
const simdParam = params.get('simd');
const simd = simdParam === 'baseline' || simdParam === 'relaxed' ? simdParam : 'auto';

/** 'auto', or a positive integer; anything else is the default, one thread. */
function parseThreads(value: string | null): ThreadsChoice {
  if (value === 'auto') return 'auto';
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** (Re)start the worker's engine with `threads`; shows the threads it runs and any notice. */
async function startEngine(threads: ThreadsChoice): Promise<void> {
  trainButton.disabled = true;
  threadsSelect.disabled = true;
  try {
    const build = await client.init(simd, threads);
    const used = client.threads ?? 1;
    document.body.dataset.simd = build;
    document.body.dataset.threads = String(used);
    engineInfo.textContent = `Kernels: ${build} SIMD, ${used} thread${used === 1 ? '' : 's'}.`;
    threadsNotice.hidden = client.notice === undefined;
    threadsNotice.textContent = client.notice ?? '';
  } finally {
    trainButton.disabled = false;
    threadsSelect.disabled = false;
  }
}

// ?threads=N or ?threads=auto asks for N threads (default 1; auto: the cores, at most 4).
const threads = parseThreads(params.get('threads'));
if (![...threadsSelect.options].some((o) => o.value === String(threads))) {
  threadsSelect.add(new Option(String(threads), String(threads)));
}
threadsSelect.value = String(threads);
threadsSelect.addEventListener('change', () => {
  const choice = parseThreads(threadsSelect.value);
  params.set('threads', String(choice));
  history.replaceState(null, '', `?${params}`);
  showError(null);
  status.textContent = `Restarting the engine (threads: ${choice})…`;
  startEngine(choice)
    .then(() => (status.textContent = 'Ready.'))
    .catch((e: Error) => showError(`The engine could not restart: ${e.message}`));
});

startEngine(threads)
  .then(() => {
    status.textContent = 'Ready: choose a dataset and a model, then Train.';
    document.body.dataset.state = 'ready';
  })
  .catch((e: Error) => showError(`The engine could not start: ${e.message}`));

/** For tests and the console: the page's trainer and charts. */
(window as unknown as { mnistDemo: { client: TrainerClient; charts: TrainingCharts } }).mnistDemo =
  { client, charts };
