/**
 * Gradient checks, in two steps:
 *  1. the f64 reference MLP's hand-written backward against central finite differences of its own
 *     loss (h = 1e-6): relative error ‖g − g_fd‖ / (‖g‖ + ‖g_fd‖) < 1e-6;
 *  2. the engine's analytic gradients (f32 wasm kernels) against that reference for the same
 *     weights and inputs: relative error < 2e-4 (f32 rounding over K ≤ 784 terms).
 * Plus a direct finite-difference check of the engine's own f32 loss (h = 1e-2, < 2e-2), so the
 * engine is also compared with no reference code in between, and the training pass from staged
 * pixels — the first dense layer as two input shards — against the reference (same bounds).
 * Per layer type (dense with/without bias, ReLU/linear/softmax output), per loss, and for whole
 * networks including the mlp-256-128 preset on a small batch. The engine checks run once per
 * kernel build (test/builds.ts) with the same bounds: fused multiply-add only rounds less.
 */
import { describe, expect, it } from 'vitest';
import { put, relError } from './helpers.js';
import type { SimdBuild } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import { Rng } from '../src/engine/rng.js';
import { Model, type LossName } from '../src/nn/model.js';
import { Workspace } from '../src/nn/workspace.js';
import { preset } from '../src/nn/presets.js';
import { sequential, type ModelSpec } from '../src/nn/spec.js';
import { BUILDS } from './builds.js';
import { refLossAndGrads, type RefLayer } from './reference/mlp.js';

interface Case {
  model: Model;
  ws: Workspace;
  x: Float32Array;
  labels: Int32Array;
  B: number;
}

function setup(spec: ModelSpec, B: number, seed: number, build: SimdBuild = 'baseline'): Case {
  const model = new Model(spec, createEngine({ simd: build }), seed);
  const rng = new Rng(seed + 1000);
  // Biases start at zero; give them values so their gradients and the ReLU kinks are exercised.
  const params = model.parameters();
  for (const t of model.tensors) {
    if (t.name.endsWith('.bias'))
      for (let i = 0; i < t.length; i++) params[t.offset + i] = 0.2 * (rng.nextFloat() - 0.5);
  }
  const ws = new Workspace(model, B);
  const x = new Float32Array(B * model.inputSize);
  rng.fillUniform(x, 0, 1);
  const labels = Int32Array.from({ length: B }, () => rng.nextInt(model.outputSize));
  return { model, ws, x, labels, B };
}

function engineLoss(c: Case, loss: LossName, withGrad: boolean): number {
  const { model, ws, B } = c;
  model.engine.f32(ws.inputPtr, B * model.inputSize).set(c.x);
  model.engine.i32(ws.labelsPtr, B).set(c.labels);
  ws.forward(B);
  const r = ws.loss(B, loss, withGrad);
  if (withGrad) ws.backward(B);
  return r.lossSum / B;
}

function refLayers(model: Model): RefLayer[] {
  return model.layers.map((layer) => ({
    layer,
    w: Float64Array.from(model.tensorView(`layers.${layer.index}.weight`)),
    b: layer.bias ? Float64Array.from(model.tensorView(`layers.${layer.index}.bias`)) : null,
  }));
}

const SMALL: { name: string; spec: ModelSpec; losses: LossName[] }[] = [
  {
    name: 'dense softmax (one layer)',
    spec: sequential(13).dense(5, 'softmax').spec(),
    losses: ['crossentropy'],
  },
  {
    name: 'dense linear, no bias',
    spec: sequential(7).dense(3, 'linear', { bias: false }).spec(),
    losses: ['crossentropy', 'mse', 'sse'],
  },
  {
    name: 'dense relu output',
    spec: sequential(9).dense(6, 'relu').spec(),
    losses: ['mse', 'sse'],
  },
  {
    name: 'relu → relu → softmax',
    spec: sequential(17).dense(11, 'relu').dense(6, 'relu').dense(4, 'softmax').spec(),
    losses: ['crossentropy'],
  },
  {
    name: 'grokking-style (no bias, linear out)',
    spec: sequential(20)
      .dense(8, 'relu', { bias: false })
      .dense(10, 'linear', { bias: false })
      .spec(),
    losses: ['sse', 'mse', 'crossentropy'],
  },
];

