/**
 * The TensorFlow.js side of the peer benchmark: one measurement per process (protocol.ts) with
 * tfjs-core + tfjs-layers 4.22 on the `wasm` backend (SIMD build, binaries located with
 * setWasmPaths in node_modules) or the pure-JavaScript `cpu` backend, in production mode.
 *
 * The network is built from mnist-wasm's own preset (src/nn/presets.ts, resolved by
 * resolveSpec) layer by layer, so both engines train the same architecture: Dense / Conv2D (NHWC,
 * `same` padding where the preset pads (k−1)/2) / MaxPooling2D / Flatten, He-uniform or
 * Glorot-uniform kernels as the preset resolves them, zero biases. Training is `model.fit`
 * (batch 32, shuffle, one epoch, Adam 1e-3, categorical cross-entropy on one-hot labels); the timed
 * span is the fit call; accuracy is `model.predict` at batch 1000 + argMax.
 *
 * Threads: the wasm backend asks for threads with setThreadsCount(cores); tfjs 4.22 reports
 * WASM_HAS_MULTITHREAD_SUPPORT false under Node (so the SIMD-only binary runs, on one thread).
 * `--probe-threads N [--force-threaded]` records what happens when threads are requested, and
 * when the threaded-SIMD binary is forced, as a PeerResult with mode 'probe'.
 *
 *   node dist/bench/peers/tfjs-peer.js --backend wasm --workload mlp-256-128 --mode train
 */
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Dataset } from '../../src/data/dataset.js';
import { preset } from '../../src/nn/presets.js';
import { resolveSpec, type ResolvedLayer } from '../../src/nn/spec.js';
import {
  addRequestOptions,
  BATCH_SIZE,
  emit,
  errorMessage,
  INFER_BATCH_SIZE,
  LEARNING_RATE,
  mnistSlices,
  requestFrom,
  type PeerInfo,
  type PeerRequest,
  type PeerResult,
  type Workload,
} from './protocol.js';

type Backend = 'wasm' | 'cpu';

const INITIALIZERS = { he_uniform: 'heUniform', glorot_uniform: 'glorotUniform' } as const;

function kernelInitializer(layer: ResolvedLayer): 'heUniform' | 'glorotUniform' {
  const init = layer.params[0]!.init;
  if (init !== 'he_uniform' && init !== 'glorot_uniform')
    throw new Error(`layer ${layer.index}: no tfjs counterpart for init ${init}`);
  return INITIALIZERS[init];
}

function activation(layer: ResolvedLayer): 'relu' | 'softmax' | 'linear' {
  const a = layer.activation;
  if (a !== 'relu' && a !== 'softmax' && a !== 'linear')
    throw new Error(`layer ${layer.index}: activation ${a} is not mapped to tfjs here`);
  return a;
}

/** The preset as a compiled tfjs-layers model (NHWC, as mnist-wasm). */
export function buildTfjsModel(workload: Workload): tfl.Sequential {
  const layers = resolveSpec(preset(workload));
  const first = layers[0]!.inShape;
  const flat = first.h === 1 && first.w === 1;
  const model = tfl.sequential();
  let inputShape: number[] | undefined = flat ? [first.c] : [first.h, first.w, first.c];
  const add = (layer: Parameters<tfl.Sequential['add']>[0]): void => {
    model.add(layer);
    inputShape = undefined;
  };
  for (const l of layers) {
    const input = inputShape ? { inputShape } : {};
    switch (l.type) {
      case 'dense':
        // mnist-wasm flattens (h, w, c) implicitly before a dense layer; tfjs needs the layer.
        if (l.inShape.h * l.inShape.w > 1 && layers[l.index - 1]?.type !== 'flatten')
          add(tfl.layers.flatten(input));
        add(
          tfl.layers.dense({
            ...(inputShape ? { inputShape } : {}),
            units: l.outShape.c,
            activation: activation(l),
            useBias: l.bias,
            kernelInitializer: kernelInitializer(l),
          }),
        );
        break;
      case 'conv2d': {
        const k = l.kernelSize;
        let padding: 'same' | 'valid';
        if (l.padding === 0) padding = 'valid';
        else if (l.stride === 1 && 2 * l.padding === k - 1) padding = 'same';
        else throw new Error(`layer ${l.index}: padding ${l.padding} has no tfjs counterpart`);
        add(
          tfl.layers.conv2d({
            ...input,
            filters: l.outShape.c,
            kernelSize: k,
            strides: l.stride,
            padding,
            dataFormat: 'channelsLast',
            activation: activation(l),
            useBias: l.bias,
            kernelInitializer: kernelInitializer(l),
          }),
        );
        break;
      }
      case 'maxPool2d':
        add(tfl.layers.maxPooling2d({ ...input, poolSize: l.kernelSize, strides: l.stride }));
        break;
      case 'flatten':
        add(tfl.layers.flatten(input));
        break;
      default:
        throw new Error(`layer ${l.index}: ${l.type} is not mapped to tfjs here`);
    }
  }
  model.compile({ optimizer: tf.train.adam(LEARNING_RATE), loss: 'categoricalCrossentropy' });
  return model;
}

