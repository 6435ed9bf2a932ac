/**
 * `npm run bench:peers`: mnist-wasm against its peers on the same workloads, in one run on one
 * machine. Engines: mnist-wasm (one thread), TensorFlow.js 4.22 with the wasm backend (SIMD) and
 * the cpu backend (plain JavaScript), and PyTorch (Debian's python3-torch, one thread: its own
 * pool and OpenBLAS's, see pytorch_peer.py) when /usr/bin/python3 can import torch. `--threads N`
 * gives mnist-wasm and PyTorch N threads each (tfjs-wasm gets one under Node whatever it asks for).
 * Workloads: the presets mlp-256-128, mlp-128-64 and lenet5.
 *
 *  - training: one epoch over the 60,000 MNIST training images (Adam 1e-3, batch 32, shuffled),
 *    then accuracy on the 10,000 test images; the timed span is the engine's own fit call;
 *  - inference: images/s of the engine's predict over the 10,000 test images at batch 1000.
 *
 * Every measurement runs in its own child process (bench/peers/*-peer.ts, pytorch_peer.py; see
 * bench/peers/protocol.ts), so no engine inherits another's memory, JIT state or heap. Rounds
 * alternate the engines (A B C D, A B C D, …) because this shared machine drifts between a fast
 * and a slow state; the tables give medians and the ratio peer seconds / mnist-wasm seconds. Before
 * the timed run each child warms up so that JIT tiers are settled as in a longer run: training on
 * a throwaway model (--warmup images, default 320 = 10 steps; tfjs-cpu 64), inference with one
 * untimed pass over the images it then times.
 *
 * tfjs-cpu needs about 6 minutes per MLP epoch and over an hour per LeNet-5 epoch on this machine,
 * so by default it trains on the first 3,200 training images (LeNet-5: 640), is evaluated and timed
 * for inference on the first 2,000 test images, and its epoch time is extrapolated (marked `~`);
 * --full-cpu runs whole epochs. A peer that cannot run a workload keeps its row with its own error
 * message; a run that trains but stays near chance accuracy is flagged with the accuracy.
 *
 *   npm run bench:peers                                  # everything (≈10 minutes)
 *   npm run bench:peers -- --quick                       # smoke run: 256 images, 1 round
 *   npm run bench:peers -- --only lenet5 --engines mnist-wasm,pytorch --rounds 5
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import {
  ENGINES,
  errorMessage,
  requestArgs,
  TEST_COUNT,
  TRAIN_COUNT,
  WORKLOADS,
  type EngineName,
  type PeerInfo,
  type PeerRequest,
  type PeerResult,
  type Workload,
} from './peers/protocol.js';
import { median } from './timing.js';

/** tfjs-cpu's default training prefix: about 20 s (MLPs) and 45 s (LeNet-5) per round here. */
const CPU_TRAIN_SAMPLES: Record<Workload, number> = {
  'mlp-256-128': 3200,
  'mlp-128-64': 3200,
  lenet5: 640,
};
const CPU_TEST_SAMPLES = 2000;
/** --quick: a smoke run (LeNet-5 on tfjs-cpu: two steps, ≈2 s each). */
const QUICK_TRAIN_SAMPLES = 256;
const QUICK_CPU_TRAIN_SAMPLES: Record<Workload, number> = {
  'mlp-256-128': 256,
  'mlp-128-64': 256,
  lenet5: 64,
};
const QUICK_TEST_SAMPLES = 1000;
const QUICK_CPU_TEST_SAMPLES = 500;
const WARMUP_SAMPLES = 320;
/** tfjs-cpu's LeNet-5 steps take ≈2 s each; its JavaScript kernels are warm after two. */
const CPU_WARMUP_SAMPLES = 64;
/** Below this accuracy a run is "≈ chance" — checked once at least this many images were seen. */
const CHANCE_ACCURACY = 0.2;
const CHANCE_CHECK_MIN_SAMPLES = 500;
const PROBE_TIMEOUT_MS = 60_000;

interface Settings {
  rounds: number;
  inferRounds: number;
  quick: boolean;
  fullCpu: boolean;
  workloads: Workload[];
  engines: EngineName[];
  training: boolean;
  inference: boolean;
  trainSamples?: number;
  cpuSamples?: number;
  warmup?: number;
  seed: number;
  /** Threads for mnist-wasm and PyTorch (--threads; tfjs picks its own). */
  threads: number;
  python: string;
  out: string;
}

