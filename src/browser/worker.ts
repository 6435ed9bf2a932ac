/**
 * The training worker: owns the engine, the model and the data, so the page's main thread never
 * runs a kernel. Training runs through `fitAsync`, which returns to the event loop every few tens
 * of milliseconds so pause / resume / stop / predict messages are handled while an epoch runs.
 * Protocol: ./protocol.ts.
 *
 * Threads: with `init.threads` > 1 on a cross-origin isolated page, every model's engine runs the
 * threads build on a shared memory, and a ThreadPool's helpers are nested dedicated workers
 * started from a Blob URL of the pool's helper program. The pool's `run` blocks on Atomics.wait,
 * which only a worker may do — this one, never the page. Each engine's helpers are awaited (they
 * answer once instantiated) before the engine is used, so `run` never waits on a worker that
 * still has to start; they are terminated when the model (or the unused spare engine) is replaced,
 * and die with this worker. Anything missing — isolation, SharedArrayBuffer, the threads build,
 * helpers that do not start — means one thread and a `notice` in the ready message.
 */
import type { DataSplit } from '../data/dataset.js';
import { Engine, POOL_KERNELS, resolveSimd, type SimdBuild } from '../engine/engine.js';
import { MAX_THREADS, ThreadPool } from '../engine/threads.js';
import { encodeModel, modelFromBytes } from '../io/safetensors.js';
import { Model } from '../nn/model.js';
import { fitAsync, predict } from '../train/fit.js';
import { fetchDataset } from './data.js';
import {
  MAX_AUTO_THREADS,
  type FromWorker,
  type ThreadsChoice,
  type ToWorker,
} from './protocol.js';

const scope = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};

/** What each new model's engine is made of, set by "init". */
let engineSource: { module: WebAssembly.Module; threads: number } | undefined;
/** The engine "init" started (to probe the build and the helpers), until a model takes it. */
let spare: Engine | undefined;
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

/** How long helper workers may take to start before the trainer falls back to one thread. */
const HELPER_START_MS = 10_000;

/** The thread count a request stands for ('auto': the cores, at most MAX_AUTO_THREADS). */
function requestedThreads(choice: ThreadsChoice | undefined): number {
  if (choice === undefined) return 1;
  if (choice === 'auto') {
    return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, MAX_AUTO_THREADS));
  }
  if (!Number.isInteger(choice) || choice < 1 || choice > MAX_THREADS) {
    throw new RangeError(
      `threads must be an integer from 1 to ${MAX_THREADS} or 'auto', got ${JSON.stringify(choice)}`,
    );
  }
  return choice;
}

/** Why this worker cannot share its memory with helper threads; undefined when it can. */
function sharingProblem(): string | undefined {
  if (!self.crossOriginIsolated) {
    return (
      'this page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: ' +
      'same-origin and Cross-Origin-Embedder-Policy: require-corp)'
    );
  }
  if (typeof SharedArrayBuffer === 'undefined') return 'this browser has no SharedArrayBuffer';
  return undefined;
}

/** Blob URLs of helper programs, one per source text (kept for the worker's lifetime). */
const helperUrls = new Map<string, string>();

/**
 * A classic worker script around ThreadPool's helper program: its first message is the pool's
 * init (the module, the shared memory and the pool's SharedArrayBuffers are structured-cloneable),
 * and it answers "started" once it has instantiated the module, then serves jobs until told to
 * exit.
 */
function helperUrl(source: string): string {
  let url = helperUrls.get(source);
  if (!url) {
    const program =
      'self.onmessage = (event) => {\n' +
      '  self.onmessage = null;\n' +
      `  ${source}(event.data, () => self.postMessage('started'));\n` +
      '};\n';
    url = URL.createObjectURL(new Blob([program], { type: 'text/javascript' }));
    helperUrls.set(source, url);
  }
  return url;
}

