/**
 * Importing foreign weights: PyTorch state_dicts written by real PyTorch
 * (test/fixtures/torch/make_fixtures.py) must predict what PyTorch predicted; every way a foreign
 * file can fail to fit is refused with a message that names the tensor, and leaves the model as it
 * was; Keras-style files and explicit name maps; the `import` command end to end.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { importCommand, registerImportCommand } from '../src/cli/import.js';
import { loadMnist } from '../src/data/mnist.js';
import { loadModel } from '../src/io/files.js';
import { importForeignWeights, naturalCompare, type ImportOptions } from '../src/io/import.js';
import { float32Values, readSafetensors } from '../src/io/safetensors-container.js';
import { encodeModel, ModelFileError } from '../src/io/safetensors.js';
import { createModel } from '../src/nn/create.js';
import type { Model } from '../src/nn/model.js';
import { sequential } from '../src/nn/spec.js';
import { evaluate, predict } from '../src/train/fit.js';
import { maxAbsDiff } from './helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'torch');
const fixture = (file: string): Uint8Array => readFileSync(join(FIXTURES, file));
const LENET5 = 'torch-lenet5.safetensors';
const MLP_F16 = 'torch-mlp-128-64-f16.safetensors';
const MLP_MIXED = 'torch-mlp-40-mixed.safetensors';
const TORCH = { layout: 'torch' } as const;
/** |mnist-wasm − PyTorch| per softmax probability; both compute in float32, in other orders. */
const PROBABILITY_ATOL = 1e-5;
const REFERENCE_IMAGES = 200;

const reference = readSafetensors(fixture('torch-outputs.safetensors'), 'torch-outputs');
const mnist = loadMnist();
const images = mnist.test.images.subarray(0, REFERENCE_IMAGES * 784);

interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

// The reference writer's dtype order (increasing alignment); files list tensors by it descending,
// then by name.
const DTYPE_ORDER = 'BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64'.split(
  ' ',
);

/** A safetensors file laid out the way `safetensors.torch.save_file` lays it out. */
function encodeForeign(tensors: RawTensor[], metadata?: Record<string, string>): Uint8Array {
  const sorted = [...tensors].sort(
    (a, b) =>
      DTYPE_ORDER.indexOf(b.dtype) - DTYPE_ORDER.indexOf(a.dtype) ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const t of sorted) {
    header[t.name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + t.bytes.length],
    };
    offset += t.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset).fill(0x20, 8, 8 + headerLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  let at = 8 + headerLength;
  for (const t of sorted) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

/** A file's tensors as editable copies. */
function tensorsOf(bytes: Uint8Array): RawTensor[] {
  return [...readSafetensors(bytes, 'fixture').tensors.values()].map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: [...t.shape],
    bytes: new Uint8Array(t.bytes), // a copy (a Buffer's slice() is a view)
  }));
}

function f32(name: string, shape: number[], values: ArrayLike<number>): RawTensor {
  return { name, dtype: 'F32', shape, bytes: new Uint8Array(Float32Array.from(values).buffer) };
}

function argmaxRows(p: Float32Array, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < p.length / classes; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (p[r * classes + c]! > p[r * classes + best]!) best = c;
    out.push(best);
  }
  return out;
}

/** Bit-for-bit equality of two parameter regions (toEqual on 60k floats is slow). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** Expect `run` to throw a ModelFileError matching every pattern, and `model` to be unchanged. */
function expectRefused(model: Model, run: () => unknown, ...patterns: RegExp[]): void {
  const before = model.snapshot();
  const metadata = structuredClone(model.metadata);
  let error: unknown;
  try {
    run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ModelFileError);
  for (const p of patterns) expect((error as Error).message).toMatch(p);
  expect(sameBits(model.snapshot(), before)).toBe(true);
  expect(model.metadata).toEqual(metadata);
}