/** What one engine runs for one workload. */
interface Plan {
  trainSamples: number;
  testSamples: number;
  inferImages: number;
  trainWarmup: number;
  inferWarmup: number;
}

function planFor(engine: EngineName, workload: Workload, s: Settings): Plan {
  const cpu = engine === 'tfjs-cpu' && !s.fullCpu;
  let trainSamples: number;
  let testSamples: number;
  if (s.quick) {
    trainSamples = cpu ? QUICK_CPU_TRAIN_SAMPLES[workload] : QUICK_TRAIN_SAMPLES;
    testSamples = cpu ? QUICK_CPU_TEST_SAMPLES : QUICK_TEST_SAMPLES;
  } else {
    trainSamples = cpu ? CPU_TRAIN_SAMPLES[workload] : TRAIN_COUNT;
    testSamples = cpu ? CPU_TEST_SAMPLES : TEST_COUNT;
  }
  if (s.trainSamples !== undefined) trainSamples = s.trainSamples;
  if (engine === 'tfjs-cpu' && s.cpuSamples !== undefined) trainSamples = s.cpuSamples;
  const warmup =
    s.warmup ?? (s.quick ? 0 : engine === 'tfjs-cpu' ? CPU_WARMUP_SAMPLES : WARMUP_SAMPLES);
  return {
    trainSamples,
    testSamples,
    inferImages: testSamples,
    trainWarmup: Math.min(warmup, trainSamples),
    // One untimed pass over the same images: in a fresh mnist-wasm process the first pass over
    // the 10,000 test images ran at 0.6–0.7× of the passes after it, and a 1,000-image warm-up
    // left most of that ramp in the timed pass (throwaway script, mlp-128-64).
    inferWarmup: s.quick ? 0 : testSamples,
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes

const fromHere = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

function hasAvx512(): boolean {
  try {
    return /^flags\s*:.*\bavx512f\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
}

/** PyTorch's environment: OpenBLAS's AVX-512 kernels where the CPU has them (its best case). */
function pythonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (hasAvx512() && env.OPENBLAS_CORETYPE === undefined) env.OPENBLAS_CORETYPE = 'SkylakeX';
  return env;
}

function commandFor(engine: EngineName, s: Settings): { file: string; args: string[] } {
  switch (engine) {
    case 'mnist-wasm':
      return { file: process.execPath, args: [fromHere('./peers/mnist-wasm-peer.js')] };
    case 'mnist-wasm-dense':
      return {
        file: process.execPath,
        args: [fromHere('./peers/mnist-wasm-peer.js'), '--dense-input'],
      };
    case 'tfjs-wasm':
    case 'tfjs-cpu':
      return {
        file: process.execPath,
        args: [fromHere('./peers/tfjs-peer.js'), '--backend', engine.slice('tfjs-'.length)],
      };
    case 'pytorch':
      return { file: s.python, args: [fromHere('../../bench/peers/pytorch_peer.py')] };
  }
}

/** The most telling line of a crashed child's stderr: the first error line, else the last line. */
function crashLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.find((l) => /^\w*(Error|Exception)\b/.test(l)) ?? lines[lines.length - 1] ?? '';
}

/** Run one child; its last stdout line is the result. Never rejects: failures become `error`. */
function runChild(
  engine: EngineName,
  extraArgs: string[],
  s: Settings,
  timeoutMs?: number,
): Promise<PeerResult> {
  const { file, args } = commandFor(engine, s);
  return new Promise((resolvePromise) => {
    const child = spawn(file, [...args, ...extraArgs], {
      env: engine === 'pytorch' ? pythonEnv() : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(timeoutMs ? { timeout: timeoutMs } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => resolvePromise({ engine, error: `cannot run ${file}: ${e.message}` }));
    child.on('close', (code, signal) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        const result = JSON.parse(last) as PeerResult;
        if (typeof result === 'object' && result !== null && result.engine === engine)
          return resolvePromise(result);
      } catch {
        // not a result line: the child crashed (reported below)
      }
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
      const why = crashLine(stderr);
      resolvePromise({ engine, error: `${how}${why ? `: ${why}` : ''}` });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Measurements

/** What training and inference rows share: the engine, its status, each round's outcome. */
interface RoundRow {
  workload: Workload;
  engine: EngineName;
  status: 'ok' | 'failed' | 'skipped';
  /** failed/skipped: why, in the engine's words. */
  error?: string;
  warmup: number;
  /** Seconds of each successful round. */
  seconds: number[];
  roundErrors: string[];
}

interface TrainingRow extends RoundRow {
  /** ok, but the result is suspect: accuracy ≈ chance, or the loss was not finite. */
  warning?: string;
  trainSamples: number;
  testSamples: number;
  /** True when trainSamples < 60,000: epochSeconds = median seconds × 60,000 / trainSamples. */
  extrapolated: boolean;
  epochSeconds: number | null;
  samplesPerSecond: number | null;
  /** Median over rounds; each round's in testAccuracies. */
  testAccuracy: number | null;
  testAccuracies: number[];
  trainLosses: (number | null)[];
  /** epochSeconds / mnist-wasm's epochSeconds (how many times slower the peer is). */
  ratio: number | null;
}

interface InferenceRow extends RoundRow {
  images: number;
  imagesPerSecond: number | null;
  /** Per round. */
  roundImagesPerSecond: number[];
  /** mnist-wasm images/s / peer images/s (= peer seconds / mnist-wasm seconds). */
  ratio: number | null;
}

const fmtInt = (x: number): string => Math.round(x).toLocaleString('en-US');
const fmtPct = (x: number): string => `${(100 * x).toFixed(2)}%`;
const fmtSec = (x: number): string =>
  x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);

function progress(line: string): void {
  process.stderr.write(line + '\n');
}

/**
 * `rounds` rounds over `rows`, alternating engines within each round (A B C A B C …). A round's
 * seconds go to its row and `record` keeps the rest of the result and says it for the progress
 * line; an engine that fails is not run again (it would fail the same way), and a row without
 * one successful round ends 'failed' with its first error.
 */
async function alternate<R extends RoundRow>(
  rows: R[],
  rounds: number,
  mode: PeerRequest['mode'],
  request: (row: R) => PeerRequest,
  s: Settings,
  infos: Map<EngineName, PeerInfo>,
  record: (row: R, result: PeerResult & { seconds: number }) => string,
): Promise<void> {
  for (let round = 1; round <= rounds; round++) {
    for (const row of rows) {
      if (row.status === 'skipped' || row.roundErrors.length > 0) continue;
      const r = await runChild(row.engine, requestArgs(request(row)), s);
      const where = `${mode} ${row.workload} [${round}/${rounds}] ${row.engine}`;
      if (r.info) infos.set(row.engine, { ...infos.get(row.engine), ...r.info });
      if (r.error !== undefined || r.seconds === undefined) {
        row.roundErrors.push(r.error ?? 'no timing in the result');
        progress(`  ${where}: failed: ${r.error}`);
        continue;
      }
      row.seconds.push(r.seconds);
      progress(`  ${where}: ${record(row, { ...r, seconds: r.seconds })}`);
    }
  }
  for (const row of rows) {
    if (row.status === 'skipped' || row.seconds.length > 0) continue;
    row.status = 'failed';
    row.error = row.roundErrors[0];
  }
}

async function measureTraining(
  workload: Workload,
  engines: EngineName[],
  s: Settings,
  skipped: Map<EngineName, string>,
  infos: Map<EngineName, PeerInfo>,
): Promise<TrainingRow[]> {
  const rows = engines.map((engine): TrainingRow => {
    const p = planFor(engine, workload, s);
    return {
      workload,
      engine,
      status: skipped.has(engine) ? 'skipped' : 'ok',
      ...(skipped.has(engine) ? { error: skipped.get(engine)! } : {}),
      trainSamples: p.trainSamples,
      testSamples: p.testSamples,
      warmup: p.trainWarmup,
      extrapolated: p.trainSamples < TRAIN_COUNT,
      seconds: [],
      epochSeconds: null,
      samplesPerSecond: null,
      testAccuracy: null,
      testAccuracies: [],
      trainLosses: [],
      ratio: null,
      roundErrors: [],
    };
  });
  await alternate(
    rows,
    s.rounds,
    'train',
    (row) => ({
      workload,
      mode: 'train',
      trainSamples: row.trainSamples,
      testSamples: row.testSamples,
      warmup: row.warmup,
      seed: s.seed,
      threads: s.threads,
    }),
    s,
    infos,
    (row, r) => {
      row.testAccuracies.push(r.testAccuracy ?? NaN);
      row.trainLosses.push(r.trainLoss ?? null);
      return (
        `${r.seconds.toFixed(2)} s for ${fmtInt(row.trainSamples)} images ` +
        `(${fmtInt(row.trainSamples / r.seconds)} samples/s), test ${fmtPct(r.testAccuracy ?? NaN)}`
      );
    },
  );
  for (const row of rows) {
    if (row.status !== 'ok') continue;
    const sec = median(row.seconds);
    row.samplesPerSecond = row.trainSamples / sec;
    row.epochSeconds = (sec * TRAIN_COUNT) / row.trainSamples;
    row.testAccuracy = median(row.testAccuracies);
    if (row.trainLosses.some((l) => l === null)) {
      row.warning = `the training loss became NaN/Inf (test accuracy ${fmtPct(row.testAccuracy)})`;
    } else if (row.trainSamples >= CHANCE_CHECK_MIN_SAMPLES && row.testAccuracy < CHANCE_ACCURACY) {
      row.warning = `does not learn: test accuracy ${fmtPct(row.testAccuracy)} ≈ chance`;
    }
  }
  const base = rows.find((r) => r.engine === 'mnist-wasm')?.epochSeconds ?? null;
  for (const row of rows) {
    if (base !== null && row.epochSeconds !== null) row.ratio = row.epochSeconds / base;
  }
  return rows;
}

async function measureInference(
  workload: Workload,
  engines: EngineName[],
  s: Settings,
  skipped: Map<EngineName, string>,
  infos: Map<EngineName, PeerInfo>,
): Promise<InferenceRow[]> {
  const rows = engines.map((engine): InferenceRow => {
    const p = planFor(engine, workload, s);
    return {
      workload,
      engine,
      status: skipped.has(engine) ? 'skipped' : 'ok',
      ...(skipped.has(engine) ? { error: skipped.get(engine)! } : {}),
      images: p.inferImages,
      warmup: p.inferWarmup,
      seconds: [],
      imagesPerSecond: null,
      roundImagesPerSecond: [],
      ratio: null,
      roundErrors: [],
    };
  });
  await alternate(
    rows,
    s.inferRounds,
    'infer',
    (row) => ({
      workload,
      mode: 'infer',
      trainSamples: 0,
      testSamples: row.images,
      warmup: row.warmup,
      seed: s.seed,
      threads: s.threads,
    }),
    s,
    infos,
    (row, r) => {
      row.roundImagesPerSecond.push(row.images / r.seconds);
      return `${fmtInt(row.images / r.seconds)} images/s`;
    },
  );
  for (const row of rows) {
    if (row.status !== 'ok') continue;
    row.imagesPerSecond = row.images / median(row.seconds);
  }
  const base = rows.find((r) => r.engine === 'mnist-wasm')?.imagesPerSecond ?? null;
  for (const row of rows) {
    if (base !== null && row.imagesPerSecond !== null) row.ratio = base / row.imagesPerSecond;
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Set-up probes

interface ThreadsProbe {
  /** setThreadsCount(cores) with tfjs's own feature detection. */
  requested: PeerResult;
  /** The same with WASM_HAS_MULTITHREAD_SUPPORT forced true (the threaded-SIMD binary). */
  forced: PeerResult;
  summary: string;
}

async function probeTfjsThreads(s: Settings): Promise<ThreadsProbe> {
  const n = String(cpus().length);
  const requested = await runChild('tfjs-wasm', ['--probe-threads', n], s, PROBE_TIMEOUT_MS);
  const forced = await runChild(
    'tfjs-wasm',
    ['--probe-threads', n, '--force-threaded'],
    s,
    PROBE_TIMEOUT_MS,
  );
  const got = requested.info?.threads;
  const parts = [
    requested.error !== undefined
      ? `setThreadsCount(${n}) failed: ${requested.error}`
      : `setThreadsCount(${n}) → ${String(got)} thread(s), ${String(requested.info?.binary)} ` +
        `(WASM_HAS_MULTITHREAD_SUPPORT is ${String(requested.info?.multithreadSupport)} under Node)`,
    forced.error !== undefined
      ? `forcing the threaded-SIMD binary fails: ${forced.error}`
      : `forcing the threaded-SIMD binary works: ${String(forced.info?.threads)} thread(s)`,
  ];
  return { requested, forced, summary: parts.join('; ') };
}

/** PyTorch's set-up, or why it cannot run (then its rows say "skipped: …"). */
async function probePytorch(s: Settings): Promise<{ info?: PeerInfo; skip?: string }> {
  if (s.python.includes('/') && !existsSync(s.python))
    return { skip: `skipped: ${s.python} not found (install python3-torch)` };
  const r = await runChild('pytorch', ['--probe'], s, PROBE_TIMEOUT_MS);
  if (r.error !== undefined) return { skip: `skipped: ${r.error}` };
  return { info: r.info ?? {} };
}

// ---------------------------------------------------------------------------------------------
// Output

/** Plain-text table: columns padded to their widest cell; the last column is left ragged. */
function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function rowNote(
  row: { status: string; error?: string; warning?: string; roundErrors: string[] },
  extra: string[],
): string {
  if (row.status === 'skipped') return row.error ?? 'skipped';
  if (row.status === 'failed') return `FAILED: ${row.error}`;
  const notes = [...extra];
  if (row.warning) notes.push(`WARNING: ${row.warning}`);
  if (row.roundErrors.length > 0) notes.push(`a round failed: ${row.roundErrors[0]}`);
  return notes.join('; ');
}

function formatTraining(rows: TrainingRow[]): string {
  const header = [
    'workload',
    'engine',
    'epoch s',
    'rounds (s)',
    'samples/s',
    'test acc',
    'peer s / mnist-wasm s',
    'notes',
  ];
  const body = rows.map((r, i) => {
    const workload = i > 0 && rows[i - 1]!.workload === r.workload ? '' : r.workload;
    if (r.status !== 'ok') return [workload, r.engine, '—', '—', '—', '—', '—', rowNote(r, [])];
    const notes: string[] = [];
    if (r.extrapolated) notes.push(`~ first ${fmtInt(r.trainSamples)} images, extrapolated`);
    if (r.testSamples < TEST_COUNT) notes.push(`accuracy on ${fmtInt(r.testSamples)} test images`);
    return [
      workload,
      r.engine,
      `${r.extrapolated ? '~' : ''}${fmtSec(r.epochSeconds!)}`,
      r.seconds.map(fmtSec).join(', '),
      fmtInt(r.samplesPerSecond!),
      fmtPct(r.testAccuracy!),
      r.ratio === null ? '—' : r.ratio.toFixed(2),
      rowNote(r, notes),
    ];
  });
  return formatTable(header, body);
}

function formatInference(rows: InferenceRow[]): string {
  const header = [
    'workload',
    'engine',
    'images/s',
    'rounds (images/s)',
    'peer s / mnist-wasm s',
    'notes',
  ];
  const body = rows.map((r, i) => {
    const workload = i > 0 && rows[i - 1]!.workload === r.workload ? '' : r.workload;
    if (r.status !== 'ok') return [workload, r.engine, '—', '—', '—', rowNote(r, [])];
    const notes = r.images < TEST_COUNT ? [`first ${fmtInt(r.images)} test images`] : [];
    return [
      workload,
      r.engine,
      fmtInt(r.imagesPerSecond!),
      r.roundImagesPerSecond.map(fmtInt).join(', '),
      r.ratio === null ? '—' : r.ratio.toFixed(2),
      rowNote(r, notes),
    ];
  });
  return formatTable(header, body);
}

function describeEngine(engine: EngineName, info: PeerInfo | undefined, s: Settings): string {
  const i = info ?? {};
  switch (engine) {
    case 'mnist-wasm':
      return (
        `mnist-wasm: ${String(i.threads ?? '?')} thread(s), ${String(i.build ?? '?')} SIMD build, ` +
        'zero inputs skipped'
      );
    case 'mnist-wasm-dense':
      return (
        `mnist-wasm-dense: ${String(i.threads ?? '?')} thread(s), ${String(i.build ?? '?')} SIMD ` +
        'build, ' +
        'sparseInput: false (dense GEMMs; LeNet-5 conv1 still skips zeros)'
      );
    case 'tfjs-wasm':
      return (
        `tfjs-wasm: tfjs ${String(i.version ?? '?')}, ${String(i.binary ?? '?')}, ` +
        `${String(i.threads ?? '?')} thread(s), production mode`
      );
    case 'tfjs-cpu':
      return `tfjs-cpu: tfjs ${String(i.version ?? '?')}, plain JavaScript, 1 thread, production mode`;
    case 'pytorch':
      return (
        `pytorch: torch ${String(i.version ?? '?')} (${s.python}), ${String(i.threads ?? '?')} ` +
        `thread(s), BLAS: ${String(i.blas ?? '?')}` +
        (i.blasThreads == null ? '' : ` on ${String(i.blasThreads)} thread(s)`) +
        `, OPENBLAS_CORETYPE=${String(i.coretype ?? '?')}`
      );
  }
}

/** "320 images, tfjs-cpu 64": the most common warm-up, then the engines that differ. */
function describeWarmups(rows: TrainingRow[]): string {
  const ran = rows.filter((r) => r.status === 'ok');
  const counts = new Map<number, number>();
  for (const r of ran) counts.set(r.warmup, (counts.get(r.warmup) ?? 0) + 1);
  const common = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
  const others = new Map<EngineName, number>();
  for (const r of ran) if (r.warmup !== common) others.set(r.engine, r.warmup);
  return [`${fmtInt(common)} images`, ...[...others].map(([e, n]) => `${e} ${fmtInt(n)}`)].join(
    ', ',
  );
}

function threadsNote(s: Settings): string {
  return s.threads === 1
    ? 'one thread each'
    : `mnist-wasm and PyTorch on ${String(s.threads)} threads, TensorFlow.js as it can`;
}

function commandLine(): string {
  const args = process.argv.slice(2).join(' ');
  if (process.env.npm_lifecycle_event === 'bench:peers')
    return `npm run bench:peers${args ? ` -- ${args}` : ''}`;
  return `node dist/bench/peers.js${args ? ` ${args}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Command line

function listOf<T extends string>(all: readonly T[], what: string) {
  return (value: string): T[] => {
    const items = value
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    for (const item of items) {
      if (!all.includes(item as T))
        throw new InvalidArgumentError(`unknown ${what} "${item}" (expected ${all.join(', ')})`);
    }
    if (items.length === 0) throw new InvalidArgumentError(`expected a list of ${what}s`);
    return items as T[];
  };
}

function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer in [${min}, ${max}], got "${value}"`);
    return n;
  };
}

function parseSettings(argv: string[]): Settings {
  const program = new Command('bench:peers')
    .description('mnist-wasm against TensorFlow.js (wasm, cpu) and PyTorch, alternating rounds')
    .option('--quick', 'smoke run: 256 training images, 1,000 test images, 1 round, no warm-up')
    .option('--rounds <n>', 'training rounds (default 3; 1 with --quick)', intOption(1, 100))
    .option('--infer-rounds <n>', 'inference rounds (default 5; 1 with --quick)', intOption(1, 100))
    .option(
      '--only <workloads>',
      `comma-separated: ${WORKLOADS.join(', ')}`,
      listOf(WORKLOADS, 'workload'),
    )
    .option(
      '--engines <engines>',
      `comma-separated: ${ENGINES.join(', ')}`,
      listOf(ENGINES, 'engine'),
    )
    .option('--full-cpu', 'tfjs-cpu trains whole epochs and uses the whole test set (hours)')
    .option(
      '--train-samples <n>',
      'train every engine on the first N images',
      intOption(32, TRAIN_COUNT),
    )
    .option('--cpu-samples <n>', "tfjs-cpu's training prefix", intOption(32, TRAIN_COUNT))
    .option('--warmup <n>', 'warm-up images before each timed epoch', intOption(0, TRAIN_COUNT))
    .option('--no-training', 'skip the training measurements')
    .option('--no-inference', 'skip the inference measurements')
    .option('--seed <n>', 'init and shuffle seed', intOption(0, 2 ** 31), 1)
    .option(
      '--threads <n>',
      'threads for mnist-wasm and PyTorch (tfjs-wasm runs one under Node, tfjs-cpu one)',
      intOption(1, 64),
      1,
    )
    .option(
      '--python <path>',
      'the Python that has torch',
      existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
    )
    .option(
      '--out <file>',
      'JSON output (default bench/results/peers-latest.json; with --threads N > 1 peers-latest-Nt.json)',
    );
  program.parse(argv);
  const o = program.opts();
  const quick = Boolean(o.quick);
  return {
    rounds: (o.rounds as number | undefined) ?? (quick ? 1 : 3),
    inferRounds: (o.inferRounds as number | undefined) ?? (quick ? 1 : 5),
    quick,
    fullCpu: Boolean(o.fullCpu),
    workloads: (o.only as Workload[] | undefined) ?? [...WORKLOADS],
    engines: (o.engines as EngineName[] | undefined) ?? [...ENGINES],
    training: o.training as boolean,
    inference: o.inference as boolean,
    trainSamples: o.trainSamples as number | undefined,
    cpuSamples: o.cpuSamples as number | undefined,
    warmup: o.warmup as number | undefined,
    seed: o.seed as number,
    threads: o.threads as number,
    python: o.python as string,
    out: resolve(
      (o.out as string | undefined) ??
        fromHere(
          `../../bench/results/peers-latest${(o.threads as number) > 1 ? `-${String(o.threads)}t` : ''}.json`,
        ),
    ),
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const s = parseSettings(process.argv);
  // mnist-wasm first: it is the baseline of every ratio.
  const engines = ENGINES.filter((e) => s.engines.includes(e));
  const require = createRequire(import.meta.url);
  const tfjsVersion = (require('@tensorflow/tfjs-core/package.json') as { version: string })
    .version;
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    avx512f: hasAvx512(),
    node: process.version,
    v8: process.versions.v8,
    tfjs: tfjsVersion,
    torch: null as string | null,
    date: new Date().toISOString(),
    command: commandLine(),
  };
  console.log(
    `mnist-wasm peer benchmark — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node} ` +
      `(V8 ${machine.v8}), TensorFlow.js ${tfjsVersion}`,
  );

  const skipped = new Map<EngineName, string>();
  const infos = new Map<EngineName, PeerInfo>();
  let threadsProbe: ThreadsProbe | undefined;
  if (engines.includes('tfjs-wasm')) threadsProbe = await probeTfjsThreads(s);
  if (engines.includes('pytorch')) {
    const torch = await probePytorch(s);
    if (torch.skip !== undefined) skipped.set('pytorch', torch.skip);
    if (torch.info) {
      infos.set('pytorch', torch.info);
      machine.torch = String(torch.info.version);
    }
  }

  const training: TrainingRow[] = [];
  const inference: InferenceRow[] = [];
  if (s.training) {
    for (const workload of s.workloads)
      training.push(...(await measureTraining(workload, engines, s, skipped, infos)));
  }
  if (s.inference) {
    for (const workload of s.workloads)
      inference.push(...(await measureInference(workload, engines, s, skipped, infos)));
  }
  const wallSeconds = (performance.now() - started) / 1000;

  console.log('\nEngines (each measurement in its own child process):');
  for (const engine of engines) {
    const skip = skipped.get(engine);
    console.log(`  ${skip ? `${engine}: ${skip}` : describeEngine(engine, infos.get(engine), s)}`);
  }
  if (threadsProbe) console.log(`  tfjs-wasm threads: ${threadsProbe.summary}`);
  if (s.training) {
    console.log(
      `\nTraining (${threadsNote(s)}): one epoch, Adam 1e-3, batch 32, shuffled; the engine's fit ` +
        `call timed after a ` +
        `warm-up on a throwaway model (${describeWarmups(training)}); median of ${s.rounds} ` +
        `alternating round(s)`,
    );
    console.log(formatTraining(training));
  }
  if (s.inference) {
    console.log(
      `\nInference (${threadsNote(s)}): predict over the test images at batch 1000 (untrained ` +
        `weights, result read ` +
        `back), after ${s.quick ? 'no warm-up' : 'one untimed pass over the same images'}; ` +
        `median of ${s.inferRounds} alternating round(s)`,
    );
    console.log(formatInference(inference));
  }
  console.log(`\n${machine.command}: ${wallSeconds.toFixed(0)} s wall time`);

  const engineInfo = Object.fromEntries(
    engines.map((e) => [
      e,
      {
        ...(skipped.has(e) ? { skipped: skipped.get(e) } : {}),
        ...(infos.get(e) ?? {}),
        ...(e === 'tfjs-wasm' && threadsProbe ? { threadsProbe } : {}),
      },
    ]),
  );
  const settings = { ...s, cpuTrainSamples: CPU_TRAIN_SAMPLES, cpuTestSamples: CPU_TEST_SAMPLES };
  mkdirSync(dirname(s.out), { recursive: true });
  writeFileSync(
    s.out,
    JSON.stringify(
      { machine, settings, engines: engineInfo, training, inference, wallSeconds },
      null,
      2,
    ) + '\n',
  );
  console.log(`wrote ${s.out}`);
}

main().catch((e: unknown) => {
  console.error(`error: ${errorMessage(e)}`);
  process.exit(1);
});
