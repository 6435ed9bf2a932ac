/**
 * Pure parser for IDX, the format of MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST). No
 * Node imports: the browser entry parses fetched bytes with it, and `idx.ts` wraps it with file
 * reading and gunzip for Node.
 *
 * Layout (big-endian): magic = 0x00 0x00 <element type> <rank>, then `rank` uint32 dimension
 * sizes, then the elements row-major. Only unsigned-byte elements (type 0x08) are read, which is
 * what every MNIST-style dataset uses: images are rank 3 (count, rows, cols), labels rank 1 (count).
 *
 * The data is returned as a view into the given bytes (no per-byte work), so the 47 MB MNIST
 * training file parses in tens of milliseconds. Every malformed input gets its own DataError naming
 * the file, what was found and what was expected; bytes that are still gzip-compressed say so.
 */
import { DataError } from './errors.js';

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

/** Parses an unsigned-byte IDX file of any rank in memory; `fileName` is for error messages. */
export function parseIdx(bytes: Uint8Array, fileName: string): IdxArray {
  return parseIdxExpecting(bytes, fileName, undefined);
}

/** Parses a rank-3 unsigned-byte IDX images file held in memory. */
export function parseIdxImages(bytes: Uint8Array, fileName: string): IdxImages {
  const { dims, data } = parseIdxExpecting(bytes, fileName, IMAGES);
  return { images: data, count: dims[0], rows: dims[1], cols: dims[2] };
}

/** Parses a rank-1 unsigned-byte IDX labels file held in memory. */
export function parseIdxLabels(bytes: Uint8Array, fileName: string): IdxLabels {
  const { dims, data } = parseIdxExpecting(bytes, fileName, LABELS);
  return { labels: data, count: dims[0] };
}

/** True when `bytes` start with the gzip magic 0x1f8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Throws a DataError unless `bytes` of a file named `*.gz` really are gzip-compressed. */
export function assertGzip(bytes: Uint8Array, fileName: string): void {
  if (isGzip(bytes)) return;
  const looksLikeIdx = bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0;
  const hint = looksLikeIdx
    ? `; it looks like an uncompressed IDX file: drop the .gz from its name`
    : '';
  throw new DataError(
    `${fileName}: the name ends in .gz but the data is not gzip-compressed ` +
      `(starts with ${hexBytes(bytes, 4)}, gzip starts with 0x1f8b)${hint}`,
  );
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
  if (isGzip(bytes)) {
    const name = baseName(fileName);
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

/** The last segment of a path or URL, split on '/' and '\' (path.basename without Node). */
function baseName(fileName: string): string {
  return fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1);
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
