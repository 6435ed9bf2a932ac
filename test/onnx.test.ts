/**
 * ONNX export: every preset and custom specs covering every layer type and activation are trained
 * briefly, exported, run in ONNX Runtime on the full 10,000-image MNIST test set and compared with
 * mnist-wasm's own `predict` (same argmax everywhere, max |difference| ≤ 1e-5); the file's
 * protobuf is read back with the exporter's schema; the CLI command's output and error paths.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { exportCommand, registerExportCommand } from '../src/cli/export.js';
import { subset } from '../src/data/dataset.js';
import { loadMnist } from '../src/data/mnist.js';
import { saveModel } from '../src/io/files.js';
import {
  decodeOnnx,
  encodeOnnx,
  ONNX_FLOAT,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  OnnxExportError,
} from '../src/io/onnx.js';
import { createModel } from '../src/nn/create.js';
import type { LossName, Model } from '../src/nn/model.js';
import { presetNames } from '../src/nn/presets.js';
import type { ModelSpec } from '../src/nn/spec.js';
import { fit, predict } from '../src/train/fit.js';

const mnist = loadMnist();
const test = mnist.test;
const D = 784;
/** The floats predict stages from uint8 pixels: p · f32(1/255), one float32 multiply. */
const scale = Math.fround(1 / 255);
const testInputs = Float32Array.from(test.images, (p) => Math.fround(p * scale));
const dir = mkdtempSync(join(tmpdir(), 'mnist-wasm-onnx-'));

/** Specs for what the presets leave out (all with an image input, 28×28×1). */
const CUSTOM: { spec: ModelSpec; loss?: LossName }[] = [
  {
    // Strided padded conv (im2col path from one channel), avgPool, a conv without bias and an
    // overlapping maxPool, dropout on a map, a dense straight after a map (implicit flatten),
    // sigmoid and tanh hidden layers, non-default α, a linear (logits) output.
    spec: {
      name: 'custom-cnn',
      inputShape: [28, 28, 1],
      layers: [
        { type: 'conv2d', filters: 8, kernelSize: 3, stride: 2, padding: 1, activation: 'leaky_relu', alpha: 0.2 }, // prettier-ignore
        { type: 'avgPool2d', poolSize: 2 },
        { type: 'conv2d', filters: 12, kernelSize: 3, padding: 1, activation: 'elu', alpha: 0.5, bias: false }, // prettier-ignore
        { type: 'maxPool2d', poolSize: 3, stride: 2 },
        { type: 'dropout', rate: 0.3 },
        { type: 'dense', units: 32, activation: 'sigmoid' },
        { type: 'dropout', rate: 0.2 },
        { type: 'dense', units: 16, activation: 'tanh' },
        { type: 'dense', units: 10, activation: 'linear' },
      ],
    },
  },
  {
    // Convolutions only: stride 3 with padding, an overlapping 3×3 avgPool (1/9 is inexact), and
    // a softmax conv output that is a 2×2×3 map (12 outputs, flattened in (h, w, c) order).
    spec: {
      name: 'all-conv',
      inputShape: [28, 28, 1],
      layers: [
        { type: 'conv2d', filters: 16, kernelSize: 5, stride: 3, padding: 2, activation: 'tanh' },
        { type: 'avgPool2d', poolSize: 3, stride: 1 },
        { type: 'conv2d', filters: 3, kernelSize: 7, activation: 'softmax' }, // 2×2×3
      ],
    },
  },
  {
    // Dense layers on an image input (flattened as stored), ELU with α 1.5, default-α LeakyReLU,
    // a layer without bias, dropout between dense layers, a sigmoid output trained with MSE.
    spec: {
      name: 'image-mlp',
      inputShape: [28, 28, 1],
      layers: [
        { type: 'dense', units: 64, activation: 'elu', alpha: 1.5 },
        { type: 'dense', units: 32, activation: 'leaky_relu', bias: false },
        { type: 'dropout', rate: 0.5 },
        { type: 'dense', units: 10, activation: 'sigmoid' },
      ],
    },
    loss: 'mse',
  },
];

/** A model trained for 300 Adam steps of 32 images from a fixed seed: confident, not random. */
function trainedModel(spec: ModelSpec | string, loss: LossName = 'crossentropy'): Model {
  const model = createModel(spec, { seed: 11 });
  fit(
    model,
    { train: subset(mnist.train, 0, 9600) },
    { epochs: 1, batchSize: 32, optimizer: { type: 'adam', learningRate: 3e-3 }, loss },
  );
  return model;
}