/** The weights of a model as PyTorch holds them (an nn.Sequential named by layer index). */
function torchStateDict(model: Model, flattened: Record<number, [number, number, number]>) {
  const out: RawTensor[] = [];
  for (const layer of model.layers) {
    if (layer.params.length === 0) continue;
    const w = model.tensorView(`layers.${layer.index}.weight`);
    const t = new Float32Array(w.length);
    if (layer.type === 'conv2d') {
      const [KH, KW, C, OC] = model.tensor(`layers.${layer.index}.weight`).shape as number[];
      for (let i = 0; i < w.length; i++) {
        // w index i = ((kh·KW + kw)·C + c)·OC + oc → t index ((oc·C + c)·KH + kh)·KW + kw
        const oc = i % OC!;
        const c = Math.floor(i / OC!) % C!;
        const kw = Math.floor(i / (OC! * C!)) % KW!;
        const kh = Math.floor(i / (OC! * C! * KW!));
        t[((oc * C! + c) * KH! + kh) * KW! + kw] = w[i]!;
      }
      out.push(f32(`${layer.index}.weight`, [OC!, C!, KH!, KW!], t));
    } else {
      const [IN, OUT] = model.tensor(`layers.${layer.index}.weight`).shape as [number, number];
      const [H, W, C] = flattened[layer.index] ?? [1, 1, IN];
      for (let i = 0; i < IN; i++) {
        // mnist-wasm input i = (h·W + w)·C + c; PyTorch's flatten puts it at (c·H + h)·W + w.
        const c = i % C;
        const hw = Math.floor(i / C);
        const j = c * H * W + hw;
        for (let o = 0; o < OUT; o++) t[o * IN + j] = w[i * OUT + o]!;
      }
      out.push(f32(`${layer.index}.weight`, [OUT, IN], t));
    }
    if (layer.bias) {
      const b = model.tensorView(`layers.${layer.index}.bias`);
      out.push(f32(`${layer.index}.bias`, [b.length], b));
    }
  }
  return out;
}

