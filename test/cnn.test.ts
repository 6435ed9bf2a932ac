/**
 * Convolutional networks and the activation family at the model level: shape inference and its
 * errors, summaries, whole-network gradient checks (engine gradients against central finite
 * differences of the engine's own f32 loss, h = 1e-2, relative error ‖g − g_fd‖ / (‖g‖ + ‖g_fd‖)
 * < 3e-2, 5e-2 where ReLU kinks sit within h of a sampled pre-activation) through every layer type and activation, dropout with a fixed mask, model files, a
 * LeNet-5 accuracy floor, and the optimizers beyond SGD/Adam.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { relError } from './helpers.js';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import { Rng } from '../src/engine/rng.js';
import { decodeModel, encodeModel, modelFromBytes } from '../src/io/safetensors.js';
import { createModel } from '../src/nn/create.js';
import { Model, type LossName } from '../src/nn/model.js';
import { preset, withActivation } from '../src/nn/presets.js';
import { resolveSpec, sequential, type Activation, type ModelSpec } from '../src/nn/spec.js';
import { Workspace } from '../src/nn/workspace.js';
import { fit, predict } from '../src/train/fit.js';

const quick = loadMnistQuick();
const small = { train: subset(quick.train, 0, 2000), test: subset(quick.test, 0, 500) };

/** Engine gradients vs central differences of the engine's loss, on a fixed batch and mask. */
function gradCheck(
  spec: ModelSpec,
  loss: LossName,
  B: number,
  seed: number,
  maxParams = 400,
): number {
  const model = new Model(spec, createEngine(), seed);
  const rng = new Rng(seed + 99);
  // The workspace may grow memory, which detaches earlier views: take views after creating it.
  const ws = new Workspace(model, B);
  const params = model.parameters();
  for (const t of model.tensors) {
    if (t.name.endsWith('.bias'))
      for (let i = 0; i < t.length; i++) params[t.offset + i] = 0.2 * (rng.nextFloat() - 0.5);
  }
  const x = new Float32Array(B * model.inputSize);
  rng.fillUniform(x, 0, 1);
  const labels = Int32Array.from({ length: B }, () => rng.nextInt(model.outputSize));
  const lossAt = (withGrad: boolean): number => {
    model.engine.f32(ws.inputPtr, x.length).set(x);
    model.engine.i32(ws.labelsPtr, B).set(labels);
    ws.dropoutRng = new Rng(1234); // the same dropout mask in every pass
    ws.forward(B, true);
    const r = ws.loss(B, loss, withGrad);
    if (withGrad) ws.backward(B);
    return r.lossSum / B;
  };
  lossAt(true);
  const grads = model.gradients().slice();
  // Check a deterministic sample of parameters from every tensor (all of them for small ones).
  const picked: number[] = [];
  for (const t of model.tensors) {
    const step = Math.max(1, Math.floor(t.length / Math.ceil(maxParams / model.tensors.length)));
    for (let i = 0; i < t.length; i += step) picked.push(t.offset + i);
  }
  const h = 1e-2;
  const fd: number[] = [];
  for (const i of picked) {
    const old = params[i]!;
    params[i] = old + h;
    const up = lossAt(false);
    params[i] = old - h;
    const down = lossAt(false);
    params[i] = old;
    fd.push((up - down) / (2 * h));
  }
  return relError(
    picked.map((i) => grads[i]!),
    fd,
  );
}