/** Run the ONNX bytes in ONNX Runtime on (count, D) inputs, in batches of `batch`. */
async function runOnnx(bytes: Uint8Array, inputs: Float32Array, batch = 2500) {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  try {
    const count = inputs.length / D;
    const parts: Float32Array[] = [];
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      const x = new ort.Tensor('float32', inputs.subarray(start * D, (start + n) * D), [n, D]);
      const { output } = await session.run({ input: x });
      parts.push(output!.data as Float32Array);
    }
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  } finally {
    await session.release();
  }
}

function argmaxRows(values: Float32Array, n: number): Int32Array {
  const rows = values.length / n;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < n; j++) if (values[r * n + j]! > values[r * n + best]!) best = j;
    out[r] = best;
  }
  return out;
}

/** Max |diff| per model, printed at the end for the record. */
const observed: Record<string, { maxDiff: number; accuracy: number; seconds: number }> = {};

describe('ONNX export matches predict on the 10,000 MNIST test images', () => {
  const cases: [string, ModelSpec | string, LossName | undefined][] = [
    ...presetNames().map((name): [string, string, undefined] => [name, name, undefined]),
    ...CUSTOM.map((c): [string, ModelSpec, LossName | undefined] => [c.spec.name!, c.spec, c.loss]),
  ];
  it.each(cases)('%s', async (name, spec, loss) => {
    const t0 = performance.now();
    const model = trainedModel(spec, loss);
    const expected = predict(model, test.images.subarray(0, test.count * D));
    const actual = await runOnnx(encodeOnnx(model), testInputs);
    expect(actual.length).toBe(expected.length);
    const N = model.outputSize;
    const want = argmaxRows(expected, N);
    const got = argmaxRows(actual, N);
    let mismatches = 0;
    let correct = 0;
    let maxDiff = 0;
    for (let i = 0; i < test.count; i++) {
      if (want[i] !== got[i]) mismatches++;
      if (want[i] === test.labels[i]) correct++;
    }
    for (let i = 0; i < expected.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs(expected[i]! - actual[i]!));
    observed[name] = {
      maxDiff,
      accuracy: correct / test.count,
      seconds: (performance.now() - t0) / 1000,
    };
    expect(mismatches).toBe(0);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    // Trained, not a random net whose near-ties would make the argmax check meaningless.
    expect(correct / test.count).toBeGreaterThan(0.6);
  });

  it('prints the observed differences', () => {
    for (const [name, o] of Object.entries(observed)) {
      console.log(
        `${name.padEnd(12)} max |diff| ${o.maxDiff.toExponential(2)}  ` +
          `accuracy ${(100 * o.accuracy).toFixed(2)}%  ${o.seconds.toFixed(2)} s`,
      );
    }
  });
});

