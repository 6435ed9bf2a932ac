/**
 * Node loader: finds the two kernel builds under build/, picks one per engine (EngineOptions.simd,
 * default 'auto'), compiles each build once per process and hands out engines.
 *
 * Relaxed SIMD in Node: V8 ships it enabled from 11.4 (Node 22); Node 20's V8 11.3 validates the
 * relaxed build only after `--experimental-wasm-relaxed-simd`, which Node refuses in NODE_OPTIONS
 * but accepts through v8.setFlagsFromString — before the module is compiled. So the first
 * question "is relaxed available?" validates the relaxed bytes, and on a refusal sets the flag and
 * asks once more. The flag only adds the relaxed-SIMD opcodes to the validator; it changes
 * nothing for modules that do not use them.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { Engine, POOL_KERNELS, resolveSimd, type EngineOptions, type SimdBuild } from './engine.js';
import { MAX_THREADS, ThreadPool, type SpawnHelper } from './threads.js';

const FILES: Record<SimdBuild, string> = {
  baseline: 'mnist-wasm.wasm',
  relaxed: 'mnist-wasm-relaxed.wasm',
};
/** The same kernels compiled for a shared memory (`--enable threads --sharedMemory`). */
const THREADED_FILES: Record<SimdBuild, string> = {
  baseline: 'mnist-wasm-threads.wasm',
  relaxed: 'mnist-wasm-relaxed-threads.wasm',
};

const compiled: Partial<Record<string, WebAssembly.Module>> = {};
let relaxedAvailable: boolean | undefined;

function findWasm(build: SimdBuild, files = FILES): string | undefined {
  // From src/engine (tests) or dist/src/engine (the built package).
  for (const dir of ['../../build/', '../../../build/']) {
    const path = fileURLToPath(new URL(dir + files[build], import.meta.url));
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** The wasm file of a build (default: the baseline build). */
export function wasmPath(build: SimdBuild = 'baseline', threaded = false): string {
  const files = threaded ? THREADED_FILES : FILES;
  const path = findWasm(build, files);
  if (path) return path;
  throw new Error(
    `build/${files[build]} not found: run \`npm run build\` (npm install runs it) to compile assembly/`,
  );
}

/**
 * True when this Node can run the relaxed-SIMD build (setting V8's flag on Node 20, see the file
 * header). False, without an error, when the relaxed build was not compiled.
 */
export function relaxedSimdAvailable(): boolean {
  if (relaxedAvailable === undefined) {
    const path = findWasm('relaxed');
    if (!path) return (relaxedAvailable = false);
    const bytes = readFileSync(path);
    relaxedAvailable = WebAssembly.validate(bytes);
    if (!relaxedAvailable) {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
      relaxedAvailable = WebAssembly.validate(bytes);
    }
  }
  return relaxedAvailable;
}

/** The build `choice` resolves to on this Node: 'auto' is relaxed when available. */
export function simdBuild(choice: EngineOptions['simd'] = 'auto'): SimdBuild {
  return resolveSimd(choice, choice === 'baseline' ? false : relaxedSimdAvailable());
}

/**
 * The compiled module of a build (default: the one 'auto' picks), compiled once per process.
 * Asking for the relaxed build where it is unavailable throws (see resolveSimd).
 */
export function wasmModule(build: SimdBuild = simdBuild(), threaded = false): WebAssembly.Module {
  const resolved = simdBuild(build);
  const key = `${resolved}${threaded ? '-threads' : ''}`;
  compiled[key] ??= new WebAssembly.Module(readFileSync(wasmPath(resolved, threaded)));
  return compiled[key];
}

/** A helper thread of a ThreadPool: a worker_thread that does not keep the process alive. */
const spawnHelper: SpawnHelper = (source, init) => {
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads'); ${source}(workerData);`,
    { eval: true, workerData: init },
  );
  worker.unref();
  return worker;
};

/**
 * A fresh engine (own instance, own memory), optionally with a memory limit and a kernel build:
 * `createEngine({ simd: 'baseline' })`. `engine.build` says which build it runs.
 */
export function createEngine(options: EngineOptions = {}): Engine {
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new RangeError(`threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
  }
  if (threads === 1) return Engine.fromModule(wasmModule(simdBuild(options.simd)), options);
  const module = wasmModule(simdBuild(options.simd), true);
  const engine = Engine.fromModule(module, options);
  engine.attachPool(new ThreadPool(module, engine.memory, threads, POOL_KERNELS, spawnHelper));
  return engine;
}
