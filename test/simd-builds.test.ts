/**
 * Choosing a kernel build (src/engine/engine.ts, src/engine/node.ts): 'auto' runs the relaxed-SIMD
 * build where the host validates it and the baseline build otherwise; 'baseline' and 'relaxed'
 * are honoured or refused with a plain message; an engine reports its build and whether its
 * multiply-add is fused. Training is deterministic per build: two runs of one build give the same
 * bits, and (on a host that fuses) the two builds give different ones.
 */
import { describe, expect, it } from 'vitest';
import { Engine, resolveSimd, type SimdChoice } from '../src/engine/engine.js';
import {
  createEngine,
  relaxedSimdAvailable,
  simdBuild,
  wasmModule,
  wasmPath,
} from '../src/engine/node.js';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createModel } from '../src/nn/create.js';
import { preset } from '../src/nn/presets.js';
import { fit } from '../src/train/fit.js';

describe('choosing the kernel build', () => {
  it('Node ≥ 20 runs the relaxed-SIMD build (Node 20 after setting V8’s flag)', () => {
    expect(relaxedSimdAvailable()).toBe(true);
    expect(wasmPath('relaxed')).toMatch(/mnist-wasm-relaxed\.wasm$/);
    expect(wasmPath()).toMatch(/mnist-wasm\.wasm$/);
  });

  it("'auto' (the default) picks relaxed when available, baseline otherwise", () => {
    expect(createEngine().build).toBe('relaxed');
    expect(createEngine({ simd: 'auto' }).build).toBe('relaxed');
    expect(simdBuild()).toBe('relaxed');
    expect(resolveSimd('auto', true)).toBe('relaxed');
    expect(resolveSimd('auto', false)).toBe('baseline');
    expect(resolveSimd(undefined, false)).toBe('baseline');
  });

  it("'baseline' and 'relaxed' are honoured", () => {
    const baseline = createEngine({ simd: 'baseline' });
    expect(baseline.build).toBe('baseline');
    expect(baseline.fusedMadd).toBe(false);
    const relaxed = createEngine({ simd: 'relaxed' });
    expect(relaxed.build).toBe('relaxed');
    // V8 lowers relaxed_madd to vfmadd on x64 CPUs with FMA3 and to fmla on arm64.
    if (process.arch === 'x64' || process.arch === 'arm64') expect(relaxed.fusedMadd).toBe(true);
    expect(resolveSimd('baseline', true)).toBe('baseline');
    expect(resolveSimd('relaxed', true)).toBe('relaxed');
  });

  it('refuses relaxed where it is unavailable, unknown choices, and a module of the other build', () => {
    expect(() => resolveSimd('relaxed', false)).toThrow(
      /relaxed-SIMD build was requested .* does not support relaxed SIMD; use simd 'auto' or 'baseline'/,
    );
    expect(() => resolveSimd('fast' as SimdChoice, true)).toThrow(
      /simd must be one of auto, relaxed, baseline; got "fast"/,
    );
    expect(() => createEngine({ simd: 'avx' as SimdChoice })).toThrow(/simd must be one of/);
    expect(() => Engine.fromModule(wasmModule('baseline'), { simd: 'relaxed' })).toThrow(
      /simd: relaxed was requested, but the module given is the baseline build/,
    );
    expect(Engine.fromModule(wasmModule('relaxed')).build).toBe('relaxed');
  });
});

describe('training is deterministic per build', () => {
  const spec = preset('mlp-128-64')!;
  const quick = loadMnistQuick();
  const options = {
    epochs: 1,
    batchSize: 32,
    seed: 5,
    optimizer: { type: 'adam' as const, learningRate: 1e-3 },
  };
  const train = (simd: SimdChoice) => {
    const model = createModel(spec, { seed: options.seed, engine: createEngine({ simd }) });
    fit(model, { train: subset(quick.train, 0, 640) }, options);
    return new Uint32Array(model.parameters().slice().buffer);
  };

  it('same build, same bits; the two builds differ where multiply-add is fused', () => {
    const relaxed = train('relaxed');
    const baseline = train('baseline');
    expect(train('relaxed')).toEqual(relaxed);
    expect(train('baseline')).toEqual(baseline);
    let differ = 0;
    for (let i = 0; i < relaxed.length; i++) if (relaxed[i] !== baseline[i]) differ++;
    if (createEngine({ simd: 'relaxed' }).fusedMadd) expect(differ).toBeGreaterThan(0);
    else expect(differ).toBe(0);
  });
});
