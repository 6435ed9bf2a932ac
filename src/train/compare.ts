/**
 * The activation comparison: the same architecture trained once per hidden activation, from the
 * same seed (same initial-weight draws, same data order, same dropout draws), so the curves differ
 * only by the activation.
 */
import type { DataSplit } from '../data/dataset.js';
import { createEngine } from '../engine/node.js';
import { Model } from '../nn/model.js';
import { withActivation } from '../nn/presets.js';
import { HIDDEN_ACTIVATIONS, type Activation, type ModelSpec } from '../nn/spec.js';
import { fit, type EpochRecord, type FitOptions } from './fit.js';

export interface ActivationRun {
  activation: Activation;
  history: EpochRecord[];
  finalTestAccuracy: number | null;
  bestTestAccuracy: number | null;
  /** 1-based epoch of the best test accuracy. */
  bestEpoch: number | null;
  /** Training seconds (evaluation excluded). */
  seconds: number;
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

export function compareActivations(
  spec: ModelSpec,
  activations: readonly Activation[],
  data: DataSplit,
  options: FitOptions & { seed: number },
  onRunStart?: (activation: Activation) => void,
): ActivationRun[] {
  return activations.map((activation) => {
    onRunStart?.(activation);
    const model = new Model(withActivation(spec, activation), createEngine(), options.seed);
    const { history } = fit(model, data, options);
    let best: EpochRecord | undefined;
    for (const r of history)
      if (r.testAccuracy !== undefined && (!best || r.testAccuracy > best.testAccuracy!)) best = r;
    return {
      activation,
      history,
      finalTestAccuracy: history[history.length - 1]?.testAccuracy ?? null,
      bestTestAccuracy: best?.testAccuracy ?? null,
      bestEpoch: best?.epoch ?? null,
      seconds: history.reduce((s, r) => s + r.seconds, 0),
    };
  });
}