describe('shape inference and spec errors', () => {
  it('LeNet-5 has the classic shapes and 61,706 parameters', () => {
    const model = createModel('lenet5');
    expect(model.parameterCount).toBe(61_706);
    expect(model.layers.map((l) => [l.outShape.h, l.outShape.w, l.outShape.c])).toEqual([
      [28, 28, 6],
      [14, 14, 6],
      [10, 10, 16],
      [5, 5, 16],
      [1, 1, 400],
      [1, 1, 120],
      [1, 1, 84],
      [1, 1, 10],
    ]);
    const summary = model.summary();
    expect(summary).toContain('conv2d 5×5 pad 2');
    expect(summary).toContain('(28, 28, 6)');
    expect(summary).toContain('total parameters: 61,706');
  });

  it('mlp-256-128 still prints 235,146 and cnn-small resolves', () => {
    expect(createModel('mlp-256-128').summary()).toContain('total parameters: 235,146');
    expect(createModel('cnn-small').layers.at(-2)!.outShape).toEqual({ h: 1, w: 1, c: 256 });
  });

  const impossible: [string, unknown, RegExp][] = [
    [
      'a 5×5 kernel on a 2×2 map',
      { inputShape: [2, 2, 3], layers: [{ type: 'conv2d', filters: 4, kernelSize: 5 }] },
      /5×5 kernel with padding 0 does not fit the 2×2 input/,
    ],
    [
      'too much pooling before a conv',
      {
        inputShape: [28, 28, 1],
        layers: [
          { type: 'maxPool2d', poolSize: 4 },
          { type: 'maxPool2d', poolSize: 4 },
          { type: 'conv2d', filters: 2, kernelSize: 3 },
        ],
      },
      /layers\[2\] \(conv2d\): a 3×3 kernel .* 1×1 input/,
    ],
    [
      'a pooling window larger than the map',
      { inputShape: [3, 3, 1], layers: [{ type: 'avgPool2d', poolSize: 4 }] },
      /4×4 pooling window does not fit the 3×3 input/,
    ],
    [
      'dropout rate 1',
      { inputSize: 10, layers: [{ type: 'dropout', rate: 1 }] },
      /rate must be a number in \[0, 1\), got 1/,
    ],
    [
      'dropout rate −0.1',
      { inputSize: 10, layers: [{ type: 'dropout', rate: -0.1 }] },
      /rate must be a number in \[0, 1\)/,
    ],
    [
      'LeakyReLU α < 0',
      {
        inputSize: 10,
        layers: [{ type: 'dense', units: 3, activation: 'leaky_relu', alpha: -0.1 }],
      },
      /alpha must be a number ≥ 0/,
    ],
    [
      'α on ReLU',
      { inputSize: 10, layers: [{ type: 'dense', units: 3, activation: 'relu', alpha: 0.1 }] },
      /alpha only applies to leaky_relu and elu/,
    ],
    [
      'a conv without an input shape',
      { inputSize: 784, layers: [{ type: 'conv2d', filters: 2, kernelSize: 3 }] },
      /3×3 kernel .* 1×1 input/,
    ],
    [
      'a typo in a conv field',
      { inputShape: [8, 8, 1], layers: [{ type: 'conv2d', filters: 2, kernel: 3 }] },
      /unknown field "kernel"/,
    ],
    [
      'both input forms',
      { inputSize: 784, inputShape: [28, 28, 1], layers: [{ type: 'flatten' }] },
      /either inputSize or inputShape/,
    ],
  ];
  it.each(impossible)('%s gives a clear error', (_name, spec, message) => {
    expect(() => resolveSpec(spec)).toThrow(message);
  });
});

describe('whole-network gradient checks (engine vs finite differences of its f32 loss)', () => {
  const hidden: Activation[] = ['relu', 'leaky_relu', 'elu', 'sigmoid', 'tanh'];
  it.each(hidden)(
    'small CNN with %s: conv pad 1 stride 2, max-pool, conv, avg-pool, dense',
    (act) => {
      const spec = sequential([9, 9, 2])
        .conv2d(3, 3, act, { padding: 1, stride: 2 })
        .maxPool2d(2, 1)
        .conv2d(4, 2, act)
        .avgPool2d(2)
        .flatten()
        .dense(5, act)
        .dense(3, 'softmax')
        .spec();
      expect(gradCheck(spec, 'crossentropy', 3, 5)).toBeLessThan(5e-2);
    },
  );

  it.each(['mse', 'sse'] as LossName[])(
    'dense + dropout (fixed mask) + tanh output with %s',
    (loss) => {
      const spec = sequential(12)
        .dense(16, 'elu')
        .dropout(0.3)
        .dense(6, 'sigmoid')
        .dropout(0.5)
        .dense(4, 'tanh')
        .spec();
      expect(gradCheck(spec, loss, 4, 7)).toBeLessThan(3e-2);
    },
  );

  it('LeNet-5 itself, batch 2', () => {
    expect(gradCheck(preset('lenet5')!, 'crossentropy', 2, 3, 300)).toBeLessThan(3e-2);
  });

  it('the check can fail: a wrong gradient is caught', () => {
    // Scale the output gradient and compare with unscaled finite differences: must be far off.
    const spec = sequential(5).dense(3, 'softmax').spec();
    const model = new Model(spec, createEngine(), 1);
    const ws = new Workspace(model, 2);
    model.engine.f32(ws.inputPtr, 10).set(Float32Array.from({ length: 10 }, (_, i) => i / 10));
    model.engine.i32(ws.labelsPtr, 2).set([0, 2]);
    ws.forward(2);
    ws.loss(2, 'crossentropy', true, 1); // gradient of the sum, not the mean: 2× too large
    ws.backward(2);
    const g = model.gradients().slice(0, 15);
    const p = model.parameters();
    const fd: number[] = [];
    for (let i = 0; i < 15; i++) {
      const old = p[i]!;
      const at = (v: number): number => {
        p[i] = v;
        ws.forward(2);
        return ws.loss(2, 'crossentropy', false).lossSum / 2;
      };
      fd.push((at(old + 1e-2) - at(old - 1e-2)) / 2e-2);
      p[i] = old;
    }
    expect(relError(g, fd)).toBeGreaterThan(0.3);
  });
});

