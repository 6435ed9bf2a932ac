/**
 * The page side of the training worker: start it, load a dataset, train with live events, pause /
 * resume / stop, classify digits, move model files in and out. Requests that expect an answer
 * return promises; errors come back as rejected promises (or the `error` event for training).
 */
import type { DataSplit } from '../data/dataset.js';
import type { BatchEvent, EpochRecord, Evaluation, FitResult } from '../train/fit.js';
import type { ModelSpec } from '../nn/spec.js';
import type {
  DatasetName,
  FromWorker,
  ThreadsChoice,
  ToWorker,
  TrainRequestOptions,
} from './protocol.js';
import type { SimdBuild, SimdChoice } from '../engine/engine.js';

/**
 * Where the page serves the kernel builds: build/mnist-wasm.wasm, …-relaxed.wasm, and for more
 * than one thread their shared-memory variants …-threads.wasm, …-relaxed-threads.wasm.
 */
export interface WasmUrls {
  baseline: string;
  relaxed?: string;
  baselineThreads?: string;
  relaxedThreads?: string;
}

export interface TrainerEvents {
  onDataProgress?: (loaded: number, total: number) => void;
  onBatch?: (event: BatchEvent) => void;
  onEpoch?: (record: EpochRecord, evaluation?: Evaluation) => void;
}

export interface TestImages {
  images: Uint8Array;
  labels: Uint8Array;
  /** Argmax predictions of the current model, or null without one. */
  predictions: Int32Array | null;
}

type Pending = { resolve: (value: FromWorker) => void; reject: (error: Error) => void };

export class TrainerClient {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private waiting: {
    type: FromWorker['type'];
    resolve: (m: FromWorker) => void;
    reject: (e: Error) => void;
  }[] = [];
  events: TrainerEvents;
  /** The kernel build the worker runs, once `init` has resolved. */
  build: SimdBuild | undefined;
  /** Whether that build's multiply-add is fused (see Engine.fusedMadd), once `init` has resolved. */
  fusedMadd: boolean | undefined;
  /** The threads the next models train on, once `init` has resolved. */
  threads: number | undefined;
  /** Why `threads` is fewer than asked for (e.g. the page is not cross-origin isolated). */
  notice: string | undefined;
  private readonly urls: WasmUrls;

  /**
   * `wasm`: where the page serves build/mnist-wasm.wasm, or the builds as `{ baseline, relaxed }`
   * (the worker then runs the relaxed one where the browser supports it), plus `baselineThreads`
   * and `relaxedThreads` for `init(simd, threads)` with more than one thread. `worker`: a Worker
   * running ./worker.ts (by default created here, which bundlers such as Vite understand).
   */
  constructor(wasm: string | WasmUrls, events: TrainerEvents = {}, worker?: Worker) {
    this.urls = typeof wasm === 'string' ? { baseline: wasm } : wasm;
    this.events = events;
    this.worker = worker ?? new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    this.worker.onerror = (e) =>
      this.failAll(new Error(e.message || 'the training worker crashed'));
  }

  private receive(m: FromWorker): void {
    if (m.type === 'data-progress') return this.events.onDataProgress?.(m.loaded, m.total);
    if (m.type === 'batch') return this.events.onBatch?.(m.event);
    if (m.type === 'epoch') return this.events.onEpoch?.(m.record, m.evaluation);
    if ('id' in m && m.id !== undefined && this.pending.has(m.id)) {
      const p = this.pending.get(m.id)!;
      this.pending.delete(m.id);
      if (m.type === 'error') p.reject(new Error(m.message));
      else p.resolve(m);
      return;
    }
    if (m.type === 'error') {
      const w = this.waiting.shift();
      if (w) w.reject(new Error(m.message));
      return;
    }
    const i = this.waiting.findIndex((w) => w.type === m.type);
    if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(m);
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    for (const w of this.waiting) w.reject(error);
    this.waiting = [];
  }