describe('importing PyTorch state_dicts written by PyTorch', () => {
  it.each([
    ['lenet5', LENET5, 'F32'],
    ['mlp-128-64', MLP_F16, 'F16'],
    ['mlp-40', MLP_MIXED, 'F64, BF16, F16, F32'],
  ])(
    `%s from %s (%s): probabilities within ${PROBABILITY_ATOL} of PyTorch's on ${REFERENCE_IMAGES} test images, same argmax`,
    (preset, file) => {
      const model = createModel(preset);
      const report = importForeignWeights(model, fixture(file), file, TORCH);
      expect(report.tensors.map((t) => t.tensor)).toEqual(model.tensors.map((t) => t.name));
      const ours = predict(model, images);
      const theirs = float32Values(reference.tensors.get(preset)!);
      expect(maxAbsDiff(ours, theirs)).toBeLessThanOrEqual(PROBABILITY_ATOL);
      expect(argmaxRows(ours, 10)).toEqual(argmaxRows(theirs, 10));
      expect(model.metadata).toMatchObject({ importedFrom: file, importLayout: 'torch' });
    },
  );

  it('pairs LeNet-5 by natural order (0, 3, 7, 9, 11) and reorders the first Linear from (c, h, w)', () => {
    const model = createModel('lenet5');
    const report = importForeignWeights(model, fixture(LENET5), LENET5, TORCH);
    expect(report.tensors.map((t) => `${t.file}→${t.tensor}`)).toEqual([
      '0.weight→layers.0.weight',
      '0.bias→layers.0.bias',
      '3.weight→layers.2.weight',
      '3.bias→layers.2.bias',
      '7.weight→layers.5.weight',
      '7.bias→layers.5.bias',
      '9.weight→layers.6.weight',
      '9.bias→layers.6.bias',
      '11.weight→layers.7.weight',
      '11.bias→layers.7.bias',
    ]);
    expect(report.tensors[0]!.conversion).toBe('(OC, C, KH, KW) → (KH, KW, C, OC)');
    expect(report.tensors[4]!.conversion).toMatch(
      /\(c, h, w\) flatten to \(h, w, c\) of the \(5, 5, 16\) map/,
    );
    expect(report.tensors[6]!.conversion).toBe('transposed (out, in) → (in, out)');
  });

  it('the fixtures are laid out as the reference writer lays them out; metadata is ignored', () => {
    for (const file of [LENET5, MLP_F16, MLP_MIXED]) {
      expect(Buffer.from(encodeForeign(tensorsOf(fixture(file)))).equals(fixture(file)), file).toBe(
        true,
      );
    }
    const plain = createModel('lenet5');
    importForeignWeights(plain, fixture(LENET5), LENET5, TORCH);
    const withMetadata = createModel('lenet5');
    const hf = encodeForeign(tensorsOf(fixture(LENET5)), { format: 'pt' }); // as HF writes them
    importForeignWeights(withMetadata, hf, 'hf.safetensors', TORCH);
    expect(sameBits(withMetadata.snapshot(), plain.snapshot())).toBe(true);
  });

  it('reports the dtype conversions of the mixed file (F64 rounded; F16, BF16 exact)', () => {
    const report = importForeignWeights(
      createModel('mlp-40'),
      fixture(MLP_MIXED),
      MLP_MIXED,
      TORCH,
    );
    expect(report.tensors.map((t) => t.dtype)).toEqual(['F64', 'BF16', 'F16', 'F32']);
    expect(report.tensors[0]!.conversion).toMatch(/^F64→F32 \(rounded\); transposed/);
    expect(report.notes).toEqual([
      'F64 values were rounded to the nearest float32',
      'F16 values were widened to float32 exactly',
      'BF16 values were widened to float32 exactly',
    ]);
  });

  it("gets PyTorch's accuracy on all 10,000 test images", () => {
    for (const [preset, file] of [
      ['lenet5', LENET5],
      ['mlp-128-64', MLP_F16],
      ['mlp-40', MLP_MIXED],
    ] as const) {
      const model = createModel(preset);
      importForeignWeights(model, fixture(file), file, TORCH);
      const correct = Math.round(evaluate(model, mnist.test).accuracy * 10_000);
      expect(correct, preset).toBe(Number(reference.metadata[`${preset}.correct`]));
    }
  });

  it('converts F16, BF16 and F64 values exactly as float32 would hold them', () => {
    const model = createModel(sequential(2).dense(3).spec('tiny'));
    const half = Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000, 0x3555]); // 1, −2, 2⁻²⁴, 65504, −0, 0.333…
    const bf16 = Uint16Array.from([0x3f80, 0xbfc0, 0x4049]); // 1, −1.5, 3.140625
    const bytes = encodeForeign([
      { name: 'fc.weight', dtype: 'F16', shape: [3, 2], bytes: new Uint8Array(half.buffer) },
      { name: 'fc.bias', dtype: 'BF16', shape: [3], bytes: new Uint8Array(bf16.buffer) },
    ]);
    importForeignWeights(model, bytes, 'tiny.safetensors', TORCH);
    // (out, in) = [[1, −2], [2⁻²⁴, 65504], [−0, 0.333…]] → (in, out)
    const third = 0x155 / 1024 / 4 + 0.25;
    expect(Array.from(model.tensorView('layers.0.weight'))).toEqual([
      1,
      2 ** -24,
      -0,
      -2,
      65504,
      third,
    ]);
    expect(Array.from(model.tensorView('layers.0.bias'))).toEqual([1, -1.5, 3.140625]);

    const f64 = Float64Array.from([0.1, -1 / 3, 1e-50, 2 ** 100, 0.5, 1.0000000596046448]);
    importForeignWeights(
      model,
      encodeForeign([
        { name: 'fc.weight', dtype: 'F64', shape: [3, 2], bytes: new Uint8Array(f64.buffer) },
        f32('fc.bias', [3], [0, 0, 0]),
      ]),
      'f64.safetensors',
      TORCH,
    );
    expect(Array.from(model.tensorView('layers.0.weight'))).toEqual(
      [0.1, 1e-50, 0.5, -1 / 3, 2 ** 100, 1.0000000596046448].map(Math.fround),
    );
  });
});

