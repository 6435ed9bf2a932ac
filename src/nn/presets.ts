/**
 * Named networks: the classic MNIST multilayer perceptrons, by the sizes of their hidden layers.
 */
import { sequential, type ModelSpec } from './spec.js';

function mlp(name: string, hidden: number[]): ModelSpec {
  const builder = sequential(784);
  for (const units of hidden) builder.dense(units, 'relu');
  return builder.dense(10, 'softmax').spec(name);
}

export const PRESETS: Readonly<Record<string, () => ModelSpec>> = {
  /** 784-40-10: the network of "Grokking Deep Learning" (chapter 6/8). */
  'mlp-40': () => mlp('mlp-40', [40]),
  /** 784-128-10: the one-hidden-layer net trained with hand-derived backprop. */
  'mlp-128': () => mlp('mlp-128', [128]),
  /** 784-128-64-10: the Keras tutorial MLP. */
  'mlp-128-64': () => mlp('mlp-128-64', [128, 64]),
  /** 784-256-128-10: the PyTorch tutorial MLP, 235,146 parameters. */
  'mlp-256-128': () => mlp('mlp-256-128', [256, 128]),
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** The preset's spec, or undefined when there is no such preset. */
export function preset(name: string): ModelSpec | undefined {
  return Object.hasOwn(PRESETS, name) ? PRESETS[name]!() : undefined;
}
