/**
 * Whole-model behaviour on fixed seeds: determinism, accuracy floors on the `mnist` package's quick
 * set, divergence handling, out-of-memory batch sizes, and the spec validation users hit first.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { OutOfMemoryError } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import { createModel } from '../src/nn/create.js';
import { Model } from '../src/nn/model.js';
import { resolveSpec, sequential } from '../src/nn/spec.js';
import { evaluate, fit, predict, TrainingDivergedError } from '../src/train/fit.js';

const hash = (m: Model): string => createHash('sha256').update(m.parameters()).digest('hex');
const quick = loadMnistQuick();
const small = { train: subset(quick.train, 0, 2000), test: subset(quick.test, 0, 500) };

describe('determinism', () => {
  it('the same seed gives bit-identical initial and trained weights; another seed differs', () => {
    const a = createModel('mlp-128-64', { seed: 42 });
    const b = createModel('mlp-128-64', { seed: 42 });
    const c = createModel('mlp-128-64', { seed: 43 });
    expect(hash(a)).toBe(hash(b));
    expect(hash(a)).not.toBe(hash(c));
    const options = {
      epochs: 1,
      batchSize: 32,
      optimizer: { type: 'adam' as const, learningRate: 1e-3 },
    };
    fit(a, small, options);
    fit(b, small, options);
    fit(c, small, options);
    expect(hash(a)).toBe(hash(b));
    expect(hash(a)).not.toBe(hash(c));
  });

  it('the shuffle seed changes the result even with the same init', () => {
    const a = createModel('mlp-40', { seed: 1 });
    const b = createModel('mlp-40', { seed: 1 });
    const options = {
      epochs: 1,
      batchSize: 16,
      optimizer: { type: 'sgd' as const, learningRate: 0.1 },
    };
    fit(a, small, { ...options, seed: 5 });
    fit(b, small, { ...options, seed: 6 });
    expect(hash(a)).not.toBe(hash(b));
  });
});

describe('accuracy floors on the quick set (8k train / 2k test)', () => {
  it('mlp-128 with Adam reaches ≥ 92% test accuracy in 3 epochs', () => {
    const model = createModel('mlp-128', { seed: 1 });
    const { history } = fit(model, quick, {
      epochs: 3,
      batchSize: 32,
      optimizer: { type: 'adam', learningRate: 1e-3 },
    });
    expect(history).toHaveLength(3);
    expect(history[2]!.testAccuracy!).toBeGreaterThanOrEqual(0.92);
    expect(history[2]!.trainLoss).toBeLessThan(history[0]!.trainLoss);
    const ev = evaluate(model, quick.test);
    expect(ev.accuracy).toBeCloseTo(history[2]!.testAccuracy!, 10);
    expect(ev.confusion.flat().reduce((a, b) => a + b, 0)).toBe(quick.test.count);
    expect(ev.confusion.reduce((s, row, i) => s + row[i]!, 0)).toBe(
      Math.round(ev.accuracy * ev.count),
    );
  });

  it('per-sample SGD (batch 1) on a 784-40-10 net learns (≥ 85% on the quick test set)', () => {
    const model = createModel('mlp-40', { seed: 3 });
    const { history } = fit(model, small, {
      epochs: 2,
      batchSize: 1,
      optimizer: { type: 'sgd', learningRate: 0.01 },
    });
    expect(history[1]!.testAccuracy!).toBeGreaterThanOrEqual(0.85);
  });

  it('full-batch gradient descent lowers the loss every iteration at a small rate', () => {
    const model = createModel('mlp-128', { seed: 2 });
    const { history } = fit(model, small, {
      epochs: 5,
      batchSize: 'full',
      optimizer: { type: 'sgd', learningRate: 0.1 },
      testEvery: 0,
    });
    for (let i = 1; i < history.length; i++)
      expect(history[i]!.trainLoss).toBeLessThan(history[i - 1]!.trainLoss);
  });

  it('SGD with Nesterov momentum and the squared-error losses train too', () => {
    const spec = sequential(784).dense(64, 'relu').dense(10, 'linear').spec('mse-net');
    for (const loss of ['mse', 'sse'] as const) {
      const model = createModel(spec, { seed: 4 });
      const { history } = fit(model, small, {
        epochs: 3,
        batchSize: 16,
        loss,
        optimizer: {
          type: 'sgd',
          learningRate: loss === 'mse' ? 0.2 : 0.05,
          momentum: 0.9,
          nesterov: true,
        },
      });
      expect(history[2]!.testAccuracy!).toBeGreaterThanOrEqual(0.85);
    }
  });

  it('predict returns probabilities whose argmax gives the evaluated accuracy', () => {
    const model = createModel('mlp-40', { seed: 9 });
    fit(model, small, {
      epochs: 1,
      batchSize: 32,
      optimizer: { type: 'adam', learningRate: 2e-3 },
    });
    const probs = predict(model, small.test.images);
    let correct = 0;
    for (let i = 0; i < small.test.count; i++) {
      const row = probs.subarray(i * 10, i * 10 + 10);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      if (row.indexOf(Math.max(...row)) === small.test.labels[i]) correct++;
    }
    expect(correct / small.test.count).toBeCloseTo(evaluate(model, small.test).accuracy, 10);
  });
});

describe('failures are clear and lose nothing', () => {
  it('a diverging run stops naming epoch and batch, and keeps the last good weights', () => {
    // A linear model on squared error diverges geometrically once lr·‖x‖² > 2.
    const model = createModel(sequential(784).dense(10, 'linear').spec(), { seed: 1 });
    fit(model, small, {
      epochs: 1,
      batchSize: 1,
      loss: 'sse',
      optimizer: { type: 'sgd', learningRate: 1e-3 },
    });
    const good = model.snapshot();
    let error: unknown;
    try {
      fit(model, small, {
        epochs: 3,
        batchSize: 1,
        loss: 'sse',
        optimizer: { type: 'sgd', learningRate: 1 },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TrainingDivergedError);
    const d = error as TrainingDivergedError;
    expect(d.message).toMatch(/diverged.*epoch 1, batch \d+/);
    expect(d.completedEpochs).toBe(0);
    expect(Array.from(model.parameters())).toEqual(Array.from(good));
  });

  it('what cannot fit in wasm32 memory fails with OutOfMemoryError saying what and how much', () => {
    const model = createModel('mlp-256-128', { seed: 1 });
    const huge = { ...quick.train, count: 2_000_000 };
    const options = {
      epochs: 1,
      batchSize: 2_000_000,
      chunkSize: 2_000_000,
      optimizer: { type: 'adam' as const, learningRate: 1e-3 },
    };
    expect(() => fit(model, { train: huge }, options)).toThrow(OutOfMemoryError);
    expect(() => fit(model, { train: huge }, options)).toThrow(
      /batch size 2000000 .*4 GiB.*smaller batch/,
    );
    expect(() =>
      createModel(sequential(784).dense(40_000, 'relu').dense(40_000, 'relu').dense(10).spec()),
    ).toThrow(/model parameters and optimizer state needs .* GiB/);
    // the model is still usable afterwards
    const { history } = fit(model, small, {
      epochs: 1,
      batchSize: 32,
      optimizer: { type: 'adam', learningRate: 1e-3 },
    });
    expect(history[0]!.testAccuracy!).toBeGreaterThan(0.8);
  });

  it('non-finite batches name the layer, and can be skipped instead of stopping', () => {
    // Bright images overflow a layer with huge weights to ±Inf (then NaN in the softmax); black
    // images give finite losses and gradients. Batches of one, in order.
    const count = 20;
    const images = new Uint8Array(count * 784);
    for (let i = 1; i < count; i += 2) images.fill(255, i * 784, (i + 1) * 784);
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
    const data = { train: { name: 'stripes', images, labels, count, rows: 28, cols: 28 } };
    const spec = sequential(784)
      .dense(10, 'linear', { init: 'uniform', initScale: 3e37 })
      .spec('huge');
    const options = {
      epochs: 2,
      batchSize: 1,
      shuffle: false,
      optimizer: { type: 'sgd' as const, learningRate: 0.01 },
    };
    const stopping = createModel(spec, { seed: 1 });
    const before = stopping.snapshot();
    expect(() => fit(stopping, data, options)).toThrow(
      /epoch 1, batch 2 \(first non-finite values: layer 0 \(dense\) outputs\)/,
    );
    expect(Array.from(stopping.parameters())).toEqual(Array.from(before));
    const skipping = createModel(spec, { seed: 1 });
    const { history } = fit(skipping, data, { ...options, onNonFinite: 'skip' });
    expect(history.map((h) => h.skippedBatches)).toEqual([10, 10]);
    expect(Number.isFinite(history[1]!.trainLoss)).toBe(true);
    expect(skipping.engine.kernels.has_non_finite(skipping.paramsPtr, skipping.regionFloats)).toBe(
      0,
    );
    expect(Array.from(skipping.parameters())).not.toEqual(Array.from(before)); // the black batches trained
  });

  it('a memory limit is honoured up front, naming the bytes needed and the limit', () => {
    const engine = createEngine({ maxMemoryBytes: 16 * 2 ** 20 });
    expect(() => createModel('mlp-256-128', { engine }).parameterCount).not.toThrow();
    const small16 = createModel('mlp-40', {
      engine: createEngine({ maxMemoryBytes: 16 * 2 ** 20 }),
    });
    // The quick set's 8k images (6.3 MB) plus 1,000-sample activations fit in 16 MiB; the full-batch
    // chunk of 8,004 (25 MB of inputs) does not.
    const options = { epochs: 1, optimizer: { type: 'sgd' as const, learningRate: 0.1 } };
    expect(() => fit(small16, quick, { ...options, batchSize: 'full', chunkSize: 8004 })).toThrow(
      /batch size 8004 .* needs [\d.]+ MiB \(\d+ bytes\) of WebAssembly memory, more than the memory limit of 16\.0 MiB/,
    );
    expect(fit(small16, quick, { ...options, batchSize: 32 }).history).toHaveLength(1);
    expect(() => createEngine({ maxMemoryBytes: 1000 })).toThrow(/at least 64 KiB/);
  });

  it('a batch bigger than the chunk size gives the same step as one pass (gradient accumulation)', () => {
    const a = createModel('mlp-128', { seed: 8 });
    const b = createModel('mlp-128', { seed: 8 });
    const options = {
      epochs: 2,
      batchSize: 'full' as const,
      optimizer: { type: 'sgd' as const, learningRate: 0.5 },
      testEvery: 0,
    };
    const ha = fit(a, small, { ...options, chunkSize: 2000 }).history;
    const hb = fit(b, small, { ...options, chunkSize: 300 }).history;
    expect(hb[1]!.trainLoss).toBeCloseTo(ha[1]!.trainLoss, 5);
    const pa = a.parameters();
    const pb = b.parameters();
    let worst = 0;
    for (let i = 0; i < pa.length; i++) worst = Math.max(worst, Math.abs(pa[i]! - pb[i]!));
    expect(worst).toBeLessThan(1e-5);
  });

  it('bad hyperparameters and mismatched data are rejected before training', () => {
    const model = createModel('mlp-40', { seed: 1 });
    const opt = { type: 'sgd' as const, learningRate: 0.1 };
    expect(() => fit(model, small, { epochs: 0, batchSize: 1, optimizer: opt })).toThrow(
      /epochs must be a positive integer/,
    );
    expect(() => fit(model, small, { epochs: 1, batchSize: 0, optimizer: opt })).toThrow(
      /batch size/,
    );
    expect(() =>
      fit(model, small, { epochs: 1, batchSize: 1, optimizer: { type: 'sgd', learningRate: -1 } }),
    ).toThrow(/learning rate must be a positive number/);
    expect(() =>
      fit(model, small, {
        epochs: 1,
        batchSize: 1,
        optimizer: { type: 'adam', learningRate: 1e-3, beta1: 1 },
      }),
    ).toThrow(/beta1/);
    expect(() =>
      fit(model, small, { epochs: 1, batchSize: 1, loss: 'mse', optimizer: opt }),
    ).toThrow(/softmax/);
    const wide = createModel(sequential(100).dense(10, 'softmax').spec(), { seed: 1 });
    expect(() => fit(wide, small, { epochs: 1, batchSize: 8, optimizer: opt })).toThrow(
      /28×28 = 784 pixels.*100 inputs/,
    );
    const three = createModel(sequential(784).dense(3, 'softmax').spec(), { seed: 1 });
    expect(() => fit(three, small, { epochs: 1, batchSize: 8, optimizer: opt })).toThrow(
      /labels go up to 9.*3 outputs/,
    );
  });

  it('invalid specs name the field and what was expected', () => {
    expect(() => resolveSpec({ inputSize: 784, layers: [] })).toThrow(/non-empty/);
    expect(() => resolveSpec({ inputSize: 784, layers: [{ type: 'conv', units: 3 }] })).toThrow(
      /layers\[0\].*unknown layer type "conv"/,
    );
    expect(() => resolveSpec({ inputSize: 784, layers: [{ type: 'dense', units: 0 }] })).toThrow(
      /units must be a positive integer/,
    );
    expect(() =>
      resolveSpec({ inputSize: 784, layers: [{ type: 'dense', units: 5, activation: 'gelu' }] }),
    ).toThrow(/unknown activation "gelu"/);
    expect(() =>
      resolveSpec({
        inputSize: 784,
        layers: [
          { type: 'dense', units: 5, activation: 'softmax' },
          { type: 'dense', units: 3 },
        ],
      }),
    ).toThrow(/softmax is only supported on the last layer/);
    expect(() =>
      resolveSpec({ inputSize: 784, layers: [{ type: 'dense', units: 5, unit: 3 }] }),
    ).toThrow(/unknown field "unit"/);
    expect(() => createModel('mlp-999')).toThrow(/unknown model "mlp-999".*mlp-256-128/);
  });

  it('mlp-256-128 has 235,146 parameters and a summary that says so', () => {
    const model = createModel('mlp-256-128');
    expect(model.parameterCount).toBe(235_146);
    expect(model.summary()).toContain('total parameters: 235,146');
  });
});