describe('reference MLP backward vs finite differences (f64)', () => {
  for (const c of SMALL) {
    it.each(c.losses)(`${c.name}, loss %s`, (loss) => {
      const { model, x, labels, B } = setup(c.spec, 3, 7);
      const layers = refLayers(model);
      const x64 = Float64Array.from(x);
      const analytic = refLossAndGrads(layers, x64, labels, B, loss);
      const h = 1e-6;
      layers.forEach((l, li) => {
        for (const [name, arr, grad] of [
          ['w', l.w, analytic.dw[li]!],
          ['b', l.b, analytic.db[li]],
        ] as const) {
          if (!arr || !grad) continue;
          const fd = new Float64Array(arr.length);
          for (let i = 0; i < arr.length; i++) {
            const old = arr[i]!;
            arr[i] = old + h;
            const up = refLossAndGrads(layers, x64, labels, B, loss).loss;
            arr[i] = old - h;
            const down = refLossAndGrads(layers, x64, labels, B, loss).loss;
            arr[i] = old;
            fd[i] = (up - down) / (2 * h);
          }
          expect(relError(grad, fd), `layer ${li} ${name}`).toBeLessThan(1e-6);
        }
      });
    });
  }
});

describe.each(BUILDS)('engine gradients vs the f64 reference, %s build', (build) => {
  const cases = [
    ...SMALL.flatMap((c) => c.losses.map((loss) => ({ name: c.name, spec: c.spec, loss, B: 5 }))),
    {
      name: 'mlp-256-128 preset',
      spec: preset('mlp-256-128')!,
      loss: 'crossentropy' as LossName,
      B: 4,
    },
    { name: 'mlp-40, batch 1', spec: preset('mlp-40')!, loss: 'crossentropy' as LossName, B: 1 },
  ];
  it.each(cases)('$name, loss $loss, batch $B', ({ spec, loss, B }) => {
    const c = setup(spec, B, 3, build);
    const value = engineLoss(c, loss, true);
    const ref = refLossAndGrads(refLayers(c.model), Float64Array.from(c.x), c.labels, B, loss);
    expect(Math.abs(value - ref.loss)).toBeLessThan(1e-5 * Math.max(1, ref.loss));
    c.model.layers.forEach((l, li) => {
      expect(
        relError(c.model.tensorView(`layers.${li}.weight`, 'grads'), ref.dw[li]!),
        `dW${li}`,
      ).toBeLessThan(2e-4);
      if (l.bias)
        expect(
          relError(c.model.tensorView(`layers.${li}.bias`, 'grads'), ref.db[li]!),
          `db${li}`,
        ).toBeLessThan(2e-4);
    });
  });
});

describe.each(BUILDS)('engine gradients vs finite differences, %s build', (build) => {
  it.each(SMALL)('$name', ({ spec, losses }) => {
    for (const loss of losses) {
      const c = setup(spec, 4, 11, build);
      engineLoss(c, loss, true);
      const grads = c.model.gradients().slice();
      const params = c.model.parameters();
      const h = 1e-2;
      const fd = new Float64Array(grads.length);
      const picked: number[] = [];
      for (const t of c.model.tensors) for (let i = 0; i < t.length; i++) picked.push(t.offset + i);
      for (const i of picked) {
        const old = params[i]!;
        params[i] = old + h;
        const up = engineLoss(c, loss, false);
        params[i] = old - h;
        const down = engineLoss(c, loss, false);
        params[i] = old;
        fd[i] = (up - down) / (2 * h);
      }
      const g = picked.map((i) => grads[i]!);
      const f = picked.map((i) => fd[i]!);
      expect(relError(g, f), `loss ${loss}`).toBeLessThan(2e-2);
    }
  });
});

