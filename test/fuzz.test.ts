/**
 * Property-based fuzzing of the two parsers that read files from elsewhere: the IDX reader and the
 * model-file (safetensors) reader. Every input — random bytes, a valid file truncated anywhere,
 * bit-flipped, with absurd dimensions or header lengths — must end either in a valid result or in
 * the parser's own typed error (DataError / ModelFileError) with a message; never another exception,
 * a hang, or a huge allocation. fast-check with fixed seeds, so a failure is reproducible;
 * RUNS cases per property (10,000 by default, FUZZ_RUNS to change).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DataError } from '../src/data/errors.js';
import { parseIdx, parseIdxImages, parseIdxLabels } from '../src/data/idx-format.js';
import { createEngine } from '../src/engine/node.js';
import { decodeModel, encodeModel, ModelFileError } from '../src/io/safetensors.js';
import { Model } from '../src/nn/model.js';
import { sequential } from '../src/nn/spec.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);

/** Run `parse`; a result or the expected error class is fine, anything else fails the property. */
function survives(parse: () => unknown, errorClass: new (...args: never[]) => Error): boolean {
  try {
    parse();
    return true;
  } catch (e) {
    if (e instanceof errorClass && (e as Error).message.length > 10) return true;
    throw new Error(`untyped failure: ${(e as Error)?.name}: ${(e as Error)?.message}`);
  }
}

/** A valid images IDX file of n r×c images. */
function idxImages(n: number, r: number, c: number): Uint8Array {
  const out = new Uint8Array(16 + n * r * c);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x00000803);
  view.setUint32(4, n);
  view.setUint32(8, r);
  view.setUint32(12, c);
  for (let i = 16; i < out.length; i++) out[i] = (i * 37) & 255;
  return out;
}

