/**
 * Node-side IDX file reading: reads a file (gunzipping it when its name ends in `.gz`) and hands
 * the bytes to the pure parser in `idx-format.ts`, which is re-exported here so Node code keeps one
 * import. Also home of `fileError`, the translation of node:fs failures into DataErrors, kept out
 * of `errors.ts` so that the browser can import DataError without pulling in node:fs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError } from './errors.js';
import { assertGzip, parseIdxImages, parseIdxLabels } from './idx-format.js';
import type { IdxImages, IdxLabels } from './idx-format.js';

export { parseIdx, parseIdxImages, parseIdxLabels } from './idx-format.js';
export type { IdxArray, IdxImages, IdxLabels } from './idx-format.js';

/** Reads a rank-3 unsigned-byte IDX images file, gunzipping it if the name ends in `.gz`. */
export function readIdxImages(path: string): IdxImages {
  return parseIdxImages(readIdxBytes(path), path);
}

/** Reads a rank-1 unsigned-byte IDX labels file, gunzipping it if the name ends in `.gz`. */
export function readIdxLabels(path: string): IdxLabels {
  return parseIdxLabels(readIdxBytes(path), path);
}

/** Translates a node:fs failure on `path` into a DataError that says what went wrong. */
export function fileError(path: string, error: unknown): DataError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT': {
      const sibling = path.endsWith('.gz') ? path.slice(0, -3) : `${path}.gz`;
      const hint = existsSync(sibling) ? ` (but ${sibling} exists)` : '';
      return new DataError(`${path}: file not found${hint}`, { cause: error });
    }
    case 'EISDIR':
      return new DataError(`${path}: is a folder, expected a file`, { cause: error });
    case 'EACCES':
    case 'EPERM':
      return new DataError(`${path}: permission denied`, { cause: error });
    default:
      return new DataError(`${path}: cannot read (${(error as Error).message})`, { cause: error });
  }
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

  assertGzip(raw, path);
  let inflated: Uint8Array;
  try {
    inflated = gunzipSync(raw);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') {
      throw new DataError(
        `${path}: truncated gzip stream: the ${raw.length.toLocaleString('en-US')} compressed ` +
          `bytes end before the data does (was the download interrupted?)`,
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
