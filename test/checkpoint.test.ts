/**
 * Checkpoints through the API: a run stopped at any batch boundary (or after an epoch), written to
 * bytes, read back into a fresh model and resumed ends with weights bit-identical to a run that was
 * never stopped — with Adam, SGD + Nesterov, dropout and gradient accumulation. Resuming with other
 * data, settings or architecture is refused by name; corrupt checkpoint files are refused.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { subset } from '../src/data/dataset.js';
import { loadMnistQuick } from '../src/data/mnist.js';
import { createEngine } from '../src/engine/node.js';
import { createModel } from '../src/nn/create.js';
import type { Model } from '../src/nn/model.js';
import { sequential, type ModelSpec } from '../src/nn/spec.js';
import { decodeCheckpoint, encodeCheckpoint } from '../src/io/checkpoint.js';
import { encodeModel } from '../src/io/safetensors.js';
import { CheckpointError, type TrainingCheckpoint } from '../src/train/checkpoint.js';
import { fit, type EpochRecord, type FitOptions } from '../src/train/fit.js';

const hash = (m: Model): string => createHash('sha256').update(m.parameters()).digest('hex');
const quick = loadMnistQuick();
const data = { train: subset(quick.train, 0, 1200), test: subset(quick.test, 0, 300) };

/** A small net with every kind of state a checkpoint must carry: dropout's stream included. */
const withDropout: ModelSpec = sequential(784)
  .dense(64, 'relu')
  .dropout(0.3)
  .dense(32, 'tanh')
  .dense(10, 'softmax')
  .spec('dropout-net');

/** History without wall-clock fields, which legitimately differ between runs. */
const timeless = (h: EpochRecord[]) =>
  h.map(({ seconds: _s, samplesPerSecond: _r, ...rest }) => rest);

interface Case {
  name: string;
  spec: ModelSpec | string;
  options: Omit<FitOptions, 'onCheckpoint' | 'resume' | 'signal'>;
  /** Where to stop: after this batch of this epoch (1-based epoch, 0-based batch). */
  stopAt: { epoch: number; batch: number };
}

const cases: Case[] = [
  {
    name: 'Adam, dropout, batch 32, stopped mid-epoch 2',
    spec: withDropout,
    options: { epochs: 3, batchSize: 32, optimizer: { type: 'adam', learningRate: 2e-3 } },
    stopAt: { epoch: 2, batch: 17 },
  },
  {
    name: 'SGD + Nesterov, batch 7 (uneven last batch), stopped in epoch 1',
    spec: 'mlp-40',
    options: {
      epochs: 2,
      batchSize: 7,
      optimizer: { type: 'sgd', learningRate: 0.05, momentum: 0.9, nesterov: true },
    },
    stopAt: { epoch: 1, batch: 100 },
  },
  {
    name: 'RMSprop, batch 500 accumulated in chunks of 128, stopped in epoch 3',
    spec: 'mlp-128',
    options: {
      epochs: 3,
      batchSize: 500,
      chunkSize: 128,
      testEvery: 2,
      optimizer: { type: 'rmsprop', learningRate: 1e-3, weightDecay: 1e-4 },
    },
    stopAt: { epoch: 3, batch: 1 },
  },
];

/** Runs until `stopAt`, returning the checkpoint fit wrote when the signal stopped it. */
function interrupted(c: Case): {
  model: Model;
  stop: TrainingCheckpoint;
  epochEnds: TrainingCheckpoint[];
} {
  const model = createModel(c.spec, { seed: 11 });
  const controller = new AbortController();
  const epochEnds: TrainingCheckpoint[] = [];
  let stop: TrainingCheckpoint | undefined;
  const result = fit(model, data, {
    ...c.options,
    signal: controller.signal,
    onBatchEnd: (e) => {
      if (e.epoch === c.stopAt.epoch && e.batch === c.stopAt.batch) controller.abort();
    },
    onCheckpoint: (cp) => (cp.batch === 0 ? epochEnds.push(cp) : (stop = cp)),
  });
  expect(result.stopped).toBe(true);
  expect(stop).toBeDefined();
  return { model, stop: stop!, epochEnds };
}