describe('dropout', () => {
  it('is the identity in evaluation and scales kept units by 1/(1−p) in training', () => {
    const spec = sequential(1000).dropout(0.25).spec();
    const model = new Model(spec, createEngine(), 1);
    const ws = new Workspace(model, 1);
    const input = model.engine.f32(ws.inputPtr, 1000);
    input.fill(2);
    ws.forward(1, false);
    expect(Array.from(model.engine.f32(ws.outputPtr, 1000)).every((v) => v === 2)).toBe(true);
    ws.dropoutRng = new Rng(3);
    ws.forward(1, true);
    const out = model.engine.f32(ws.outputPtr, 1000);
    const zeros = out.filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(200);
    expect(zeros).toBeLessThan(300);
    expect(out.filter((v) => v !== 0).every((v) => Math.abs(v - 2 / 0.75) < 1e-6)).toBe(true);
  });

  it('masks are seeded: the same seed trains to the same weights, another seed does not', () => {
    const spec = sequential(784).dense(64, 'relu').dropout(0.5).dense(10, 'softmax').spec();
    const hash = (m: Model) => createHash('sha256').update(m.parameters()).digest('hex');
    const run = (seed: number) => {
      const m = createModel(spec, { seed: 1 });
      fit(
        m,
        { train: subset(quick.train, 0, 500) },
        { epochs: 1, batchSize: 50, seed, optimizer: { type: 'sgd', learningRate: 0.1 } },
      );
      return hash(m);
    };
    expect(run(5)).toBe(run(5));
    expect(run(5)).not.toBe(run(6));
  });
});

describe('training convolutional networks', () => {
  it('LeNet-5 reaches ≥ 92% on the quick test set after 2 epochs on 8k images (Adam 1e-3, batch 32)', () => {
    const model = createModel('lenet5', { seed: 1 });
    const { history } = fit(model, quick, {
      epochs: 2,
      batchSize: 32,
      optimizer: { type: 'adam', learningRate: 1e-3 },
    });
    expect(history[1]!.testAccuracy!).toBeGreaterThanOrEqual(0.92);
  });

  it.each([
    ['rmsprop', { type: 'rmsprop' as const, learningRate: 1e-3 }],
    ['adagrad', { type: 'adagrad' as const, learningRate: 0.05 }],
    [
      'sgd + nesterov + weight decay',
      {
        type: 'sgd' as const,
        learningRate: 0.05,
        momentum: 0.9,
        nesterov: true,
        weightDecay: 5e-4,
      },
    ],
  ])('cnn-small learns with %s (≥ 80% on 500 quick test images)', (_name, optimizer) => {
    const model = createModel('cnn-small', { seed: 2 });
    const { history } = fit(model, small, { epochs: 2, batchSize: 32, optimizer });
    expect(history[1]!.testAccuracy!).toBeGreaterThanOrEqual(0.8);
  });

  it('chunked gradient accumulation through conv layers (direct and im2col) matches one pass', () => {
    const options = {
      epochs: 1,
      batchSize: 'full' as const,
      optimizer: { type: 'sgd' as const, learningRate: 0.1 },
      testEvery: 0,
    };
    const data = { train: subset(quick.train, 0, 200) };
    const a = createModel('lenet5', { seed: 6 });
    const b = createModel('lenet5', { seed: 6 });
    fit(a, data, { ...options, chunkSize: 200 });
    fit(b, data, { ...options, chunkSize: 64 });
    const pa = a.parameters();
    const pb = b.parameters();
    let worst = 0;
    for (let i = 0; i < pa.length; i++) worst = Math.max(worst, Math.abs(pa[i]! - pb[i]!));
    expect(worst).toBeLessThan(1e-6);
    expect(worst).toBeGreaterThanOrEqual(0);
    const c = createModel('lenet5', { seed: 6 });
    expect(
      Buffer.from(c.parameters().buffer, c.paramsPtr, c.regionFloats * 4).equals(
        Buffer.from(pa.buffer, pa.byteOffset, pa.byteLength),
      ),
    ).toBe(false);
  });

  it('a saved CNN with every layer type loads back with bit-identical predictions', () => {
    const spec = withActivation(
      sequential([28, 28, 1])
        .conv2d(4, 3, 'relu', { padding: 1 })
        .avgPool2d(2)
        .conv2d(6, 3, 'relu', { stride: 2 })
        .maxPool2d(2)
        .flatten()
        .dropout(0.2)
        .dense(32, 'relu')
        .dense(10, 'softmax')
        .spec('all-layers'),
      'elu',
    );
    const model = createModel(spec, { seed: 4 });
    fit(
      model,
      { train: subset(quick.train, 0, 300) },
      { epochs: 1, batchSize: 30, optimizer: { type: 'adam', learningRate: 1e-3 } },
    );
    const bytes = encodeModel(model);
    expect(decodeModel(bytes, 'x').spec).toEqual(model.spec);
    const loaded = modelFromBytes(bytes, 'x', createEngine());
    const images = quick.test.images.subarray(0, 50 * 784);
    expect(
      Buffer.from(predict(loaded, images).buffer).equals(
        Buffer.from(predict(model, images).buffer),
      ),
    ).toBe(true);
  });
});