/** Apply a list of mutations (truncate, flip a bit, overwrite a u32) to a copy of `bytes`. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('flip' as const),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({
    kind: fc.constant('u32' as const),
    at: fc.nat(),
    value: fc.oneof(fc.constant(0xffffffff), fc.constant(0x80000000), fc.constant(0), fc.nat()),
  }),
  fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ maxLength: 16 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = bytes.slice();
  for (const m of mutations) {
    if (m.kind === 'truncate') b = b.slice(0, m.at % (b.length + 1));
    else if (m.kind === 'flip' && b.length > 0) b[m.at % b.length]! ^= 1 << m.bit;
    else if (m.kind === 'u32' && b.length >= 4)
      new DataView(b.buffer).setUint32(4 * (m.at % Math.floor(b.length / 4)), m.value);
    else if (m.kind === 'append') {
      const c = new Uint8Array(b.length + m.extra.length);
      c.set(b);
      c.set(m.extra, b.length);
      b = c;
    }
  }
  return b;
}

describe(`IDX parser under fuzzing (${RUNS} cases per property)`, () => {
  it('random bytes: a valid array or a DataError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) =>
        survives(() => parseIdx(bytes, 'random'), DataError),
      ),
      { numRuns: RUNS, seed: 1 },
    );
  });

  it('random headers with absurd dimensions (up to 2³²−1) never allocate or read out of bounds', () => {
    const header = fc.record({
      type: fc.constantFrom(0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff),
      rank: fc.integer({ min: 0, max: 5 }),
      dims: fc.array(
        fc.oneof(fc.constant(0xffffffff), fc.constant(0x80000000), fc.integer({ min: 0, max: 40 })),
        { minLength: 5, maxLength: 5 },
      ),
      body: fc.integer({ min: 0, max: 300 }),
    });
    fc.assert(
      fc.property(header, ({ type, rank, dims, body }) => {
        const bytes = new Uint8Array(4 + 4 * rank + body);
        const view = new DataView(bytes.buffer);
        view.setUint32(0, (type << 8) | rank);
        for (let i = 0; i < rank; i++) view.setUint32(4 + 4 * i, dims[i]!);
        return survives(() => {
          const r = parseIdx(bytes, 'header');
          // A success must describe exactly the bytes present.
          expect(r.data.length).toBe(r.dims.reduce((a, d) => a * d, 1));
          expect(r.data.length).toBe(bytes.length - 4 - 4 * r.dims.length);
        }, DataError);
      }),
      { numRuns: RUNS, seed: 2 },
    );
  });

  it('a valid images file truncated, bit-flipped, re-dimensioned or extended: images, or a DataError', () => {
    const valid = idxImages(7, 5, 3);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
        const bytes = mutate(valid, ms);
        return (
          survives(() => {
            const r = parseIdxImages(bytes, 'mutated-images');
            expect(r.images.length).toBe(r.count * r.rows * r.cols);
          }, DataError) && survives(() => parseIdxLabels(bytes, 'mutated-as-labels'), DataError)
        );
      }),
      { numRuns: RUNS, seed: 3 },
    );
  });
});

describe(`model-file parser under fuzzing (${RUNS} cases per property)`, () => {
  const spec = sequential(6).dense(4, 'relu').dropout(0.1).dense(3, 'softmax').spec('fuzz');
  const valid = encodeModel(new Model(spec, createEngine(), 1));

  it('random bytes: a ModelFileError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) =>
        survives(() => decodeModel(bytes, 'random.safetensors'), ModelFileError),
      ),
      { numRuns: RUNS, seed: 4 },
    );
  });

  it('a valid file truncated, bit-flipped, with absurd header lengths or extended: a model, or a ModelFileError', () => {
    const headerLength = fc.oneof(
      fc.constant(2n ** 64n - 1n),
      fc.constant(2n ** 53n),
      fc.bigInt({ min: 0n, max: BigInt(valid.length + 64) }),
    );
    fc.assert(
      fc.property(
        fc.array(mutation, { maxLength: 4 }),
        fc.option(headerLength, { freq: 4 }),
        (ms, length) => {
          const bytes = mutate(valid, ms);
          if (length !== null && bytes.length >= 8)
            new DataView(bytes.buffer).setBigUint64(0, length, true);
          return survives(() => {
            const decoded = decodeModel(bytes, 'mutated.safetensors');
            for (const values of decoded.tensors.values())
              for (const v of values) expect(Number.isFinite(v)).toBe(true);
          }, ModelFileError);
        },
      ),
      { numRuns: RUNS, seed: 5 },
    );
  });

  it('headers with arbitrary JSON (wrong types, huge shapes, odd offsets): a ModelFileError', () => {
    const jsonValue = fc.jsonValue({ maxDepth: 3 });
    const entry = fc.record({
      dtype: fc.oneof(fc.constant('F32'), fc.constant('F16'), jsonValue),
      shape: fc.oneof(
        fc.constant([6, 4]),
        fc.array(fc.oneof(fc.nat(), fc.constant(2 ** 31), fc.constant(-1)), { maxLength: 3 }),
        jsonValue,
      ),
      data_offsets: fc.oneof(
        fc.tuple(fc.nat(200), fc.nat(200)),
        fc.tuple(fc.constant(0), fc.constant(2 ** 40)),
        jsonValue,
      ),
    });
    const metadata = fc.record({
      format: fc.oneof(fc.constant('mnist-wasm'), fc.string()),
      version: fc.oneof(fc.constant('1'), fc.string()),
      spec: fc.oneof(
        fc.constant(JSON.stringify(spec)),
        fc.constant(
          JSON.stringify({ inputSize: 2 ** 31, layers: [{ type: 'dense', units: 2 ** 31 }] }),
        ),
        fc.string(),
        jsonValue.map((v) => JSON.stringify(v)),
      ),
      training: fc.oneof(fc.constant('{}'), fc.string()),
    });
    const header = fc.record(
      {
        __metadata__: fc.oneof(metadata, jsonValue),
        'layers.0.weight': fc.oneof(entry, jsonValue),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 128 }), (h, data) => {
        const json = new TextEncoder().encode(JSON.stringify(h));
        const bytes = new Uint8Array(8 + json.length + data.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
        bytes.set(json, 8);
        bytes.set(data, 8 + json.length);
        return survives(() => decodeModel(bytes, 'crafted.safetensors'), ModelFileError);
      }),
      { numRuns: RUNS, seed: 6 },
    );
  });
});
