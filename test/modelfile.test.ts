/**
 * Model files: exact round trips, clear rejection of every kind of damage, atomic writes.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import { checkWritable, loadModel, saveModel } from '../src/io/files.js';
import { applyWeights, decodeModel, encodeModel, ModelFileError } from '../src/io/safetensors.js';
import { createModel } from '../src/nn/create.js';
import { fit, predict } from '../src/train/fit.js';

const dir = mkdtempSync(join(tmpdir(), 'mnist-wasm-model-'));
const quick = loadMnistQuick();
const trained = createModel('mlp-128-64', { seed: 7 });
fit(
  trained,
  { train: subset(quick.train, 0, 1000), test: subset(quick.test, 0, 200) },
  { epochs: 1, batchSize: 32, optimizer: { type: 'adam', learningRate: 1e-3 } },
);
const goodBytes = encodeModel(trained);

/** Rewrite the JSON header of a valid file (keeping the data) with `edit`. */
function withHeader(edit: (h: Record<string, unknown>) => void): Uint8Array {
  const view = new DataView(goodBytes.buffer, goodBytes.byteOffset);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(goodBytes.subarray(8, 8 + n)));
  edit(header);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + goodBytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(goodBytes.subarray(8 + n), 8 + json.length);
  return out;
}

describe('model files', () => {
  it('save → load gives bit-identical weights, metadata and predictions', () => {
    const path = join(dir, 'model.safetensors');
    saveModel(trained, path);
    const loaded = loadModel(path);
    expect(loaded.spec).toEqual(trained.spec);
    expect(Array.from(loaded.parameters())).toEqual(Array.from(trained.parameters()));
    expect(loaded.metadata).toEqual(trained.metadata);
    expect(loaded.metadata.epochs).toBe(1);
    const images = quick.test.images.subarray(0, 100 * 784);
    expect(Array.from(predict(loaded, images))).toEqual(Array.from(predict(trained, images)));
  });

  it('is a valid safetensors file: u64 header length, JSON header, F32 tensors, string metadata', () => {
    const n = Number(new DataView(goodBytes.buffer, goodBytes.byteOffset).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(goodBytes.subarray(8, 8 + n)));
    expect(header.__metadata__.format).toBe('mnist-wasm');
    for (const v of Object.values(header.__metadata__)) expect(typeof v).toBe('string');
    expect(header['layers.0.weight']).toEqual({
      dtype: 'F32',
      shape: [784, 128],
      data_offsets: [0, 784 * 128 * 4],
    });
    const w0 = new Float32Array(goodBytes.slice(8 + n, 8 + n + 16).buffer);
    expect(Array.from(w0)).toEqual(
      Array.from(trained.tensorView('layers.0.weight').subarray(0, 4)),
    );
    expect(goodBytes.length).toBe(8 + n + trained.parameterCount * 4);
  });

  const damaged: [string, () => Uint8Array, RegExp][] = [
    ['an empty file', () => new Uint8Array(0), /too short/],
    ['a truncated file', () => goodBytes.subarray(0, goodBytes.length - 100), /truncated/],
    [
      'a header length past the end',
      () => Object.assign(goodBytes.slice(), { 0: 0xff, 1: 0xff, 2: 0xff }),
      /header length/,
    ],
    [
      'a corrupt JSON header',
      () => {
        const b = goodBytes.slice();
        b[9] = 0x7b;
        b[10] = 0x7b;
        return b;
      },
      /not valid JSON/,
    ],
    [
      'a file from another tool',
      () => withHeader((h) => delete h.__metadata__),
      /not an mnist-wasm model/,
    ],
    [
      'a newer format version',
      () => withHeader((h) => ((h.__metadata__ as Record<string, string>).version = '9')),
      /version "9" is not supported/,
    ],
    [
      'a wrong tensor shape',
      () => withHeader((h) => ((h['layers.0.weight'] as { shape: number[] }).shape = [128, 784])),
      /shape \[128,784\].*\[784, 128\]/,
    ],
    [
      'a wrong dtype',
      () => withHeader((h) => ((h['layers.1.bias'] as { dtype: string }).dtype = 'F16')),
      /dtype "F16"/,
    ],
    [
      'a missing tensor',
      () => withHeader((h) => delete h['layers.2.bias']),
      /"layers.2.bias" is missing|cover/,
    ],
    [
      'an unexpected tensor',
      () =>
        withHeader(
          (h) => (h['layers.9.weight'] = { dtype: 'F32', shape: [1], data_offsets: [0, 4] }),
        ),
      /unexpected tensor "layers.9.weight"/,
    ],
    [
      'an architecture that does not match the tensors',
      () =>
        withHeader(
          (h) =>
            ((h.__metadata__ as Record<string, string>).spec = JSON.stringify({
              inputSize: 784,
              layers: [{ type: 'dense', units: 10 }],
            })),
        ),
      /unexpected tensor|shape/,
    ],
    [
      'two tensors that overlap, balanced by a gap elsewhere',
      () =>
        withHeader((h) => {
          // layers.1.bias and layers.2.bias: both 10-float-or-more ranges; point the second at
          // the first's bytes and leave its own bytes uncovered — the total still adds up.
          const a = h['layers.1.bias'] as { data_offsets: [number, number] };
          const b = h['layers.2.bias'] as { data_offsets: [number, number]; shape: number[] };
          const length = b.data_offsets[1] - b.data_offsets[0];
          b.data_offsets = [a.data_offsets[0], a.data_offsets[0] + length];
        }),
      /overlap or leave a gap/,
    ],
    [
      'NaN weights',
      () => {
        const b = goodBytes.slice();
        const n = Number(new DataView(b.buffer).getBigUint64(0, true));
        new DataView(b.buffer).setFloat32(8 + n + 40, NaN, true);
        return b;
      },
      /non-finite value/,
    ],
  ];
  it.each(damaged)('rejects %s with a clear message', (_name, make, message) => {
    expect(() => decodeModel(make(), 'bad.safetensors')).toThrow(ModelFileError);
    expect(() => decodeModel(make(), 'bad.safetensors')).toThrow(message);
    expect(() => decodeModel(make(), 'bad.safetensors')).toThrow(/^bad\.safetensors: /);
  });

  it('loading weights of another architecture leaves the current model untouched', () => {
    const other = createModel('mlp-40', { seed: 1 });
    const before = other.snapshot();
    expect(() => applyWeights(other, decodeModel(goodBytes, 'x'), 'x')).toThrow(
      /different architecture \(784-128-64-10\).*\(784-40-10\)/,
    );
    expect(Array.from(other.parameters())).toEqual(Array.from(before));
  });

  it('a missing file gets a plain message', () => {
    expect(() => loadModel(join(dir, 'nope.safetensors'), createEngine())).toThrow(
      /does not exist/,
    );
  });

  it('writes atomically: no temp files left, an existing file is replaced whole', () => {
    const path = join(dir, 'atomic.safetensors');
    writeFileSync(path, 'old contents');
    saveModel(trained, path);
    expect(readFileSync(path).equals(Buffer.from(goodBytes))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('unwritable targets fail before anything is written, naming the reason', () => {
    expect(() => checkWritable(join(dir, 'no-such-dir', 'm.safetensors'))).toThrow(
      /directory .*no-such-dir does not exist/,
    );
    expect(() => saveModel(trained, join(dir, 'no-such-dir', 'm.safetensors'))).toThrow(
      /does not exist/,
    );
    expect(() => checkWritable(dir)).toThrow(/is a directory/);
    if (process.getuid?.() !== 0) {
      const locked = mkdtempSync(join(dir, 'locked-'));
      chmodSync(locked, 0o500);
      expect(() => saveModel(trained, join(locked, 'm.safetensors'))).toThrow(/permission denied/);
      expect(readdirSync(locked)).toEqual([]);
    }
  });
});