/** An engine on `module` with `threads` − 1 helper workers attached, all of them started. */
async function startEngine(module: WebAssembly.Module, threads: number): Promise<Engine> {
  const engine = Engine.fromModule(module);
  if (threads === 1) return engine;
  const starts: Promise<void>[] = [];
  const pool = new ThreadPool(module, engine.memory, threads, POOL_KERNELS, (source, init) => {
    const helper = new Worker(helperUrl(source), {
      name: `mnist-wasm helper ${starts.length + 1}`,
    });
    starts.push(
      new Promise((resolve, reject) => {
        helper.onmessage = () => resolve();
        helper.onerror = (event) => {
          event.preventDefault();
          reject(new Error(event.message || 'a helper worker failed'));
        };
      }),
    );
    helper.postMessage(init);
    return helper;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the helper workers did not start within ${HELPER_START_MS} ms`)),
      HELPER_START_MS,
    );
  });
  try {
    await Promise.race([Promise.all(starts), timeout]);
  } catch (error) {
    pool.terminate();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  engine.attachPool(pool);
  return engine;
}

/**
 * The threads variant of `build` (served at `url`) and a first engine with `threads` − 1 started
 * helpers on it — or why training has to stay on one thread.
 */
async function startThreadsBuild(
  build: SimdBuild,
  url: string | undefined,
  threads: number,
): Promise<{ module: WebAssembly.Module; engine: Engine } | { problem: string }> {
  const problem = sharingProblem();
  if (problem) return { problem };
  if (!url) {
    const field = build === 'relaxed' ? 'relaxedThreadsWasmUrl' : 'threadsWasmUrl';
    return { problem: `the page gave no URL for the ${build} threads build (${field})` };
  }
  try {
    const module = await WebAssembly.compile(await fetchBytes(url));
    return { module, engine: await startEngine(module, threads) };
  } catch (error) {
    return { problem: `the threads build could not start (${(error as Error).message})` };
  }
}

/** A fresh engine for a new model: the spare one "init" started, or a new one like it. */
async function newEngine(): Promise<Engine> {
  if (spare) {
    const engine = spare;
    spare = undefined;
    return engine;
  }
  if (!engineSource) {
    throw new Error('the worker was not initialised (send "init" with the wasm URL first)');
  }
  return startEngine(engineSource.module, engineSource.threads);
}

/** Make `next` the current model; the one it replaces stops its helper threads. */
function replaceModel(next: Model): void {
  const previous = model;
  model = next;
  if (previous && previous.engine !== next.engine) previous.engine.close();
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
      if (training) throw new Error('stop training before changing the engine (init)');
      const wanted = requestedThreads(msg.threads);
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
      const wasm = await WebAssembly.compile(bytes);
      const threaded =
        wanted > 1
          ? await startThreadsBuild(
              build,
              build === 'relaxed' ? msg.relaxedThreadsWasmUrl : msg.threadsWasmUrl,
              wanted,
            )
          : undefined;
      const problem = threaded && 'problem' in threaded ? threaded.problem : undefined;
      const started = threaded && 'engine' in threaded ? threaded : undefined;
      engineSource = started
        ? { module: started.module, threads: wanted }
        : { module: wasm, threads: 1 };
      spare?.close();
      spare = started?.engine ?? Engine.fromModule(wasm);
      post({
        type: 'ready',
        build,
        fusedMadd: spare.fusedMadd,
        threads: spare.threads,
        ...(problem ? { notice: `threads: 1 — ${problem}, so training runs on one thread` } : {}),
      });
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
      const train = o.limit
        ? { ...data.train, count: Math.min(o.limit, data.train.count) }
        : data.train;
      // Set before the engine is awaited: a second request meanwhile is refused, a stop counts.
      abort = new AbortController();
      training = true;
      let lastBatch = 0;
      try {
        const engine = await newEngine();
        let next: Model;
        try {
          next = new Model(msg.spec, engine, o.seed);
        } catch (error) {
          engine.close();
          throw error;
        }
        replaceModel(next);
        const result = await fitAsync(
          next,
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
      const engine = await newEngine();
      let loaded: Model;
      try {
        if (training) throw new Error(`${msg.name}: training started while the file was loading`);
        loaded = modelFromBytes(msg.bytes, msg.name, engine);
        checkUsable(loaded, msg.name);
      } catch (error) {
        engine.close();
        throw error;
      }
      replaceModel(loaded);
      post({ type: 'model-loaded', id: msg.id, name: msg.name, summary: loaded.summary() });
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