describe('foreign files that do not fit are refused, naming the tensor, model untouched', () => {
  const lenet5 = tensorsOf(fixture(LENET5));
  const without = (name: string) => encodeForeign(lenet5.filter((t) => t.name !== name));
  const withExtra = (...extra: RawTensor[]) => encodeForeign([...lenet5, ...extra]);

  it('another architecture: every mismatched shape, in the file layout', () => {
    const model = createModel('mlp-256-128');
    expectRefused(
      model,
      () => importForeignWeights(model, fixture(MLP_F16), MLP_F16, TORCH),
      /^torch-mlp-128-64-f16\.safetensors: tensor shapes do not fit mlp-256-128 \(784-256-128-10\) in the torch layout/,
      /"fc1\.weight" is \[128, 784\] but layers\.0\.weight of layers\[0\] dense 784→256 needs \[256, 784\] \(Linear\.weight is \(out, in\)\)/,
      /"fc2\.weight" is \[64, 128\] but layers\.1\.weight of layers\[1\] dense 256→128 needs \[128, 256\]/,
      /"fc1\.bias" is \[128\] but layers\.0\.bias .* needs \[256\] \(a bias is \(out\)\)/,
    );
  });

  it('a file with more tensors than the model: the count and every unmatched tensor', () => {
    const model = createModel('mlp-128-64');
    expectRefused(
      model,
      () => importForeignWeights(model, fixture(LENET5), LENET5, TORCH),
      /10 tensors in the file for 6 parameter tensors in mlp-128-64 \(784-128-64-10\)/,
      /match no parameter: "9\.weight" \[84, 120\], "9\.bias" \[84\], "11\.weight" \[10, 84\], "11\.bias" \[10\]/,
    );
  });

  it('a missing tensor: names the model tensor and its layer', () => {
    const model = createModel('lenet5');
    expectRefused(
      model,
      () => importForeignWeights(model, without('11.bias'), 'no-bias.safetensors', TORCH),
      /9 tensors in the file for 10 parameter tensors/,
      /no tensor in the file for layers\.7\.bias \(the bias of layers\[7\] dense 84→10\)/,
    );
    expectRefused(
      model,
      () => importForeignWeights(model, without('3.bias'), 'no-bias.safetensors', TORCH),
      /layers\.2\.bias \(the bias of layers\[2\] conv2d 5×5 6→16; module "3" in the file has none\)/,
    );
  });

  it('an extra tensor: listed with its shape', () => {
    const model = createModel('lenet5');
    expectRefused(
      model,
      () =>
        importForeignWeights(
          model,
          withExtra(f32('12.weight', [10], new Float32Array(10))),
          'x',
          TORCH,
        ),
      /11 tensors in the file for 10 parameter tensors/,
      /match no parameter: "12\.weight" \[10\]/,
    );
    expectRefused(
      model,
      () =>
        importForeignWeights(
          model,
          withExtra(f32('1.running_mean', [6], new Float32Array(6))),
          'x',
          TORCH,
        ),
      /match no parameter: "1\.running_mean" \[6\]/,
    );
  });

  it("an integer tensor (BatchNorm's num_batches_tracked, I64) is an unsupported dtype", () => {
    const model = createModel('lenet5');
    const counter = {
      name: '1.num_batches_tracked',
      dtype: 'I64',
      shape: [],
      bytes: new Uint8Array(8),
    };
    expectRefused(
      model,
      () => importForeignWeights(model, withExtra(counter), 'bn.safetensors', TORCH),
      /^bn\.safetensors: tensor "1\.num_batches_tracked" has dtype I64; only floating-point tensors \(F32, F64, F16, BF16\)/,
    );
  });

  it('a non-finite weight (in the last tensor, after the others converted) or an F64 beyond float32', () => {
    const model = createModel('lenet5');
    const bad = lenet5.map((t) => ({ ...t, bytes: new Uint8Array(t.bytes) }));
    new DataView(bad.find((t) => t.name === '11.bias')!.bytes.buffer).setFloat32(12, NaN, true);
    expectRefused(
      model,
      () => importForeignWeights(model, encodeForeign(bad), 'nan.safetensors', TORCH),
      /"11\.bias" \(for layers\.7\.bias\) holds a non-finite value \(NaN\) at index 3/,
    );
    const tiny = createModel(sequential(2).dense(1).spec('tiny'));
    const big = Float64Array.from([1, 1e39]);
    expectRefused(
      tiny,
      () =>
        importForeignWeights(
          tiny,
          encodeForeign([
            { name: 'w.weight', dtype: 'F64', shape: [1, 2], bytes: new Uint8Array(big.buffer) },
            f32('w.bias', [1], [0]),
          ]),
          'big.safetensors',
          TORCH,
        ),
      /"w\.weight" \(for layers\.0\.weight\) holds 1e\+39 at index 1, beyond float32's range/,
    );
  });

  it('a truncated or corrupt file', () => {
    const model = createModel('lenet5');
    const bytes = fixture(LENET5);
    expectRefused(
      model,
      () => importForeignWeights(model, bytes.subarray(0, bytes.length - 100), 'cut', TORCH),
      /truncated/,
    );
    expectRefused(
      model,
      () => importForeignWeights(model, bytes.subarray(0, 5), 'cut', TORCH),
      /too short for a safetensors file/,
    );
    expectRefused(
      model,
      () => importForeignWeights(model, new Uint8Array(40).fill(7), 'junk', TORCH),
      /header length/,
    );
  });

  it('an mnist-wasm model file, an unknown layout', () => {
    const model = createModel('lenet5');
    expectRefused(
      model,
      () => importForeignWeights(model, encodeModel(model), 'own.safetensors', TORCH),
      /already/,
    );
    expectRefused(
      model,
      () =>
        importForeignWeights(model, fixture(LENET5), 'x', {
          layout: 'onnx',
        } as unknown as ImportOptions),
      /unknown layout "onnx"/,
    );
  });

  it('a bias for a layer built without one', () => {
    const spec = sequential(4).dense(3, 'relu', { bias: false }).dense(2).spec('nobias');
    const model = createModel(spec);
    const file = [
      f32('0.weight', [3, 4], new Float32Array(12).fill(1)),
      f32('2.weight', [2, 3], new Float32Array(6).fill(2)),
      f32('2.bias', [2], [5, 6]),
    ];
    expectRefused(
      model,
      () =>
        importForeignWeights(
          model,
          encodeForeign([...file, f32('0.bias', [3], [1, 2, 3])]),
          'x',
          TORCH,
        ),
      /match no parameter: "0\.bias" \[3\]/,
    );
    importForeignWeights(model, encodeForeign(file), 'x', TORCH);
    expect(Array.from(model.tensorView('layers.1.bias'))).toEqual([5, 6]);
  });

  it('fuzzed files: an import or a ModelFileError, never another exception; failures change nothing', () => {
    const spec = sequential(6).dense(4, 'relu').dense(3, 'softmax').spec('fuzz');
    const model = createModel(spec);
    const valid = encodeForeign(torchStateDict(createModel(spec, { seed: 2 }), {}));
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
          maxLength: 4,
        }),
        fc.nat(),
        (edits, cut) => {
          const bytes = valid.slice(0, valid.length - (cut % 3 === 0 ? cut % 17 : 0));
          for (const e of edits) bytes[e.at % bytes.length] = e.value;
          const before = model.snapshot();
          try {
            importForeignWeights(model, bytes, 'fuzz', TORCH);
          } catch (e) {
            if (!(e instanceof ModelFileError)) throw e;
            expect(sameBits(model.snapshot(), before)).toBe(true);
          }
        },
      ),
      { numRuns: 2000, seed: 11 },
    );
  });
});

