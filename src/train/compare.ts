/**
 * The activation comparison: the same architecture trained once per hidden activation, from the
 * same seed (same initial-weight draws, same data order, same dropout draws), so the curves differ
 * only by the activation.
 */
import type { DataSplit } from '../data/dataset.js';
import type { EngineOptions } from '../engine/engine.js';
import { createEngine } from '../engine/node.js';
import { Model } from '../nn/model.js';
import { withActivation } from '../nn/presets.js';
import { HIDDEN_ACTIVATIONS, type Activation, type ModelSpec } from '../nn/spec.js';
import { fit, type EpochRecord, type FitOptions } from './fit.js';

/** One run of a comparison and what it reached. */
export interface ComparisonRun {
  /** What differs between the runs: an activation name, a learning rate… */
  label: string;
  history: EpochRecord[];
  finalTestAccuracy: number | null;
  bestTestAccuracy: number | null;
  /** 1-based epoch of the best test accuracy. */
  bestEpoch: number | null;
  /** Training seconds (evaluation excluded). */
  seconds: number;
}

/** Train each (spec, options) from its own fresh engine and summarise the histories. */
export function compareRuns(
  runs: readonly { label: string; spec: ModelSpec; options: FitOptions & { seed: number } }[],
  data: DataSplit,
  onRunStart?: (label: string) => void,
  engineOptions: EngineOptions = {},
): ComparisonRun[] {
  return runs.map(({ label, spec, options }) => {
    onRunStart?.(label);
    const model = new Model(spec, createEngine(engineOptions), options.seed);
    const { history } = fit(model, data, options);
    let best: EpochRecord | undefined;
    for (const r of history) {
      if (r.testAccuracy !== undefined && (!best || r.testAccuracy > best.testAccuracy!)) best = r;
    }
    return {
      label,
      history,
      finalTestAccuracy: history[history.length - 1]?.testAccuracy ?? null,
      bestTestAccuracy: best?.testAccuracy ?? null,
      bestEpoch: best?.epoch ?? null,
      seconds: history.reduce((sum, r) => sum + r.seconds, 0),
    };
  });
}

export function parseActivations(list: string): Activation[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new RangeError('--activations needs at least one name');
  for (const n of names) {
    if (!HIDDEN_ACTIVATIONS.includes(n as Activation)) {
      throw new RangeError(`unknown activation "${n}" (expected ${HIDDEN_ACTIVATIONS.join(', ')})`);
    }
  }
  return names as Activation[];
}

/** The same architecture once per hidden activation, from the same seed. */
export function compareActivations(
  spec: ModelSpec,
  activations: readonly Activation[],
  data: DataSplit,
  options: FitOptions & { seed: number },
  onRunStart?: (label: string) => void,
  engineOptions: EngineOptions = {},
): ComparisonRun[] {
  const runs = activations.map((activation) => ({
    label: activation,
    spec: withActivation(spec, activation),
    options,
  }));
  return compareRuns(runs, data, onRunStart, engineOptions);
}

/** The same model and seed once per learning rate (e.g. the full-batch lr sweep 0.01 / 0.7 / 1.5). */
export function sweepLearningRates(
  spec: ModelSpec,
  learningRates: readonly number[],
  data: DataSplit,
  options: FitOptions & { seed: number },
  onRunStart?: (label: string) => void,
  engineOptions: EngineOptions = {},
): ComparisonRun[] {
  const runs = learningRates.map((learningRate) => ({
    label: `lr ${learningRate}`,
    spec,
    options: { ...options, optimizer: { ...options.optimizer, learningRate } },
  }));
  return compareRuns(runs, data, onRunStart, engineOptions);
}

/** "0.01,0.7,1.5" → [0.01, 0.7, 1.5], each a positive number. */
export function parseLearningRates(list: string): number[] {
  const values = list
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (values.length === 0) throw new RangeError('--lrs needs at least one learning rate');
  return values.map((v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0)
      throw new RangeError(`learning rate "${v}" is not a positive number`);
    return n;
  });
}