/** (count, 28, 28, 1) or (count, 784) float pixels / 255. */
function imagesTensor(workload: Workload, ds: Dataset): tf.Tensor {
  const x = new Float32Array(ds.images.length);
  for (let i = 0; i < x.length; i++) x[i] = ds.images[i]! / 255;
  const shape = workload === 'lenet5' ? [ds.count, ds.rows, ds.cols, 1] : [ds.count, 784];
  return tf.tensor(x, shape, 'float32');
}

function oneHot(ds: Dataset): tf.Tensor {
  return tf.tidy(() => tf.oneHot(tf.tensor1d(Int32Array.from(ds.labels), 'int32'), 10));
}

async function accuracy(model: tfl.Sequential, x: tf.Tensor, ds: Dataset): Promise<number> {
  const predicted = tf.tidy(() =>
    tf.argMax(model.predict(x, { batchSize: INFER_BATCH_SIZE }) as tf.Tensor, 1),
  );
  const classes = await predicted.data();
  predicted.dispose();
  let correct = 0;
  for (let i = 0; i < ds.count; i++) if (classes[i] === ds.labels[i]) correct++;
  return correct / ds.count;
}

async function train(r: PeerRequest): Promise<Omit<PeerResult, 'engine' | 'info'>> {
  const { train, test } = mnistSlices(r);
  const x = imagesTensor(r.workload, train);
  const y = oneHot(train);
  const fitArgs = { batchSize: BATCH_SIZE, epochs: 1, shuffle: true, verbose: 0 as const };
  if (r.warmup > 0) {
    const n = Math.min(r.warmup, train.count);
    const warm = buildTfjsModel(r.workload);
    const [wx, wy] = [tf.slice(x, 0, n), tf.slice(y, 0, n)];
    await warm.fit(wx, wy, fitArgs);
    tf.dispose([wx, wy]);
    warm.dispose();
  }
  const model = buildTfjsModel(r.workload);
  const started = performance.now();
  const history = await model.fit(x, y, fitArgs);
  const seconds = (performance.now() - started) / 1000;
  tf.dispose([x, y]);
  const loss = Number(history.history.loss?.[0]);
  const xTest = imagesTensor(r.workload, test);
  const testAccuracy = await accuracy(model, xTest, test);
  xTest.dispose();
  return {
    workload: r.workload,
    mode: 'train',
    samples: train.count,
    seconds,
    trainLoss: Number.isFinite(loss) ? loss : null,
    testAccuracy,
    testSamples: test.count,
  };
}

/** Untrained weights: the speed of a forward pass does not depend on them. */
async function infer(r: PeerRequest): Promise<Omit<PeerResult, 'engine' | 'info'>> {
  const { test } = mnistSlices(r);
  const model = buildTfjsModel(r.workload);
  const x = imagesTensor(r.workload, test);
  const run = async (input: tf.Tensor): Promise<void> => {
    const out = model.predict(input, { batchSize: INFER_BATCH_SIZE }) as tf.Tensor;
    await out.data(); // read back, as mnist-wasm's predict returns a Float32Array
    out.dispose();
  };
  if (r.warmup > 0) {
    const warm = tf.slice(x, 0, Math.min(r.warmup, test.count));
    await run(warm);
    warm.dispose();
  }
  const started = performance.now();
  await run(x);
  const seconds = (performance.now() - started) / 1000;
  return { workload: r.workload, mode: 'infer', samples: test.count, seconds };
}

function wasmDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/';
}

/** What tfjs logged while a backend failed to start, without stack traces (tfjs logs err.stack). */
function describeLogged(args: unknown[]): string {
  return args
    .map((a) => {
      if (a instanceof Error) {
        const code = (a as { code?: unknown }).code;
        return `${a.name}${code ? ` [${String(code)}]` : ''}: ${a.message.split('\n')[0]}`;
      }
      return errorMessage(a).split('\n')[0]!;
    })
    .join(' ');
}

/**
 * Start a backend; tfjs logs an initialisation failure and returns false instead of throwing, so
 * the logged messages become the error.
 */
async function startBackend(backend: Backend, threads: number, force = false): Promise<PeerInfo> {
  const info: PeerInfo = { backend, version: tf.version_core, layers: tfl.version_layers };
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(wasmDir());
    wasm.setThreadsCount(threads);
    if (force) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    const logged: string[] = [];
    const saved = { warn: console.warn, error: console.error, log: console.log };
    console.warn = console.error = (...args: unknown[]) => void logged.push(describeLogged(args));
    let ok: boolean;
    try {
      ok = await tf.setBackend('wasm');
    } finally {
      Object.assign(console, saved);
    }
    const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    const multithread = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
    Object.assign(info, {
      simd,
      multithreadSupport: multithread,
      requestedThreads: threads,
      binary: `tfjs-backend-wasm${multithread && simd ? '-threaded-simd' : simd ? '-simd' : ''}.wasm`,
    });
    if (!ok) {
      const why = logged.filter((l) => !/^Initialization of backend wasm failed$/.test(l));
      throw new Error(why.join(' ') || logged.join(' ') || 'tf.setBackend("wasm") returned false');
    }
    info.threads = wasm.getThreadsCount();
  } else {
    await import('@tensorflow/tfjs-backend-cpu');
    // Silence the "install tfjs-node" banner: it would land on stdout before the result line.
    const saved = console.log;
    console.log = () => {};
    try {
      if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
    } finally {
      console.log = saved;
    }
    info.threads = 1;
  }
  tf.enableProdMode();
  return info;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected an integer ≥ 1`);
  return n;
}

async function main(): Promise<void> {
  const program = addRequestOptions(new Command('tfjs-peer'))
    .addOption(new Option('--backend <name>').choices(['wasm', 'cpu']).default('wasm'))
    .option('--probe-threads <n>', 'start the wasm backend asking for N threads, report', integer)
    .option('--force-threaded', 'with --probe-threads: force the threaded-SIMD binary');
  program.parse();
  const options = program.opts();
  const backend = options.backend as Backend;
  const engine = backend === 'wasm' ? 'tfjs-wasm' : 'tfjs-cpu';
  if (options.probeThreads !== undefined) {
    // Emscripten's pthread start-up may fail again asynchronously after setBackend returned.
    const late: string[] = [];
    process.on('uncaughtException', (e) => void late.push(errorMessage(e)));
    try {
      const info = await startBackend('wasm', options.probeThreads, Boolean(options.forceThreaded));
      emit({ engine, mode: 'probe', info: { ...info, forced: Boolean(options.forceThreaded) } });
    } catch (e) {
      emit({ engine, mode: 'probe', error: [errorMessage(e), ...late].join('; ') });
    }
    process.exit(0); // a half-started worker pool must not keep the process alive
  }
  const r = requestFrom(options);
  let info: PeerInfo | undefined;
  try {
    info = await startBackend(backend, cpus().length);
    const result = r.mode === 'train' ? await train(r) : await infer(r);
    emit({ engine, ...result, info });
  } catch (e) {
    emit({ engine, workload: r.workload, mode: r.mode, error: errorMessage(e), info });
  }
}

await main();
