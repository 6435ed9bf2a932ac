/**
 * The safetensors container, independent of what the tensors mean:
 *
 *   u64 little-endian N | N bytes of JSON header (space-padded to a multiple of 8) | tensor data
 *
 * Header: `{ name: { dtype, shape, data_offsets: [begin, end] }, …, "__metadata__": { string: string } }`
 * with offsets relative to the data section. `readSafetensors` checks every bound before touching
 * the data, so no header can make it read outside the file; what the tensors must be is the caller's
 * business (model files, checkpoints, other frameworks' weights). No Node built-ins.
 */

/** Refuse absurd headers before parsing them (the safetensors reference limit is 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** Bytes per element of the dtypes this reader understands. */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** The tensor's raw little-endian bytes (a view into the file). */
  bytes: Uint8Array;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  /** In the header's order. */
  tensors: Map<string, SafetensorsTensor>;
}

if (new Uint8Array(new Float32Array([1]).buffer)[3] !== 0x3f) {
  throw new Error('mnist-wasm reads and writes safetensors files on little-endian platforms only');
}

/** Serialise F32 tensors and string metadata. */
export function encodeSafetensors(
  tensors: readonly { name: string; shape: readonly number[]; data: Float32Array }[],
  metadata: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = {
      dtype: 'F32',
      shape: t.shape,
      data_offsets: [offset, offset + t.data.byteLength],
    };
    offset += t.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/** The header's JSON and string metadata, checked against the file's size. */
function parseHeader(
  bytes: Uint8Array,
  source: string,
): { header: object; headerLength: number; metadata: Record<string, string> } {
  const fail = (what: string): never => {
    throw new SafetensorsError(`${source}: ${what}`);
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes is too short for a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) {
    fail(
      `header length field says ${headerLength} bytes but the file has ${bytes.length} bytes ` +
        `(not a safetensors file, or truncated)`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)),
    );
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message}); the file is corrupt`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    return fail('header is not a JSON object');
  const metadata: Record<string, string> = {};
  const meta = (header as Record<string, unknown>).__metadata__;
  if (meta !== undefined) {
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta))
      fail('"__metadata__" is not a JSON object');
    for (const [k, v] of Object.entries(meta as object)) {
      if (typeof v !== 'string') fail(`metadata "${k}" is not a string`);
      metadata[k] = v as string;
    }
  }
  return { header, headerLength, metadata };
}

/** Only the `__metadata__` of a safetensors file (the tensors' byte ranges are not checked). */
export function readSafetensorsMetadata(bytes: Uint8Array, source: string): Record<string, string> {
  return parseHeader(bytes, source).metadata;
}

/**
 * Parse the container and check every entry's bounds; `source` names the file in messages.
 * `checkEntry` sees each entry's name, dtype and shape before its byte range is checked, so a
 * caller that knows what the file must hold can name the real problem (a wrong dtype or an
 * unexpected tensor) rather than its consequence (a byte range that does not add up).
 */
export function readSafetensors(
  bytes: Uint8Array,
  source: string,
  checkEntry?: (name: string, dtype: string, shape: number[]) => void,
): SafetensorsFile {
  const fail = (what: string): never => {
    throw new SafetensorsError(`${source}: ${what}`);
  };
  const { header, headerLength, metadata } = parseHeader(bytes, source);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, SafetensorsTensor>();
  let covered = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      fail(
        `tensor "${name}" has no {dtype, shape, data_offsets} entry (found ${JSON.stringify(entry)})`,
      );
    }
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    const size = typeof dtype === 'string' ? DTYPE_BYTES[dtype] : undefined;
    if (size === undefined) fail(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)
    ) {
      fail(`tensor "${name}" has shape ${JSON.stringify(shape)}, expected a list of sizes`);
    }
    checkEntry?.(name, dtype as string, shape as number[]);
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const [begin, end] = Array.isArray(offsets) ? (offsets as unknown[]) : [NaN, NaN];
    if (
      !Number.isSafeInteger(begin) ||
      !Number.isSafeInteger(end) ||
      (begin as number) < 0 ||
      (end as number) - (begin as number) !== count * size!
    ) {
      fail(
        `tensor "${name}" has data_offsets ${JSON.stringify(offsets)}, ` +
          `expected a range of ${count * size!} bytes for ${dtype} [${String(shape)}]`,
      );
    }
    if ((end as number) > dataLength) {
      fail(
        `tensor "${name}" ends at byte ${end} of the data section, which has only ` +
          `${dataLength} bytes (file truncated)`,
      );
    }
    tensors.set(name, {
      name,
      dtype: dtype as string,
      shape: shape as number[],
      bytes: bytes.subarray(dataStart + (begin as number), dataStart + (end as number)),
    });
    covered += count * size!;
  }
  if (covered !== dataLength) {
    fail(
      `data section has ${dataLength} bytes but the tensors cover ${covered} (corrupt or padded file)`,
    );
  }
  // Equal totals can still hide an overlap balanced by a gap: the ranges must tile the section.
  const ranges = [...tensors.values()]
    .map(
      (t) => [t.bytes.byteOffset - bytes.byteOffset - dataStart, t.bytes.length, t.name] as const,
    )
    .sort((a, b) => a[0] - b[0]);
  let next = 0;
  for (const [begin, length, name] of ranges) {
    if (length === 0) continue;
    if (begin !== next) {
      fail(
        `tensor "${name}" starts at byte ${begin} of the data section, expected ${next} ` +
          `(tensors overlap or leave a gap: corrupt file)`,
      );
    }
    next = begin + length;
  }
  return { metadata, tensors };
}

/** An F32 tensor's values as a fresh (aligned) Float32Array. */
export function float32Values(t: SafetensorsTensor): Float32Array {
  if (t.dtype !== 'F32') throw new SafetensorsError(`tensor "${t.name}" is ${t.dtype}, not F32`);
  const values = new Float32Array(t.bytes.length / 4);
  new Uint8Array(values.buffer).set(t.bytes);
  return values;
}
