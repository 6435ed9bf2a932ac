/**
 * IDX reader: round trips of small synthetic files (plain and gzipped) and one test per malformed
 * input, each asserting the distinctive part of its own message. Fixtures are written to a fresh
 * temp folder.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../src/data/errors.js';
import { parseIdx, readIdxImages, readIdxLabels } from '../src/data/idx.js';

const fixtureDir = mkdtempSync(join(tmpdir(), 'mnist-wasm-idx-'));
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

/** An IDX file: magic 0x0000<type><rank>, big-endian dims, then `data`. */
function encodeIdx(dims: number[], data: Uint8Array, elementType = 0x08): Uint8Array {
  const header = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  header.setUint32(0, (elementType << 8) | dims.length);
  dims.forEach((size, i) => header.setUint32(4 + 4 * i, size));
  const file = new Uint8Array(header.byteLength + data.length);
  file.set(new Uint8Array(header.buffer));
  file.set(data, header.byteLength);
  return file;
}

const COUNT = 7;
const ROWS = 4;
const COLS = 3;
// (COUNT, ROWS·COLS) pixels with a distinct value per position; labels cycle through 0..9.
const pixels = Uint8Array.from({ length: COUNT * ROWS * COLS }, (_, i) => (i * 37) % 256);
const labels = Uint8Array.from({ length: COUNT }, (_, i) => i % 10);
const imagesFile = encodeIdx([COUNT, ROWS, COLS], pixels);
const labelsFile = encodeIdx([COUNT], labels);

function writeFixture(name: string, bytes: Uint8Array): string {
  const path = join(fixtureDir, name);
  writeFileSync(path, bytes);
  return path;
}

/** The DataError `read` throws; fails the test if it throws anything else or nothing. */
function dataErrorOf(read: () => unknown): DataError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(DataError);
    expect((error as DataError).name).toBe('DataError');
    return error as DataError;
  }
  throw new Error('expected a DataError, nothing was thrown');
}

describe('IDX round trip', () => {
  for (const gzipped of [false, true]) {
    const suffix = gzipped ? '.gz' : '';
    const encode = (bytes: Uint8Array) => (gzipped ? gzipSync(bytes) : bytes);

    it(`reads images and labels ${gzipped ? 'gzipped' : 'plain'}`, () => {
      const images = readIdxImages(
        writeFixture(`rt-images-idx3-ubyte${suffix}`, encode(imagesFile)),
      );
      const read = readIdxLabels(writeFixture(`rt-labels-idx1-ubyte${suffix}`, encode(labelsFile)));
      expect([images.count, images.rows, images.cols]).toEqual([COUNT, ROWS, COLS]);
      expect(images.images).toEqual(pixels);
      expect(images.images.constructor).toBe(Uint8Array);
      expect(read.count).toBe(COUNT);
      expect(read.labels).toEqual(labels);
    });
  }

  it('parses any rank of unsigned bytes in memory', () => {
    const matrix = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    const parsed = parseIdx(encodeIdx([2, 3], matrix), 'matrix');
    expect(parsed.dims).toEqual([2, 3]);
    expect(parsed.data).toEqual(matrix);
  });
});