  private send(message: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  /** Send a message answered by a one-off reply of `type` (init, load-data, train). */
  private expect<T extends FromWorker['type']>(
    type: T,
    message: ToWorker,
  ): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ type, resolve: resolve as (m: FromWorker) => void, reject });
      this.send(message);
    });
  }

  private request<T extends FromWorker['type']>(
    build: (id: number) => ToWorker,
    transfer: Transferable[] = [],
  ): Promise<Extract<FromWorker, { type: T }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (m: FromWorker) => void, reject });
      this.send(build(id), transfer);
    });
  }

  /**
   * Compile the wasm in the worker. `simd` picks the build: 'auto' (default) runs the relaxed
   * build when one was given and the browser validates it; 'baseline' and 'relaxed' force one
   * (same-build runs give the same bits in Node and in the browser). `threads` (default 1; 'auto':
   * the cores, at most 4) share each GEMM and optimizer step, with the same weights for any count;
   * more than one needs a cross-origin isolated page and the threads builds' URLs, and otherwise
   * falls back to one thread with a `notice`. Call again (not while training) to change either.
   * Resolves with the build; `threads` and `notice` say the rest.
   */
  async init(simd: SimdChoice = 'auto', threads: ThreadsChoice = 1): Promise<SimdBuild> {
    const url = (u: string | undefined) => (u ? new URL(u, location.href).href : undefined);
    const { relaxed, baselineThreads, relaxedThreads } = this.urls;
    const ready = await this.expect('ready', {
      type: 'init',
      wasmUrl: url(this.urls.baseline)!,
      relaxedWasmUrl: url(relaxed),
      threadsWasmUrl: url(baselineThreads),
      relaxedThreadsWasmUrl: url(relaxedThreads),
      simd,
      threads,
    });
    this.build = ready.build;
    this.fusedMadd = ready.fusedMadd;
    this.threads = ready.threads;
    this.notice = ready.notice;
    return ready.build;
  }

  /** Fetch a dataset from `baseUrl` (the page's origin) into the worker. */
  async loadData(
    dataset: DatasetName,
    baseUrl: string,
  ): Promise<{ trainCount: number; testCount: number }> {
    const m = await this.expect('data-ready', {
      type: 'load-data',
      dataset,
      baseUrl: new URL(baseUrl, location.href).href,
    });
    return { trainCount: m.trainCount, testCount: m.testCount };
  }

  /** Train a new model from `spec`; resolves with the history when done or stopped. */
  async train(spec: ModelSpec, options: TrainRequestOptions): Promise<FitResult> {
    return (await this.expect('done', { type: 'train', spec, options })).result;
  }

  pause(): void {
    this.send({ type: 'pause' });
  }

  resume(): void {
    this.send({ type: 'resume' });
  }

  stop(): void {
    this.send({ type: 'stop' });
  }

  /** Class probabilities for one 28×28 digit (uint8, white on black). */
  async predict(pixels: Uint8Array): Promise<Float32Array> {
    const copy = pixels.slice();
    return (
      await this.request<'prediction'>(
        (id) => ({ type: 'predict', id, pixels: copy }),
        [copy.buffer],
      )
    ).probabilities;
  }

  async testImages(start: number, count: number): Promise<TestImages> {
    const m = await this.request<'test-images'>((id) => ({
      type: 'test-images',
      id,
      start,
      count,
    }));
    return { images: m.images, labels: m.labels, predictions: m.predictions };
  }

  /** The current model as a .safetensors file. */
  async exportModel(): Promise<Uint8Array> {
    return (await this.request<'model-bytes'>((id) => ({ type: 'export-model', id }))).bytes;
  }

  /** Replace the model with a file's; rejects with a clear message and keeps the current one. */
  async importModel(bytes: Uint8Array, name: string): Promise<string> {
    const copy = bytes.slice();
    return (
      await this.request<'model-loaded'>(
        (id) => ({ type: 'import-model', id, bytes: copy, name }),
        [copy.buffer],
      )
    ).summary;
  }

  /** SHA-256 of the model's parameter region (hex), for determinism checks. */
  async weightsHash(): Promise<string> {
    return (await this.request<'hash'>((id) => ({ type: 'hash', id }))).hex;
  }

  /** End the worker, and with it its helper threads (nested workers die with their parent). */
  terminate(): void {
    this.worker.terminate();
    this.failAll(new Error('the trainer was terminated'));
  }
}

export type { DataSplit };
