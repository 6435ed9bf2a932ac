/**
 * The training worker: owns the engine, the model and the data, so the page's main thread never
 * runs a kernel. Training runs through `fitAsync`, which returns to the event loop every few tens
 * of milliseconds so pause / resume / stop / predict messages are handled while an epoch runs.
 * Protocol: ./protocol.ts.
 */
import type { DataSplit } from '../data/dataset.js';
import { Engine, resolveSimd, type SimdBuild } from '../engine/engine.js';
import { encodeModel, modelFromBytes } from '../io/safetensors.js';
import { Model } from '../nn/model.js';
import { fitAsync, predict } from '../train/fit.js';
import { fetchDataset } from './data.js';
import type { FromWorker, ToWorker } from './protocol.js';

const scope = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};

let wasm: WebAssembly.Module | undefined;
let data: DataSplit | undefined;
let model: Model | undefined;
let training = false;
let abort: AbortController | undefined;
let resumeGate: { promise: Promise<void>; open: () => void } | undefined;

const post = (message: FromWorker, transfer: Transferable[] = []): void =>
  scope.postMessage(message, transfer);

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

function requireWasm(): WebAssembly.Module {
  if (!wasm)
    throw new Error('the worker was not initialised (send "init" with the wasm URL first)');
  return wasm;
}

/** An MNIST-shaped classifier the page can use: 784 inputs, 10 outputs. */
function checkUsable(candidate: Model, name: string): void {
  if (candidate.inputSize !== 784 || candidate.outputSize !== 10) {
    throw new Error(
      `${name}: this model takes ${candidate.inputSize} inputs and gives ${candidate.outputSize} outputs; ` +
        `the page needs a 28×28 → 10 digit classifier. The current model is unchanged.`,
    );
  }
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'init': {
      // The build is chosen as in Node (src/engine/node.ts): the relaxed one when this browser
      // validates it, unless the page asks for one. Current Chromium has relaxed SIMD on.
      const choice = msg.simd ?? 'auto';
      if (choice === 'relaxed' && !msg.relaxedWasmUrl) {
        throw new Error('simd: relaxed needs the URL of the relaxed build (relaxedWasmUrl)');
      }
      let relaxed: ArrayBuffer | undefined;
      if (choice !== 'baseline' && msg.relaxedWasmUrl) {
        const bytes = await fetchBytes(msg.relaxedWasmUrl);
        if (WebAssembly.validate(bytes)) relaxed = bytes;
      }
      const build: SimdBuild = resolveSimd(choice, relaxed !== undefined);
      const bytes = build === 'relaxed' && relaxed ? relaxed : await fetchBytes(msg.wasmUrl);
      wasm = await WebAssembly.compile(bytes);
      post({ type: 'ready', build, fusedMadd: Engine.fromModule(wasm).fusedMadd });
      return;
    }
    case 'load-data': {
      let lastPost = 0;
      data = await fetchDataset(msg.dataset, msg.baseUrl, (loaded, total) => {
        const now = performance.now();
        if (now - lastPost > 50) {
          lastPost = now;
          post({ type: 'data-progress', loaded, total });
        }
      });
      post({
        type: 'data-ready',
        dataset: msg.dataset,
        trainCount: data.train.count,
        testCount: data.test.count,
      });
      return;
    }
    case 'train': {
      if (!data) throw new Error('load a dataset before training');
      if (training) throw new Error('training is already running');
      const o = msg.options;
      model = new Model(msg.spec, Engine.fromModule(requireWasm()), o.seed);
      const train = o.limit
        ? { ...data.train, count: Math.min(o.limit, data.train.count) }
        : data.train;
      abort = new AbortController();
      training = true;
      let lastBatch = 0;
      try {
        const result = await fitAsync(
          model,
          { train, test: data.test },
          {
            epochs: o.epochs,
            batchSize: o.batchSize,
            optimizer: o.optimizer,
            loss: o.loss,
            seed: o.seed,
            signal: abort.signal,
            pause: () => resumeGate?.promise,
            onBatchEnd: (event) => {
              const now = performance.now();
              if (now - lastBatch > 100 || event.batch === event.batches - 1) {
                lastBatch = now;
                post({ type: 'batch', event });
              }
            },
            onEpochEnd: (record, evaluation) => post({ type: 'epoch', record, evaluation }),
          },
        );
        post({ type: 'done', result });
      } finally {
        training = false;
        resumeGate?.open();
        resumeGate = undefined;
      }
      return;
    }
    case 'pause': {
      if (!resumeGate) {
        let open = (): void => {};
        const promise = new Promise<void>((resolve) => (open = resolve));
        resumeGate = { promise, open };
      }
      return;
    }
    case 'resume':
      resumeGate?.open();
      resumeGate = undefined;
      return;
    case 'stop':
      abort?.abort();
      resumeGate?.open();
      resumeGate = undefined;
      return;
    case 'predict': {
      if (!model) throw new Error('there is no model yet: train one or load a model file');
      const probabilities = predict(model, msg.pixels);
      post({ type: 'prediction', id: msg.id, probabilities }, [probabilities.buffer]);
      return;
    }
    case 'test-images': {
      if (!data) throw new Error('no dataset loaded');
      const start = Math.max(0, Math.min(msg.start, data.test.count));
      const count = Math.max(0, Math.min(msg.count, data.test.count - start));
      const images = data.test.images.slice(start * 784, (start + count) * 784);
      const labels = data.test.labels.slice(start, start + count);
      let predictions: Int32Array | null = null;
      if (model && count > 0) {
        const probs = predict(model, images);
        predictions = new Int32Array(count);
        for (let i = 0; i < count; i++) {
          let best = 0;
          for (let j = 1; j < 10; j++) if (probs[i * 10 + j]! > probs[i * 10 + best]!) best = j;
          predictions[i] = best;
        }
      }
      post({ type: 'test-images', id: msg.id, images, labels, predictions }, [
        images.buffer,
        labels.buffer,
      ]);
      return;
    }
    case 'export-model': {
      if (!model) throw new Error('there is no model to download yet');
      const bytes = encodeModel(model);
      post({ type: 'model-bytes', id: msg.id, bytes }, [bytes.buffer]);
      return;
    }
    case 'import-model': {
      if (training) throw new Error(`${msg.name}: stop training before loading a model file`);
      // modelFromBytes validates the whole file before building anything; the current model is
      // replaced only after the new one is known to be usable.
      const loaded = modelFromBytes(msg.bytes, msg.name, Engine.fromModule(requireWasm()));
      checkUsable(loaded, msg.name);
      model = loaded;
      post({ type: 'model-loaded', id: msg.id, name: msg.name, summary: model.summary() });
      return;
    }
    case 'hash': {
      if (!model) throw new Error('there is no model');
      const params = model.parameters().slice();
      const digest = await crypto.subtle.digest('SHA-256', params);
      const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
      post({ type: 'hash', id: msg.id, hex });
      return;
    }
  }
}

scope.onmessage = (event) => {
  const msg = event.data;
  handle(msg).catch((error: Error) => {
    post({ type: 'error', ...('id' in msg ? { id: msg.id } : {}), message: error.message });
  });
};
