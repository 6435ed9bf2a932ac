/**
 * The demo page: a form that starts training in the worker (src/browser/worker.ts through
 * TrainerClient), live status and an epoch table. The main thread only updates the DOM.
 */
import wasmUrl from '../build/mnist-wasm.wasm?url';
import { TrainerClient } from '../src/browser/client.js';
import type { DatasetName } from '../src/browser/protocol.js';
import { PRESETS, preset } from '../src/nn/presets.js';
import type { OptimizerName } from '../src/train/optimizer.js';
import type { EpochRecord } from '../src/train/fit.js';

const $ = <T extends HTMLElement>(selector: string): T => document.querySelector<T>(selector)!;
const form = $<HTMLFormElement>('#train-form');
const status = $<HTMLParagraphElement>('#status');
const errorBox = $<HTMLParagraphElement>('#error');
const progress = $<HTMLProgressElement>('#data-progress');
const pauseButton = $<HTMLButtonElement>('#pause');
const stopButton = $<HTMLButtonElement>('#stop');
const trainButton = $<HTMLButtonElement>('#train');
const tbody = $<HTMLTableSectionElement>('#epochs tbody');
const accuracy = $<HTMLElement>('#accuracy');

const modelSelect = form.elements.namedItem('model') as HTMLSelectElement;
for (const name of Object.keys(PRESETS))
  modelSelect.add(new Option(name, name, name === 'mlp-128', name === 'mlp-128'));

const pct = (x: number | undefined): string => (x === undefined ? '—' : `${(100 * x).toFixed(2)}%`);

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
    Math.round(r.samplesPerSecond).toLocaleString('en-US'),
  ]) {
    row.insertCell().textContent = cell;
  }
  if (r.testAccuracy !== undefined) accuracy.textContent = pct(r.testAccuracy);
}

const client = new TrainerClient(wasmUrl, {
  onDataProgress: (loaded, total) => {
    progress.hidden = false;
    progress.max = Math.max(total, loaded, 1);
    progress.value = loaded;
  },
  onBatch: (e) => {
    status.textContent =
      `epoch ${e.epoch}: batch ${e.batch + 1}/${e.batches}, loss ${e.loss.toFixed(4)}, ` +
      `${Math.round(e.samplesPerSecond).toLocaleString('en-US')} samples/s`;
  },
  onEpoch: (record) => addEpochRow(record),
});

let loadedDataset: DatasetName | undefined;
let paused = false;

async function ensureData(dataset: DatasetName): Promise<void> {
  if (loadedDataset === dataset) return;
  status.textContent = `Loading the ${dataset === 'mnist' ? 'MNIST' : 'quick'} dataset…`;
  const { trainCount, testCount } = await client.loadData(dataset, './data/');
  progress.hidden = true;
  loadedDataset = dataset;
  status.textContent = `${trainCount.toLocaleString('en-US')} training and ${testCount.toLocaleString('en-US')} test images loaded.`;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  void (async () => {
    showError(null);
    const f = new FormData(form);
    const spec = preset(String(f.get('model')))!;
    trainButton.disabled = true;
    try {
      await ensureData(f.get('dataset') as DatasetName);
      tbody.replaceChildren();
      accuracy.textContent = '—';
      pauseButton.disabled = false;
      stopButton.disabled = false;
      status.textContent = `Training ${spec.name}…`;
      const result = await client.train(spec, {
        epochs: Number(f.get('epochs')),
        batchSize: Number(f.get('batch')),
        optimizer: { type: f.get('optimizer') as OptimizerName, learningRate: Number(f.get('lr')) },
        seed: Number(f.get('seed')),
      });
      status.textContent = result.stopped ? 'Stopped.' : 'Done.';
      document.body.dataset.state = 'trained';
    } catch (e) {
      showError((e as Error).message);
      status.textContent = 'Failed.';
    } finally {
      trainButton.disabled = false;
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

client
  .init()
  .then(() => {
    status.textContent = 'Ready: choose a dataset and a model, then Train.';
    document.body.dataset.state = 'ready';
  })
  .catch((e: Error) => showError(`The engine could not start: ${e.message}`));

/** For tests and the console: the page's trainer. */
(window as unknown as { mnistDemo: { client: TrainerClient } }).mnistDemo = { client };
