/**
 * Reader for IDX files, the format of MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST).
 *
 * Layout (big-endian): magic = 0x00 0x00 <element type> <rank>, then `rank` uint32 dimension
 * sizes, then the elements row-major. Only unsigned-byte elements (type 0x08) are read, which is
 * what every MNIST-style dataset uses: images are rank 3 (count, rows, cols), labels rank 1 (count).
 *
 * The data is returned as a view into the file's bytes (no per-byte work), so the 47 MB MNIST
 * training file loads in tens of milliseconds. Every malformed input gets its own DataError naming
 * the file, what was found and what was expected.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError, fileError } from './errors.js';

/** A parsed IDX array: its dimension sizes and its elements, row-major. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** A rank-3 IDX file of images. */
export interface IdxImages {
  /** (count, rows·cols) uint8 pixels. */
  images: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** A rank-1 IDX file of labels. */
export interface IdxLabels {
  /** (count) uint8 class indices. */
  labels: Uint8Array;
  count: number;
}

interface ExpectedKind {
  what: 'images' | 'labels';
  rank: number;
}

const IMAGES: ExpectedKind = { what: 'images', rank: 3 };
const LABELS: ExpectedKind = { what: 'labels', rank: 1 };
const UNSIGNED_BYTE = 0x08;

const ELEMENT_TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/** Parses an unsigned-byte IDX file held in memory; `fileName` is used in error messages. */
export function parseIdx(bytes: Uint8Array, fileName: string): IdxArray {
  return parseIdxExpecting(bytes, fileName, undefined);
}

/** Reads a rank-3 unsigned-byte IDX images file, gunzipping it if the name ends in `.gz`. */
export function readIdxImages(path: string): IdxImages {
  const { dims, data } = parseIdxExpecting(readIdxBytes(path), path, IMAGES);
  return { images: data, count: dims[0], rows: dims[1], cols: dims[2] };
}

/** Reads a rank-1 unsigned-byte IDX labels file, gunzipping it if the name ends in `.gz`. */
export function readIdxLabels(path: string): IdxLabels {
  const { dims, data } = parseIdxExpecting(readIdxBytes(path), path, LABELS);
  return { labels: data, count: dims[0] };
}

/** The file's bytes, decompressed when its name ends in `.gz`. */
function readIdxBytes(path: string): Uint8Array {
  let raw: Uint8Array;
  try {
    raw = readFileSync(path);
  } catch (error) {
    throw fileError(path, error);
  }
  if (!path.endsWith('.gz')) return raw;

  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) {
    const looksLikeIdx = raw.length >= 4 && raw[0] === 0 && raw[1] === 0;
    const hint = looksLikeIdx
      ? `; it looks like an uncompressed IDX file: drop the .gz from its name`
      : '';
    throw new DataError(
      `${path}: the name ends in .gz but the data is not gzip-compressed ` +
        `(starts with ${hexBytes(raw, 4)}, gzip starts with 0x1f8b)${hint}`,
    );
  }
  let inflated: Uint8Array;
  try {
    inflated = gunzipSync(raw);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') {
      throw new DataError(
        `${path}: truncated gzip stream: the ${formatCount(raw.length)} compressed bytes end ` +
          `before the data does (was the download interrupted?)`,
        { cause: error },
      );
    }
    throw new DataError(`${path}: corrupt gzip data (zlib: ${(error as Error).message})`, {
      cause: error,
    });
  }
  // Small zlib outputs can be slices of Node's shared Buffer pool; copy those so a Dataset never
  // pins (or, if transferred, takes) memory it does not own.
  const ownsBuffer =
    inflated.byteOffset === 0 && inflated.byteLength === inflated.buffer.byteLength;
  return ownsBuffer ? inflated : new Uint8Array(inflated);
}

