/**
 * The seed projects' experiments, each reproducible by one command (`mnist-wasm train --recipe X`).
 * A recipe fixes the architecture, data, loss, optimizer and schedule of the original.
 */
import { preset } from '../nn/presets.js';
import { sequential, type ModelSpec } from '../nn/spec.js';
import type { LossName } from '../nn/model.js';
import type { OptimizerOptions } from './optimizer.js';

export interface Recipe {
  name: string;
  description: string;
  /** What the original project reported, for the README's table. */
  reported: string;
  model: ModelSpec;
  seed: number;
  /** Train on the first N training images only. */
  trainLimit?: number;
  epochs: number;
  batchSize: number | 'full';
  optimizer: OptimizerOptions;
  loss: LossName;
  shuffle: boolean;
  testEvery: number;
}

const keras128x64 = sequential(784)
  .dense(128, 'relu', { init: 'glorot_uniform' })
  .dense(64, 'relu', { init: 'glorot_uniform' })
  .dense(10, 'softmax', { init: 'glorot_uniform' })
  .spec('mlp-128-64');

export const RECIPES: Readonly<Record<string, Recipe>> = {
  'grokking-40': {
    name: 'grokking-40',
    description:
      '784-40-10 ReLU, no biases, uniform ±0.1 init, no softmax, ½·squared error on one-hot targets, ' +
      'per-sample SGD α=0.005 over the first 1,000 training images in order, 350 passes',
    reported: '≈70.7% test (Grokking Deep Learning, ch. 6/8)',
    model: sequential(784)
      .dense(40, 'relu', { init: 'uniform', initScale: 0.1, bias: false })
      .dense(10, 'linear', { init: 'uniform', initScale: 0.1, bias: false })
      .spec('grokking-40'),
    seed: 1,
    trainLimit: 1000,
    epochs: 350,
    batchSize: 1,
    // The book's update is w += α·layerᵀ·(target − output): gradient descent on ½‖y − t‖² ('sse').
    optimizer: { type: 'sgd', learningRate: 0.005 },
    loss: 'sse',
    shuffle: false,
    testEvery: 10,
  },
  'fullbatch-128': {
    name: 'fullbatch-128',
    description:
      '784-128-10 ReLU + softmax cross-entropy, full-batch gradient descent on all 60,000 images, 1,000 iterations, lr 0.7',
    reported: '97.25% test',
    model: preset('mlp-128')!,
    seed: 1,
    epochs: 1000,
    batchSize: 'full',
    optimizer: { type: 'sgd', learningRate: 0.7 },
    loss: 'crossentropy',
    shuffle: false,
    testEvery: 50,
  },
  'keras-128-64': {
    name: 'keras-128-64',
    description:
      '784-128-64-10 (Glorot init, as Keras), Adam 1e-3 (ε 1e-7, as Keras), batch 32, 5 epochs',
    reported: '≈97.5–97.8% test (Keras)',
    model: keras128x64,
    seed: 1,
    epochs: 5,
    batchSize: 32,
    optimizer: { type: 'adam', learningRate: 1e-3, epsilon: 1e-7 },
    loss: 'crossentropy',
    shuffle: true,
    testEvery: 1,
  },
  'torch-256-128': {
    name: 'torch-256-128',
    description: '784-256-128-10 ReLU, Adam 1e-3, batch 32, 15 epochs',
    reported: '≥ 92% target; PyTorch gets ≈98% test',
    model: preset('mlp-256-128')!,
    seed: 1,
    epochs: 15,
    batchSize: 32,
    optimizer: { type: 'adam', learningRate: 1e-3 },
    loss: 'crossentropy',
    shuffle: true,
    testEvery: 1,
  },
  lenet5: {
    name: 'lenet5',
    description:
      'LeNet-5 (conv 5×5×6 pad 2, max-pool, conv 5×5×16, max-pool, 120, 84, 10; ReLU), Adam 1e-3, batch 32, 5 epochs',
    reported: '≥ 98.8% test (PyTorch, 2–3 epochs)',
    model: preset('lenet5')!,
    seed: 1,
    epochs: 5,
    batchSize: 32,
    optimizer: { type: 'adam', learningRate: 1e-3 },
    loss: 'crossentropy',
    shuffle: true,
    testEvery: 1,
  },
};
