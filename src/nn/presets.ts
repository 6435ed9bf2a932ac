/**
 * Named networks: the classic MNIST multilayer perceptrons (named by their hidden layers) and
 * convolutional networks.
 */
import { sequential, type Activation, type ModelSpec } from './spec.js';

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
  /**
   * LeNet-5 as modern tutorials write it (PyTorch's, Keras's): conv 5×5×6 pad 2 → ReLU → max-pool 2
   * → conv 5×5×16 → ReLU → max-pool 2 → 120 → 84 → 10; 61,706 parameters.
   */
  lenet5: () =>
    sequential([28, 28, 1])
      .conv2d(6, 5, 'relu', { padding: 2 })
      .maxPool2d(2)
      .conv2d(16, 5, 'relu')
      .maxPool2d(2)
      .flatten()
      .dense(120, 'relu')
      .dense(84, 'relu')
      .dense(10, 'softmax')
      .spec('lenet5'),
  /**
   * ConvNetJS's MNIST demo net on 28×28 inputs: conv 5×5×8 pad 2 → ReLU → max-pool 2 →
   * conv 5×5×16 pad 2 → ReLU → max-pool 3 → 10.
   */
  'cnn-small': () =>
    sequential([28, 28, 1])
      .conv2d(8, 5, 'relu', { padding: 2 })
      .maxPool2d(2)
      .conv2d(16, 5, 'relu', { padding: 2 })
      .maxPool2d(3)
      .flatten()
      .dense(10, 'softmax')
      .spec('cnn-small'),
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** The preset's spec, or undefined when there is no such preset. */
export function preset(name: string): ModelSpec | undefined {
  return Object.hasOwn(PRESETS, name) ? PRESETS[name]!() : undefined;
}

/**
 * The same network with every hidden activation replaced (the softmax/linear output is kept), for
 * comparing activations on one architecture. α is reset to the new activation's default.
 */
export function withActivation(spec: ModelSpec, activation: Activation, alpha?: number): ModelSpec {
  const layers = spec.layers.map((l, i) => {
    if ((l.type !== 'dense' && l.type !== 'conv2d') || i === spec.layers.length - 1) return l;
    const { alpha: _old, ...rest } = l;
    return { ...rest, activation, ...(alpha !== undefined ? { alpha } : {}) };
  });
  return { ...spec, name: `${spec.name ?? 'model'}-${activation}`, layers };
}