/** Write the checkpoint to bytes, read it back, resume in a fresh model (other init seed). */
function resumed(c: Case, checkpoint: TrainingCheckpoint, model: Model): Model {
  const bytes = encodeCheckpoint(model.spec, model.metadata, checkpoint, { note: 'test' });
  const file = decodeCheckpoint(bytes, 'test checkpoint');
  expect(file.run).toEqual({ note: 'test' });
  const fresh = createModel(file.spec, { seed: 99 });
  fit(fresh, data, { ...c.options, seed: 11, resume: file.checkpoint });
  return fresh;
}

describe('resume is bit-identical to an uninterrupted run', () => {
  for (const c of cases) {
    it(c.name, () => {
      const whole = createModel(c.spec, { seed: 11 });
      const uninterrupted = fit(whole, data, c.options);

      const { model, stop, epochEnds } = interrupted(c);
      expect(stop.epoch).toBe(c.stopAt.epoch);
      expect(stop.batch).toBe(c.stopAt.batch + 1);
      expect(epochEnds.map((e) => e.epoch)).toEqual(
        Array.from({ length: c.stopAt.epoch - 1 }, (_, i) => i + 2),
      );
      expect(hash(model)).not.toBe(hash(whole));

      // From the mid-epoch stop…
      const fromStop = createModel(c.spec, { seed: 99 });
      const history: EpochRecord[] = [];
      const file = decodeCheckpoint(
        encodeCheckpoint(model.spec, model.metadata, stop),
        'mid-epoch checkpoint',
      );
      const r = fit(fromStop, data, {
        ...c.options,
        seed: 11,
        resume: file.checkpoint,
        onEpochEnd: (rec) => history.push(rec),
      });
      expect(hash(fromStop)).toBe(hash(whole));
      expect(timeless(r.history)).toEqual(timeless(uninterrupted.history));
      expect(fromStop.metadata).toEqual(whole.metadata);
      expect(Buffer.from(encodeModel(fromStop)).equals(Buffer.from(encodeModel(whole)))).toBe(true);

      // …and from every epoch-end checkpoint before it.
      for (const cp of epochEnds) expect(hash(resumed(c, cp, model))).toBe(hash(whole));
    });
  }

  it('a checkpoint at the end of the last epoch continues when more epochs are asked for', () => {
    const opts = {
      epochs: 3,
      batchSize: 64,
      optimizer: { type: 'adam' as const, learningRate: 1e-3 },
    };
    const whole = createModel('mlp-40', { seed: 2 });
    fit(whole, data, opts);
    const first = createModel('mlp-40', { seed: 2 });
    let last: TrainingCheckpoint | undefined;
    fit(first, data, { ...opts, epochs: 2, onCheckpoint: (cp) => (last = cp) });
    expect(last!.epoch).toBe(3);
    const again = createModel('mlp-40', { seed: 2 });
    expect(() => fit(again, data, { ...opts, epochs: 2, resume: last })).toThrow(
      /already at the end of epoch 2; ask for more epochs/,
    );
    const more = fit(again, data, { ...opts, resume: last });
    expect(more.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(hash(again)).toBe(hash(whole));
  });
});

describe('resuming something else is refused, naming the difference', () => {
  const opts = {
    epochs: 2,
    batchSize: 32,
    optimizer: { type: 'adam' as const, learningRate: 1e-3 },
  };
  let checkpoint: TrainingCheckpoint | undefined;
  fit(createModel('mlp-40', { seed: 1 }), data, {
    ...opts,
    epochs: 1,
    onCheckpoint: (cp) => (checkpoint = cp),
  });
  const attempt =
    (spec: string, changes: Partial<FitOptions>, d = data) =>
    () =>
      fit(createModel(spec, { seed: 1 }), d, { ...opts, ...changes, resume: checkpoint });

  it('other settings', () => {
    expect(attempt('mlp-40', { batchSize: 16 })).toThrow(
      new CheckpointError('cannot resume: the batch size was 32 in the checkpoint, now 16'),
    );
    expect(attempt('mlp-40', { optimizer: { type: 'adam', learningRate: 0.01 } })).toThrow(
      /optimizer learningRate was 0.001 in the checkpoint, now 0.01/,
    );
    expect(attempt('mlp-40', { optimizer: { type: 'sgd', learningRate: 1e-3 } })).toThrow(
      /optimizer type was "adam" in the checkpoint, now "sgd"/,
    );
    expect(attempt('mlp-40', { seed: 5 })).toThrow(/the seed was 1 in the checkpoint, now 5/);
    expect(attempt('mlp-40', { shuffle: false })).toThrow(
      /shuffling was true in the checkpoint, now false/,
    );
  });

  it('another kernel build (FMA rounds differently)', () => {
    const baseline = createModel('mlp-40', { seed: 1, engine: createEngine({ simd: 'baseline' }) });
    const relaxed = createModel('mlp-40', { seed: 1, engine: createEngine({ simd: 'relaxed' }) });
    let fromRelaxed: TrainingCheckpoint | undefined;
    fit(relaxed, data, { ...opts, epochs: 1, onCheckpoint: (cp) => (fromRelaxed = cp) });
    expect(() => fit(baseline, data, { ...opts, resume: fromRelaxed })).toThrow(
      'cannot resume: the kernel build was "relaxed" in the checkpoint, now "baseline"',
    );
  });

  it('other data or another architecture', () => {
    expect(attempt('mlp-40', {}, { ...data, train: subset(quick.train, 1, 1200) })).toThrow(
      /trained on .*1200 images, checksum [0-9a-f]{8}\), this run has .*checksum [0-9a-f]{8}\)/,
    );
    expect(attempt('mlp-128', {})).toThrow(/a different architecture/);
  });
});