describe('ONNX file structure', () => {
  const lenet = createModel('lenet5', { seed: 3 });
  const bytes = encodeOnnx(lenet, { producerVersion: '0.1.0' });
  const onnx = decodeOnnx(bytes);

  it('decodes with the schema: opset, IR version, producer, documented interface', () => {
    expect(onnx.ir_version).toBe(ONNX_IR_VERSION);
    expect(onnx.opset_import).toEqual([{ domain: '', version: ONNX_OPSET }]);
    expect(onnx.producer_name).toBe('mnist-wasm');
    expect(onnx.producer_version).toBe('0.1.0');
    expect(onnx.doc_string).toContain('lenet5');
    expect(onnx.doc_string).toContain('1/255');
    expect(onnx.graph.name).toBe('lenet5');
    const dims = (v: (typeof onnx.graph.input)[number]) =>
      v.type.tensor_type.shape.dim.map((d) => d.dim_param ?? d.dim_value);
    expect(onnx.graph.input.map((v) => v.name)).toEqual(['input']);
    expect(onnx.graph.output.map((v) => v.name)).toEqual(['output']);
    expect(onnx.graph.input[0]!.type.tensor_type.elem_type).toBe(ONNX_FLOAT);
    expect(dims(onnx.graph.input[0]!)).toEqual(['batch', 784]);
    expect(dims(onnx.graph.output[0]!)).toEqual(['batch', 10]);
    const meta = Object.fromEntries(onnx.metadata_props.map((p) => [p.key, p.value]));
    expect(JSON.parse(meta['mnist-wasm.spec']!)).toEqual(lenet.spec);
    expect(JSON.parse(meta['mnist-wasm.training']!)).toEqual(lenet.metadata);
  });

  it('lays out the graph as documented: NHWC → NCHW once, back to NHWC before the dense layers', () => {
    expect(onnx.graph.node.map((n) => n.op_type)).toEqual([
      'Reshape',
      'Transpose',
      'Conv',
      'Relu',
      'MaxPool',
      'Conv',
      'Relu',
      'MaxPool',
      'Transpose',
      'Flatten',
      'Gemm',
      'Relu',
      'Gemm',
      'Relu',
      'Gemm',
      'Softmax',
    ]);
    const conv = onnx.graph.node[2]!;
    const ints = (name: string) => conv.attribute.find((a) => a.name === name)?.ints;
    expect(ints('pads')).toEqual([2, 2, 2, 2]);
    expect(ints('kernel_shape')).toEqual([5, 5]);
    expect(onnx.graph.node.at(-1)!.output).toEqual(['output']);
  });

  it('stores conv weights (OC, C, KH, KW) and dense weights (in, out) as float32 raw data', () => {
    const init = new Map(onnx.graph.initializer.map((t) => [t.name, t]));
    const values = (name: string) => {
      const raw = init.get(name)!.raw_data;
      return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    };
    const conv = init.get('layers.2.weight')!;
    expect(conv.dims).toEqual([16, 6, 5, 5]);
    expect(conv.data_type).toBe(ONNX_FLOAT);
    // mnist-wasm's (KH, KW, C, OC) element [kh=1, kw=3, c=4, oc=9] is ONNX's [9, 4, 1, 3].
    const src = lenet.tensorView('layers.2.weight');
    expect(values('layers.2.weight')[((9 * 6 + 4) * 5 + 1) * 5 + 3]).toBe(
      src[((1 * 5 + 3) * 6 + 4) * 16 + 9],
    );
    expect(init.get('layers.5.weight')!.dims).toEqual([400, 120]);
    expect(Array.from(values('layers.5.weight'))).toEqual(
      Array.from(lenet.tensorView('layers.5.weight')),
    );
  });

  it('runs with any batch size, one sample included', async () => {
    const model = createModel('cnn-small', { seed: 5 });
    const inputs = testInputs.subarray(0, 3 * D);
    const expected = predict(model, test.images.subarray(0, 3 * D));
    const session = await ort.InferenceSession.create(encodeOnnx(model));
    for (const n of [1, 3]) {
      const x = new ort.Tensor('float32', inputs.subarray(0, n * D), [n, D]);
      const { output } = await session.run({ input: x });
      expect(output!.dims).toEqual([n, 10]);
      const got = output!.data as Float32Array;
      for (let i = 0; i < n * 10; i++) expect(Math.abs(got[i]! - expected[i]!)).toBeLessThan(1e-5);
    }
    await session.release();
  });

  const edgeCases: [string, ModelSpec, string[]][] = [
    ['dropout only: an Identity', { inputSize: 784, layers: [{ type: 'dropout', rate: 0.5 }] }, ['Identity']], // prettier-ignore
    [
      'a pooled map as the output (one channel)',
      { inputShape: [28, 28, 1], layers: [{ type: 'avgPool2d', poolSize: 4 }] },
      ['Reshape', 'Transpose', 'AveragePool', 'Transpose', 'Flatten'],
    ],
    [
      'a conv on a flat input (a 1×1 map) and a linear conv map output',
      {
        inputSize: 784,
        layers: [
          { type: 'conv2d', filters: 12, kernelSize: 1, activation: 'elu' },
          { type: 'flatten' },
          { type: 'dense', units: 36, activation: 'relu' },
          { type: 'dropout', rate: 0.1 },
          { type: 'conv2d', filters: 5, kernelSize: 1 },
        ],
      },
      ['Reshape', 'Conv', 'Elu', 'Flatten', 'Gemm', 'Relu', 'Reshape', 'Conv', 'Flatten'],
    ],
  ];
  it.each(edgeCases)('exports %s', async (_name, spec, ops) => {
    const model = createModel(spec, { seed: 2 });
    const bytes = encodeOnnx(model);
    expect(decodeOnnx(bytes).graph.node.map((n) => n.op_type)).toEqual(ops);
    const expected = predict(model, test.images.subarray(0, 100 * D));
    const actual = await runOnnx(bytes, testInputs.subarray(0, 100 * D));
    let maxDiff = 0;
    for (let i = 0; i < expected.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs(expected[i]! - actual[i]!));
    expect(actual.length).toBe(expected.length);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
  });

  it('takes the floats predict stages from uint8 pixels', () => {
    const model = createModel('mlp-40', { seed: 1 });
    const images = test.images.subarray(0, 50 * D);
    expect(Array.from(predict(model, testInputs.subarray(0, 50 * D)))).toEqual(
      Array.from(predict(model, images)),
    );
  });

  it('refuses non-finite weights, naming the tensor and index', () => {
    const model = createModel('mlp-40', { seed: 1 });
    model.tensorView('layers.1.weight')[17] = NaN;
    expect(() => encodeOnnx(model)).toThrow(OnnxExportError);
    expect(() => encodeOnnx(model)).toThrow(/layers\.1\.weight holds NaN at index 17/);
  });

  it('refuses a layer type it does not know', () => {
    const model = createModel('mlp-40', { seed: 1 });
    const layers = model.layers.map((l, i) => (i === 1 ? { ...l, type: 'lstm' } : l));
    const forged = Object.create(model, { layers: { value: layers } }) as Model;
    expect(() => encodeOnnx(forged)).toThrow(
      /layers\[1\] \(lstm\) is not a layer type the ONNX exporter knows; expected dense/,
    );
  });
});