describe.each(BUILDS)('a training pass from staged pixels (input shards), %s build', (build) => {
  const cases = [
    { name: 'mlp-256-128 preset', spec: preset('mlp-256-128')!, B: 5 },
    { name: 'mlp-40, batch 1', spec: preset('mlp-40')!, B: 1 },
    {
      name: '65 inputs (shards of 32 and 33), linear first layer',
      spec: sequential(65).dense(7, 'linear').dense(3, 'softmax').spec(),
      B: 3,
    },
    {
      name: 'both layers cut, no biases',
      spec: sequential(70)
        .dense(64, 'relu', { bias: false })
        .dense(32, 'relu', { bias: false })
        .dense(3, 'softmax')
        .spec(),
      B: 2,
    },
  ];
  it.each(cases)(
    '$name, batch $B: the f64 reference’s loss and gradients; 1 and 2 threads bit for bit',
    ({ spec, B }) => {
      const grads = [1, 2].map((threads) => {
        const engine = createEngine({ simd: build, threads });
        try {
          const model = new Model(spec, engine, 3);
          const rng = new Rng(99);
          const params = model.parameters();
          for (const t of model.tensors) {
            if (t.name.endsWith('.bias'))
              for (let i = 0; i < t.length; i++)
                params[t.offset + i] = 0.2 * (rng.nextFloat() - 0.5);
          }
          const K = model.inputSize;
          const ws = new Workspace(model, B);
          // Mostly zeros, as MNIST: the zero skipping runs in both shards.
          const rows = B + 2;
          const images = Uint8Array.from({ length: rows * K }, () =>
            rng.nextInt(4) ? 0 : rng.nextInt(256),
          );
          const indices = Int32Array.from({ length: B }, (_, b) => (b * 3 + 1) % rows);
          const labels = Int32Array.from({ length: B }, () => rng.nextInt(model.outputSize));
          engine.i32(ws.labelsPtr, B).set(labels);
          engine.f32(ws.inputPtr, B * K).fill(-3);
          const pixels = {
            images: put(engine, images),
            indices: put(engine, indices),
            scale: 1 / 255,
          };
          ws.forward(B, true, pixels);
          const r = ws.loss(B, 'crossentropy', true);
          ws.backward(B);
          // The shards were used: the float batch was never written.
          expect(engine.f32(ws.inputPtr, B * K).every((v) => v === -3)).toBe(true);
          const scale = Math.fround(1 / 255);
          const x = Float64Array.from({ length: B * K }, (_, i) =>
            Math.fround(images[indices[Math.floor(i / K)]! * K + (i % K)]! * scale),
          );
          const ref = refLossAndGrads(refLayers(model), x, labels, B, 'crossentropy');
          expect(Math.abs(r.lossSum / B - ref.loss)).toBeLessThan(1e-5 * Math.max(1, ref.loss));
          model.layers.forEach((l, li) => {
            expect(
              relError(model.tensorView(`layers.${li}.weight`, 'grads'), ref.dw[li]!),
              `dW${li}`,
            ).toBeLessThan(2e-4);
            if (l.bias)
              expect(
                relError(model.tensorView(`layers.${li}.bias`, 'grads'), ref.db[li]!),
                `db${li}`,
              ).toBeLessThan(2e-4);
          });
          return Array.from(model.gradients());
        } finally {
          engine.close();
        }
      });
      expect(grads[1]).toEqual(grads[0]);
    },
  );

  it('tanh and ELU (activations outside the fused jobs): the whole layers’ pass, 1 and 2 threads', () => {
    // The f64 reference knows ReLU and linear only: compare with the engine's unsharded pass over
    // the same floats (one sum over all inputs, so equal within rounding, not bit for bit).
    const spec = sequential(100).dense(80, 'tanh').dense(40, 'elu').dense(5, 'softmax').spec();
    const B = 3;
    const runs = [1, 2].map((threads) => {
      const engine = createEngine({ simd: build, threads });
      try {
        const model = new Model(spec, engine, 3);
        const K = model.inputSize;
        const ws = new Workspace(model, B);
        const rng = new Rng(7);
        const images = Uint8Array.from({ length: B * K }, () =>
          rng.nextInt(3) ? 0 : rng.nextInt(256),
        );
        const indices = Int32Array.from({ length: B }, (_, b) => b);
        engine.i32(ws.labelsPtr, B).set([0, 3, 4]);
        const pass = (pixels?: {
          images: number;
          indices: number;
          scale: number;
        }): Float32Array => {
          if (!pixels) {
            const scale = Math.fround(1 / 255);
            engine.f32(ws.inputPtr, B * K).set(Array.from(images, (v) => Math.fround(v * scale)));
          }
          ws.forward(B, true, pixels);
          ws.loss(B, 'crossentropy', true);
          ws.backward(B);
          return model.gradients().slice();
        };
        const sharded = pass({
          images: put(engine, images),
          indices: put(engine, indices),
          scale: 1 / 255,
        });
        const whole = pass();
        expect(relError(sharded, whole), `${threads} threads`).toBeLessThan(1e-5);
        return Array.from(sharded);
      } finally {
        engine.close();
      }
    });
    expect(runs[1]).toEqual(runs[0]);
  });

  it('a training pass takes at most the workspace’s training capacity', () => {
    const engine = createEngine({ simd: build });
    const model = new Model(preset('mlp-40')!, engine, 3);
    expect(() => new Workspace(model, 8, 9)).toThrow(
      /training batch capacity .* from 1 to 8, got 9/,
    );
    const ws = new Workspace(model, 8, 2);
    const pixels = {
      images: put(engine, new Uint8Array(3 * 784)),
      indices: put(engine, new Int32Array(3)),
      scale: 1 / 255,
    };
    expect(() => ws.forward(3, true, pixels)).toThrow(/a training pass of 3 samples, .* at most 2/);
    ws.forward(2, true, pixels);
    ws.forward(8); // inference passes take the whole capacity
  });

  it('the sharded backward pass checks every gradient (Workspace.gradientsFinite)', () => {
    for (const threads of [1, 2]) {
      const engine = createEngine({ simd: build, threads });
      try {
        const model = new Model(preset('mlp-256-128')!, engine, 3);
        const B = 4;
        const K = model.inputSize;
        const ws = new Workspace(model, B);
        const rng = new Rng(5);
        const images = Uint8Array.from({ length: B * K }, () => rng.nextInt(256));
        const pixels = {
          images: put(engine, images),
          indices: put(
            engine,
            Int32Array.from({ length: B }, (_, b) => b),
          ),
          scale: 1 / 255,
        };
        engine.i32(ws.labelsPtr, B).set([1, 2, 3, 4]);
        const pass = (accumulate: boolean): boolean | undefined => {
          ws.forward(B, true, pixels);
          ws.loss(B, 'crossentropy', true);
          ws.backward(B, accumulate);
          return ws.gradientsFinite;
        };
        expect(pass(false), `${threads} threads`).toBe(true);
        // A NaN already in the gradients stays there when the pass adds to them: in the first
        // layer's rows of each thread, in b1, in either half of W2's rows and in the last bias.
        const grads = model.gradients();
        const at = (name: string, i: number): number => model.tensor(name).offset + i;
        const spots = [
          at('layers.0.weight', 7),
          at('layers.0.weight', 700 * 256),
          at('layers.0.bias', 3),
          at('layers.1.weight', 5),
          at('layers.1.weight', 200 * 128),
          at('layers.2.bias', 9),
        ];
        for (const i of spots) {
          pass(false);
          grads[i] = NaN;
          expect(pass(true), `${threads} threads, NaN at ${i}`).toBe(false);
        }
        // Not a sharded pass: nothing was checked.
        engine.f32(ws.inputPtr, B * K).fill(0.5);
        ws.forward(B, true);
        ws.loss(B, 'crossentropy', true);
        ws.backward(B);
        expect(ws.gradientsFinite).toBeUndefined();
      } finally {
        engine.close();
      }
    }
  });
});