describe('IDX errors', () => {
  it('missing file', () => {
    const path = join(fixtureDir, 'absent-images-idx3-ubyte');
    expect(dataErrorOf(() => readIdxImages(path)).message).toBe(`${path}: file not found`);
  });

  it('missing file whose gzipped sibling exists', () => {
    const gzPath = writeFixture('sibling-images-idx3-ubyte.gz', gzipSync(imagesFile));
    const message = dataErrorOf(() => readIdxImages(gzPath.slice(0, -3))).message;
    expect(message).toContain(`file not found (but ${gzPath} exists)`);
  });

  it('a folder where a file was expected', () => {
    const path = join(fixtureDir, 'a-folder');
    mkdirSync(path);
    expect(dataErrorOf(() => readIdxLabels(path)).message).toContain('is a folder');
  });

  it('too short for the magic number', () => {
    const path = writeFixture('short-images', Uint8Array.from([0, 0]));
    expect(dataErrorOf(() => readIdxImages(path)).message).toBe(
      `${path}: too short for an IDX header: 2 bytes, need at least 4 for the magic number`,
    );
  });

  it('too short for the dimension sizes', () => {
    const path = writeFixture('short-dims', imagesFile.subarray(0, 10));
    expect(dataErrorOf(() => readIdxImages(path)).message).toContain(
      'too short for an IDX header: 10 bytes, a rank-3 header needs 16',
    );
  });

  it('labels file given where images are expected', () => {
    const path = writeFixture('train-labels-idx1-ubyte', labelsFile);
    expect(dataErrorOf(() => readIdxImages(path)).message).toBe(
      `${path}: expected magic 0x00000803 (images, rank 3), found 0x00000801 ` +
        `(labels, rank 1: a labels file where an images file was expected)`,
    );
  });

  it('images file given where labels are expected', () => {
    const path = writeFixture('train-images-idx3-ubyte', imagesFile);
    expect(dataErrorOf(() => readIdxLabels(path)).message).toContain(
      'expected magic 0x00000801 (labels, rank 1), found 0x00000803 (images, rank 3: an images file',
    );
  });

  it('gzip data in a file not named .gz', () => {
    const path = writeFixture('gz-images-idx3-ubyte', gzipSync(imagesFile));
    expect(dataErrorOf(() => readIdxImages(path)).message).toBe(
      `${path}: expected magic 0x00000803 (images, rank 3), found 0x1f8b0800 ` +
        `(the file is gzip-compressed: name it gz-images-idx3-ubyte.gz or gunzip it)`,
    );
  });

  it('gzip data in a bare in-memory parse', () => {
    const message = dataErrorOf(() => parseIdx(gzipSync(imagesFile), 'blob')).message;
    expect(message).toContain('blob: magic 0x1f8b0800: the file is gzip-compressed');
  });

  it('a .gz file that is not gzip', () => {
    const path = writeFixture('plain-images-idx3-ubyte.gz', imagesFile);
    const message = dataErrorOf(() => readIdxImages(path)).message;
    expect(message).toContain('the name ends in .gz but the data is not gzip-compressed');
    expect(message).toContain('drop the .gz from its name');
  });

  it('a truncated gzip stream', () => {
    const compressed = gzipSync(imagesFile);
    const path = writeFixture('cut-images-idx3-ubyte.gz', compressed.subarray(0, 30));
    expect(dataErrorOf(() => readIdxImages(path)).message).toContain(
      'truncated gzip stream: the 30 compressed bytes end before the data does',
    );
  });

  it('corrupt gzip data', () => {
    const compressed = Uint8Array.from(gzipSync(imagesFile));
    compressed[compressed.length - 5] ^= 0xff; // inside the CRC-32/ISIZE trailer
    const path = writeFixture('corrupt-images-idx3-ubyte.gz', compressed);
    expect(dataErrorOf(() => readIdxImages(path)).message).toContain('corrupt gzip data (zlib:');
  });

  it('truncated body', () => {
    const cut = imagesFile.length - 20;
    const path = writeFixture('truncated-images', imagesFile.subarray(0, cut));
    expect(dataErrorOf(() => readIdxImages(path)).message).toBe(
      `${path}: truncated: the header declares 7×4×3 = 84 data bytes but only 64 are present ` +
        `(5 of 7 images complete)`,
    );
  });

  it('trailing data', () => {
    const longer = new Uint8Array(labelsFile.length + 3);
    longer.set(labelsFile);
    const path = writeFixture('long-labels', longer);
    expect(dataErrorOf(() => readIdxLabels(path)).message).toBe(
      `${path}: 3 bytes of trailing data: the header declares 7 = 7 data bytes but the file is ` +
        `longer (10 after the header)`,
    );
  });

  it('a zero dimension', () => {
    const path = writeFixture('empty-images', encodeIdx([5, 0, 3], new Uint8Array(0)));
    expect(dataErrorOf(() => readIdxImages(path)).message).toContain(
      'dimension 2 of 3 is 0 (header says 5×0×3)',
    );
  });

  it('an element type other than unsigned byte', () => {
    const floats = encodeIdx([2, 2, 2], new Uint8Array(32), 0x0d);
    expect(dataErrorOf(() => parseIdx(floats, 'floats')).message).toBe(
      'floats: unsupported IDX element type 0x0d (float32): only unsigned bytes (0x08) are supported',
    );
    const path = writeFixture('float-images', floats);
    expect(dataErrorOf(() => readIdxImages(path)).message).toContain(
      'found 0x00000d03 (float32, rank 3; only unsigned bytes (0x08) are supported)',
    );
  });

  it('not an IDX file at all', () => {
    const path = writeFixture('picture-images', new TextEncoder().encode('\x89PNG\r\n\x1a\n....'));
    expect(dataErrorOf(() => readIdxImages(path)).message).toContain(
      'not an IDX file: an IDX magic starts with two zero bytes',
    );
  });
});