describe('mnist-wasm export (exportCommand)', () => {
  const model = createModel('mlp-40', { seed: 9 });
  const modelPath = join(dir, 'mlp-40.safetensors');
  saveModel(model, modelPath);
  let stdout = '';
  const capture = () => {
    stdout = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
  };
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('writes the ONNX file and prints a one-line summary', async () => {
    const out = join(dir, 'mlp-40.onnx');
    capture();
    await exportCommand({ model: modelPath, onnx: out });
    vi.restoreAllMocks();
    const bytes = readFileSync(out);
    expect(Buffer.compare(bytes, Buffer.from(encodeOnnx(model)))).toBe(0);
    expect(stdout).toBe(
      `wrote ${out}: mlp-40, ${bytes.length.toLocaleString('en-US')} bytes, ONNX opset 13 (IR 7), ` +
        `input "input" float32 [batch, 784] (pixels / 255), output "output" float32 [batch, 10] ` +
        `(probabilities)\n`,
    );
    const probabilities = await runOnnx(bytes, testInputs.subarray(0, 10 * D));
    const expected = predict(model, test.images.subarray(0, 10 * D));
    for (let i = 0; i < 100; i++)
      expect(Math.abs(probabilities[i]! - expected[i]!)).toBeLessThan(1e-5);
  });

  it('--json prints one JSON object', async () => {
    const out = join(dir, 'mlp-40-json.onnx');
    capture();
    await exportCommand({ model: modelPath, onnx: out, json: true });
    vi.restoreAllMocks();
    expect(JSON.parse(stdout)).toEqual({
      onnx: out,
      model: 'mlp-40',
      bytes: readFileSync(out).length,
      opset: 13,
      irVersion: 7,
      input: { name: 'input', type: 'float32', shape: ['batch', 784] },
      output: { name: 'output', type: 'float32', shape: ['batch', 10], probabilities: true },
    });
  });

  it('registers `export` with --model, --onnx and --json', async () => {
    const program = new Command().exitOverride();
    registerExportCommand(program);
    const out = join(dir, 'via-program.onnx');
    capture();
    await program.parseAsync(['export', '--model', modelPath, '--onnx', out, '--json'], {
      from: 'user',
    });
    vi.restoreAllMocks();
    expect(JSON.parse(stdout).bytes).toBe(readFileSync(out).length);
    const missing = new Command().exitOverride().configureOutput({ writeErr: () => {} });
    registerExportCommand(missing);
    await expect(
      missing.parseAsync(['export', '--model', modelPath], { from: 'user' }),
    ).rejects.toThrow(/required option '--onnx <file>' not specified/);
  });

  it('an unwritable --onnx fails with a clear message and writes nothing', async () => {
    const target = join(dir, 'errors');
    mkdirSync(target);
    const missing = join(target, 'no-such-dir', 'm.onnx');
    await expect(exportCommand({ model: modelPath, onnx: missing })).rejects.toThrow(
      `cannot write ${missing}: directory ${join(target, 'no-such-dir')} does not exist`,
    );
    await expect(exportCommand({ model: modelPath, onnx: target })).rejects.toThrow(
      `cannot write ${target}: it is a directory`,
    );
    await expect(exportCommand({ model: modelPath, onnx: modelPath })).rejects.toThrow(
      /is the model file itself/,
    );
    const noModel = join(target, 'absent.safetensors');
    await expect(exportCommand({ model: noModel, onnx: join(target, 'x.onnx') })).rejects.toThrow(
      `model file ${noModel} does not exist`,
    );
    expect(readdirSync(target)).toEqual([]);
    expect(readFileSync(modelPath).length).toBeGreaterThan(0);
  });
});