describe('names, maps and layouts', () => {
  it('natural order: numbers as numbers', () => {
    const names = [
      'dense_10',
      'dense',
      '11',
      'layers.10.fc',
      'dense_2',
      '3',
      'layers.2.fc',
      'dense_1',
      '0',
    ];
    expect([...names].sort(naturalCompare)).toEqual([
      '0',
      '3',
      '11',
      'dense',
      'dense_1',
      'dense_2',
      'dense_10',
      'layers.2.fc',
      'layers.10.fc',
    ]);
  });

  // LeNet-5 as torchvision-style `features` / `classifier` submodules: classifier sorts first.
  const renamed: Record<string, string> = {
    '0': 'features.0',
    '3': 'features.3',
    '7': 'classifier.1',
    '9': 'classifier.3',
    '11': 'classifier.5',
  };
  const torchvisionStyle = encodeForeign(
    tensorsOf(fixture(LENET5)).map((t) => {
      const [module, role] = t.name.split('.');
      return { ...t, name: `${renamed[module!]}.${role}` };
    }),
  );
  const fullMap: Record<string, string> = {};
  Object.values(renamed).forEach((module, k) => {
    const layer = [0, 2, 5, 6, 7][k];
    fullMap[`layers.${layer}.weight`] = `${module}.weight`;
    fullMap[`layers.${layer}.bias`] = `${module}.bias`;
  });

  it('names out of layer order fail on shapes (suggesting a map), and import with a map', () => {
    const direct = createModel('lenet5');
    importForeignWeights(direct, fixture(LENET5), LENET5, TORCH);
    const model = createModel('lenet5');
    expectRefused(
      model,
      () => importForeignWeights(model, torchvisionStyle, 'tv.safetensors', TORCH),
      /"classifier\.1\.weight" is \[120, 400\] but layers\.0\.weight of layers\[0\] conv2d 5×5 1→6 needs \[6, 1, 5, 5\]/,
      /give a map/,
    );
    const report = importForeignWeights(model, torchvisionStyle, 'tv.safetensors', {
      ...TORCH,
      map: fullMap,
    });
    expect(report.tensors.every((t) => t.mapped)).toBe(true);
    expect(sameBits(model.snapshot(), direct.snapshot())).toBe(true);

    // A partial map: the convolutions mapped, the classifier pairs by order.
    const partial = createModel('lenet5');
    const convOnly = Object.fromEntries(
      Object.entries(fullMap).filter(([, f]) => f.startsWith('features')),
    );
    const r2 = importForeignWeights(partial, torchvisionStyle, 'tv.safetensors', {
      ...TORCH,
      map: convOnly,
    });
    expect(r2.tensors.map((t) => t.mapped)).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(sameBits(partial.snapshot(), direct.snapshot())).toBe(true);
  });

  it('map mistakes are named', () => {
    const model = createModel('lenet5');
    const run = (map: unknown) => () =>
      importForeignWeights(model, torchvisionStyle, 'tv', { ...TORCH, map } as ImportOptions);
    expectRefused(
      model,
      run({ 'layers.1.weight': 'features.0.weight' }),
      /map: "layers\.1\.weight" is not a parameter tensor of lenet5 .*\(it has layers\.0\.weight, layers\.0\.bias/,
    );
    expectRefused(
      model,
      run({ 'layers.0.weight': 'features.9.weight' }),
      /map: "layers\.0\.weight" → "features\.9\.weight", which is not in the file \(it holds "/,
    );
    expectRefused(
      model,
      run({ 'layers.0.weight': 'features.0.weight', 'layers.2.weight': 'features.0.weight' }),
      /map: "features\.0\.weight" is given for both layers\.0\.weight and layers\.2\.weight/,
    );
    expectRefused(model, run(['features.0.weight']), /map must be an object/);
  });

  it('Keras-style names and layouts (dense/kernel:0, Keras 3 vars/0) import as stored', () => {
    const source = createModel('lenet5', { seed: 3 });
    const names = ['conv2d', 'conv2d_1', 'dense', 'dense_1', 'dense_2'];
    const keras = source.layers
      .filter((l) => l.params.length > 0)
      .flatMap((l, k) => [
        f32(
          `${names[k]}/kernel:0`,
          shapeOf(source, `layers.${l.index}.weight`),
          source.tensorView(`layers.${l.index}.weight`),
        ),
        f32(
          `${names[k]}/bias:0`,
          shapeOf(source, `layers.${l.index}.bias`),
          source.tensorView(`layers.${l.index}.bias`),
        ),
      ]);
    const model = createModel('lenet5', { seed: 4 });
    const report = importForeignWeights(model, encodeForeign(keras), 'keras.safetensors', {
      layout: 'keras',
    });
    expect(report.tensors.map((t) => t.conversion)).toEqual(new Array(10).fill('as stored'));
    expect(sameBits(model.snapshot(), source.snapshot())).toBe(true);

    // The same file read as PyTorch's: the shapes say which layout it is.
    expectRefused(
      model,
      () => importForeignWeights(model, encodeForeign(keras), 'keras.safetensors', TORCH),
      /"conv2d\/kernel:0" is \[5, 5, 1, 6\] but layers\.0\.weight .* needs \[6, 1, 5, 5\] \(Conv2d\.weight is \(out_channels, in_channels, kH, kW\)\) — \[5, 5, 1, 6\] is the keras layout/,
    );

    const mlp = createModel('mlp-40', { seed: 5 });
    const keras3 = ['dense', 'dense_1'].flatMap((name, k) => [
      f32(
        `layers/${name}/vars/0`,
        shapeOf(mlp, `layers.${k}.weight`),
        mlp.tensorView(`layers.${k}.weight`),
      ),
      f32(
        `layers/${name}/vars/1`,
        shapeOf(mlp, `layers.${k}.bias`),
        mlp.tensorView(`layers.${k}.bias`),
      ),
    ]);
    const target = createModel('mlp-40', { seed: 6 });
    importForeignWeights(target, encodeForeign(keras3), 'keras3', { layout: 'keras' });
    expect(sameBits(target.snapshot(), mlp.snapshot())).toBe(true);
  });

  it('a torch state_dict of cnn-small (dense straight after a (4, 4, 16) map) round-trips', () => {
    const source = createModel('cnn-small', { seed: 8 });
    const file = encodeForeign(torchStateDict(source, { 5: [4, 4, 16] }));
    const model = createModel('cnn-small', { seed: 9 });
    importForeignWeights(model, file, 'cnn-small.safetensors', TORCH);
    expect(sameBits(model.snapshot(), source.snapshot())).toBe(true);
  });
});

/** A copy of a model tensor's shape. */
function shapeOf(model: Model, name: string): number[] {
  return [...model.tensor(name).shape];
}

describe('the import command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mnist-wasm-import-'));
  let stdout: string[] = [];
  beforeEach(() => {
    stdout = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      stdout.push(String(s));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => vi.restoreAllMocks());

  it('writes a model that loadModel reads back with the imported weights and the accuracy', async () => {
    const out = join(dir, 'lenet5.safetensors');
    await importCommand({
      model: 'lenet5',
      weights: join(FIXTURES, LENET5),
      layout: 'torch',
      out,
      quick: true,
    });
    const loaded = loadModel(out);
    const direct = createModel('lenet5');
    importForeignWeights(direct, fixture(LENET5), LENET5, TORCH);
    expect(sameBits(loaded.snapshot(), direct.snapshot())).toBe(true);
    expect(loaded.metadata).toMatchObject({
      importLayout: 'torch',
      importedFrom: join(FIXTURES, LENET5),
    });
    expect(loaded.metadata.testAccuracy).toBeGreaterThan(0.9);
    const text = stdout.join('');
    expect(text).toMatch(
      /imported 10 tensors from .*torch-lenet5\.safetensors \(torch layout\) into lenet5/,
    );
    expect(text).toMatch(
      /7\.weight +F32 +\[120, 400\] +→ +layers\.5\.weight +layers\[5\] dense 400→120 +transposed/,
    );
    expect(text).toMatch(
      /test accuracy \d+\.\d\d% \(loss \d\.\d{4}\) on [\d,]+ images of mnist quick test; model saved to /,
    );
  });

  it('--json prints one object; --map from a file, through the registered command', async () => {
    const weights = join(dir, 'tv.safetensors');
    const bytes = tensorsOf(fixture(LENET5)).map((t) => ({
      ...t,
      name: t.name.replace(/^(\d+)\./, 'net.$1.'),
    }));
    writeFileSync(weights, encodeForeign(bytes));
    const mapFile = join(dir, 'map.json');
    writeFileSync(
      mapFile,
      JSON.stringify({ 'layers.7.weight': 'net.11.weight', 'layers.7.bias': 'net.11.bias' }),
    );
    const program = new Command().exitOverride();
    registerImportCommand(program);
    const out = join(dir, 'mapped.safetensors');
    await program.parseAsync(
      [
        'import',
        '--model',
        'lenet5',
        '--weights',
        weights,
        '--map',
        mapFile,
        '--out',
        out,
        '--quick',
        '--json',
      ],
      { from: 'user' },
    );
    const summary = JSON.parse(stdout.join(''));
    expect(summary).toMatchObject({
      model: 'lenet5',
      layout: 'torch',
      out,
      dataset: expect.any(String),
    });
    expect(summary.tensors).toHaveLength(10);
    expect(summary.tensors[8]).toMatchObject({
      file: 'net.11.weight',
      tensor: 'layers.7.weight',
      mapped: true,
    });
    expect(
      sameBits(loadModel(out).snapshot(), loadModel(join(dir, 'lenet5.safetensors')).snapshot()),
    ).toBe(true);
  });

  it('an unwritable --out, a bad map file or a failed import: a clear error and no file', async () => {
    const weights = join(FIXTURES, LENET5);
    await expect(
      importCommand({
        model: 'lenet5',
        weights,
        layout: 'torch',
        out: join(dir, 'nope', 'm.safetensors'),
        quick: true,
      }),
    ).rejects.toThrow(/cannot write .*m\.safetensors: directory .*nope does not exist/);
    const badMap = join(dir, 'bad-map.json');
    writeFileSync(badMap, '{"layers.0.weight": 3}');
    const out = join(dir, 'never.safetensors');
    await expect(
      importCommand({ model: 'lenet5', weights, layout: 'torch', map: badMap, out, quick: true }),
    ).rejects.toThrow(/map file .*bad-map\.json must hold one JSON object/);
    await expect(
      importCommand({ model: 'mlp-256-128', weights, layout: 'torch', out, quick: true }),
    ).rejects.toThrow(ModelFileError);
    await expect(
      importCommand({
        model: 'lenet5',
        weights: join(dir, 'missing.safetensors'),
        layout: 'torch',
        out,
        quick: true,
      }),
    ).rejects.toThrow(/weights file .*missing\.safetensors does not exist/);
    expect(existsSync(out)).toBe(false);
  });
});