describe('checkpoint files', () => {
  let checkpoint: TrainingCheckpoint | undefined;
  const model = createModel('mlp-40', { seed: 1 });
  fit(model, data, {
    epochs: 1,
    batchSize: 32,
    optimizer: { type: 'adam', learningRate: 1e-3 },
    onCheckpoint: (cp) => (checkpoint = cp),
  });
  const bytes = encodeCheckpoint(model.spec, model.metadata, checkpoint!);

  it('round-trip every field, NaN losses of all-skipped epochs included', () => {
    const cp = { ...checkpoint!, history: [{ ...checkpoint!.history[0]!, trainLoss: NaN }] };
    const back = decodeCheckpoint(encodeCheckpoint(model.spec, model.metadata, cp), 'x');
    expect(back.checkpoint).toEqual(cp);
    expect(back.spec).toEqual(model.spec);
    expect(back.metadata).toEqual(model.metadata);
  });

  it('truncated, corrupt or foreign files are refused with a specific message', () => {
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 5), 'ck')).toThrow(
      /ck: .*truncated/,
    );
    expect(() => decodeCheckpoint(encodeModel(model), 'model.safetensors')).toThrow(
      /model.safetensors: not an mnist-wasm checkpoint \(metadata "format" is "mnist-wasm"/,
    );
    const text = Buffer.from(bytes).toString('latin1');
    const corrupt = (from: string, to: string) => {
      expect(text.includes(from)).toBe(true);
      return new Uint8Array(Buffer.from(text.replace(from, to), 'latin1'));
    };
    expect(() => decodeCheckpoint(corrupt('\\"epoch\\":2', '\\"epoch\\":0'), 'ck')).toThrow(
      /ck: training state is incomplete/,
    );
    expect(() => decodeCheckpoint(corrupt('\\"dropoutRng\\"', '\\"dropoutRnX\\"'), 'ck')).toThrow(
      /ck: training state is corrupt: RNG state must be four 32-bit unsigned integers, got undefined/,
    );
  });
});