function parseIdxExpecting(
  bytes: Uint8Array,
  fileName: string,
  expected: ExpectedKind | undefined,
): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(
      `${fileName}: too short for an IDX header: ${bytes.length} bytes, ` +
        `need at least 4 for the magic number`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const elementType = bytes[2];
  const rank = bytes[3];

  if (expected !== undefined) {
    const expectedMagic = (UNSIGNED_BYTE << 8) | expected.rank;
    if (magic !== expectedMagic) {
      throw new DataError(
        `${fileName}: expected magic ${hex32(expectedMagic)} (${expected.what}, rank ` +
          `${expected.rank}), found ${hex32(magic)} (${describeMagic(bytes, fileName)})`,
      );
    }
  } else {
    if (bytes[0] !== 0 || bytes[1] !== 0) {
      throw new DataError(`${fileName}: magic ${hex32(magic)}: ${describeMagic(bytes, fileName)}`);
    }
    if (elementType !== UNSIGNED_BYTE) {
      throw new DataError(
        `${fileName}: unsupported IDX element type ${hex8(elementType)} ` +
          `(${elementTypeName(elementType)}): only unsigned bytes (0x08) are supported`,
      );
    }
    if (rank === 0) {
      throw new DataError(`${fileName}: IDX rank 0 (magic ${hex32(magic)}): expected rank ≥ 1`);
    }
  }

  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw new DataError(
      `${fileName}: too short for an IDX header: ${bytes.length} bytes, a rank-${rank} header ` +
        `needs ${headerLength} (magic + ${rank} dimension sizes)`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i));
  const shape = dims.join('×');
  const zeroDim = dims.indexOf(0);
  if (zeroDim >= 0) {
    throw new DataError(
      `${fileName}: dimension ${zeroDim + 1} of ${rank} is 0 (header says ${shape}): ` +
        `every IDX dimension must be at least 1`,
    );
  }

  const itemBytes = dims.slice(1).reduce((product, size) => product * size, 1);
  const declaredBytes = dims[0] * itemBytes;
  const presentBytes = bytes.length - headerLength;
  const items = expected?.what ?? 'items';
  if (presentBytes < declaredBytes) {
    const completeItems = Math.floor(presentBytes / itemBytes);
    throw new DataError(
      `${fileName}: truncated: the header declares ${shape} = ${formatCount(declaredBytes)} data ` +
        `bytes but only ${formatCount(presentBytes)} are present ` +
        `(${formatCount(completeItems)} of ${formatCount(dims[0])} ${items} complete)`,
    );
  }
  if (presentBytes > declaredBytes) {
    throw new DataError(
      `${fileName}: ${formatCount(presentBytes - declaredBytes)} bytes of trailing data: the ` +
        `header declares ${shape} = ${formatCount(declaredBytes)} data bytes but the file is ` +
        `longer (${formatCount(presentBytes)} after the header)`,
    );
  }
  // A plain Uint8Array view, not a Buffer: Dataset consumers should not see Buffer semantics.
  return {
    dims,
    data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerLength, declaredBytes),
  };
}

/** What an unexpected magic number says about a file, with a hint for the common mix-ups. */
function describeMagic(bytes: Uint8Array, fileName: string): string {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const name = basename(fileName);
    return name.endsWith('.gz')
      ? 'the data is still gzip-compressed after gunzip: was it compressed twice?'
      : `the file is gzip-compressed: name it ${name}.gz or gunzip it`;
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    return 'not an IDX file: an IDX magic starts with two zero bytes';
  }
  const elementType = bytes[2];
  const rank = bytes[3];
  if (elementType === UNSIGNED_BYTE && rank === IMAGES.rank) {
    return 'images, rank 3: an images file where a labels file was expected';
  }
  if (elementType === UNSIGNED_BYTE && rank === LABELS.rank) {
    return 'labels, rank 1: a labels file where an images file was expected';
  }
  const support = elementType === UNSIGNED_BYTE ? '' : '; only unsigned bytes (0x08) are supported';
  return `${elementTypeName(elementType)}, rank ${rank}${support}`;
}

function elementTypeName(elementType: number): string {
  return ELEMENT_TYPE_NAMES[elementType] ?? `unknown element type ${hex8(elementType)}`;
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

function hex8(value: number): string {
  return `0x${value.toString(16).padStart(2, '0')}`;
}

function hexBytes(bytes: Uint8Array, count: number): string {
  if (bytes.length === 0) return 'nothing: the file is empty';
  const shown = Array.from(bytes.subarray(0, count), (b) => b.toString(16).padStart(2, '0'));
  return `0x${shown.join('')}`;
}

function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}
