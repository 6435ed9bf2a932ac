/**
 * Reads a single 28×28 digit drawn by a person (PNG or PGM) into MNIST's convention: (784) uint8,
 * row-major, white digit (255) on black (0).
 *
 * - PNG (via pngjs, any colour type and bit depth): converted to luminance with Rec. 601 weights
 *   (0.299 R + 0.587 G + 0.114 B, as PIL's "L" mode), alpha composited over white.
 * - PGM: P2 (ascii) and P5 (binary), maxval up to 65535 (two big-endian bytes per sample above
 *   255), '#' comments allowed in the header; samples are rescaled to 0..255.
 * - Inversion: a drawing is usually dark ink on light paper, the opposite of MNIST. When the mean of
 *   the 108 border pixels is above 127 the image is taken to be such a drawing and inverted.
 * - No resizing: anything but 28×28 is an error, since a silent resize would change what the
 *   network sees without telling the user.
 */
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { DataError } from './errors.js';
import { fileError } from './idx.js';

/** Side of an MNIST digit image, in pixels. */
export const DIGIT_SIDE = 28;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const BRIGHT_BORDER_THRESHOLD = 127;

/** Reads a 28×28 PNG or PGM file as (784) uint8 pixels, white digit on black. */
export function readDigitImage(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw fileError(path, error);
  }
  return decodeDigitImage(bytes, path);
}

/** Decodes a 28×28 PNG or PGM held in memory; `fileName` is used in error messages. */
export function decodeDigitImage(bytes: Uint8Array, fileName: string): Uint8Array {
  const pixels = isPng(bytes) ? decodePngLuminance(bytes, fileName) : decodePgm(bytes, fileName);
  if (borderMean(pixels, DIGIT_SIDE, DIGIT_SIDE) > BRIGHT_BORDER_THRESHOLD) {
    for (let i = 0; i < pixels.length; i++) pixels[i] = 255 - pixels[i];
  }
  return pixels;
}

/** Encodes (rows, cols) uint8 pixels as a binary PGM (P5, maxval 255). */
export function encodePgm(pixels: Uint8Array, rows: number, cols: number): Uint8Array {
  if (pixels.length !== rows * cols) {
    throw new RangeError(`encodePgm: ${pixels.length} pixels for a ${rows}×${cols} image`);
  }
  const header = new TextEncoder().encode(`P5\n${cols} ${rows}\n255\n`);
  const file = new Uint8Array(header.length + pixels.length);
  file.set(header);
  file.set(pixels, header.length);
  return file;
}

function isPng(bytes: Uint8Array): boolean {
  return PNG_SIGNATURE.every((byte, i) => bytes[i] === byte);
}

function checkSize(fileName: string, width: number, height: number): void {
  if (width !== DIGIT_SIDE || height !== DIGIT_SIDE) {
    throw new DataError(
      `${fileName}: expected a ${DIGIT_SIDE}×${DIGIT_SIDE} image, got ${width}×${height} ` +
        `(images are not resized: scale it to ${DIGIT_SIDE}×${DIGIT_SIDE} first)`,
    );
  }
}

/** (height, width) luminance of a PNG, alpha composited over white. */
function decodePngLuminance(bytes: Uint8Array, fileName: string): Uint8Array {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    throw new DataError(`${fileName}: invalid PNG (${(error as Error).message})`, {
      cause: error,
    });
  }
  checkSize(fileName, png.width, png.height);
  // pngjs normalises every colour type and bit depth to 8-bit RGBA.
  const rgba = png.data;
  const luminance = new Uint8Array(png.width * png.height);
  for (let i = 0; i < luminance.length; i++) {
    const red = rgba[4 * i];
    const green = rgba[4 * i + 1];
    const blue = rgba[4 * i + 2];
    const alpha = rgba[4 * i + 3] / 255;
    const luma = 0.299 * red + 0.587 * green + 0.114 * blue;
    luminance[i] = Math.round(luma * alpha + 255 * (1 - alpha));
  }
  return luminance;
}

/** (height, width) pixels of a P2 or P5 PGM, rescaled to 0..255. */
function decodePgm(bytes: Uint8Array, fileName: string): Uint8Array {
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0);
  if (magic !== 'P2' && magic !== 'P5') throw unknownFormat(bytes, fileName);

  const reader = new PgmReader(bytes, fileName);
  const width = reader.headerNumber('width');
  const height = reader.headerNumber('height');
  const maxval = reader.headerNumber('maxval');
  if (width < 1 || height < 1) {
    throw new DataError(`${fileName}: PGM size ${width}×${height}: width and height must be ≥ 1`);
  }
  if (maxval < 1 || maxval > 65535) {
    throw new DataError(`${fileName}: PGM maxval ${maxval}: expected 1 to 65535`);
  }
  checkSize(fileName, width, height);

  const pixelCount = width * height;
  const samples = new Uint16Array(pixelCount);
  if (magic === 'P2') {
    for (let i = 0; i < pixelCount; i++) samples[i] = reader.sample(i, pixelCount, maxval);
  } else {
    // Exactly one whitespace byte separates maxval from the raster.
    const rasterStart = reader.position + 1;
    const bytesPerSample = maxval > 255 ? 2 : 1;
    const presentBytes = Math.max(0, bytes.length - rasterStart);
    if (presentBytes < pixelCount * bytesPerSample) {
      throw new DataError(
        `${fileName}: truncated PGM: ${width}×${height} pixels at ${bytesPerSample} byte(s) ` +
          `each need ${pixelCount * bytesPerSample} bytes, found ${presentBytes}`,
      );
    }
    for (let i = 0; i < pixelCount; i++) {
      const at = rasterStart + i * bytesPerSample;
      const value = bytesPerSample === 2 ? (bytes[at] << 8) | bytes[at + 1] : bytes[at];
      if (value > maxval) {
        throw new DataError(`${fileName}: PGM pixel ${i} is ${value}, above maxval ${maxval}`);
      }
      samples[i] = value;
    }
  }

  const pixels = new Uint8Array(pixelCount);
  for (let i = 0; i < pixelCount; i++) pixels[i] = Math.round((samples[i] * 255) / maxval);
  return pixels;
}

/** Tokenizer for the ascii parts of a PGM: whitespace-separated decimals and '#' comments. */
class PgmReader {
  /** Index of the byte after the last token read. */
  position = 2;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly fileName: string,
  ) {}

  headerNumber(field: string): number {
    const value = this.nextNumber();
    if (value === undefined) {
      throw new DataError(`${this.fileName}: PGM header ends before its ${field}`);
    }
    return value;
  }

  sample(index: number, pixelCount: number, maxval: number): number {
    const value = this.nextNumber();
    if (value === undefined) {
      throw new DataError(
        `${this.fileName}: truncated PGM: found ${index} of ${pixelCount} pixel values`,
      );
    }
    if (value > maxval) {
      throw new DataError(
        `${this.fileName}: PGM pixel ${index} is ${value}, above maxval ${maxval}`,
      );
    }
    return value;
  }

  private nextNumber(): number | undefined {
    const { bytes } = this;
    let at = this.position;
    for (;;) {
      while (at < bytes.length && isWhitespace(bytes[at])) at++;
      if (bytes[at] !== 0x23 /* # */) break;
      while (at < bytes.length && bytes[at] !== 0x0a && bytes[at] !== 0x0d) at++;
    }
    if (at >= bytes.length) return undefined;
    const start = at;
    let value = 0;
    while (at < bytes.length && bytes[at] >= 0x30 && bytes[at] <= 0x39) {
      value = value * 10 + (bytes[at] - 0x30);
      at++;
    }
    if (at === start || (at < bytes.length && !isWhitespace(bytes[at]))) {
      const token = String.fromCharCode(...bytes.subarray(start, Math.min(at + 1, start + 12)));
      throw new DataError(`${this.fileName}: PGM: expected a decimal number, found "${token}"`);
    }
    this.position = at;
    return value;
  }
}

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

function unknownFormat(bytes: Uint8Array, fileName: string): DataError {
  const head = String.fromCharCode(...bytes.subarray(0, 4));
  let found: string;
  if (/^P[1346]/.test(head)) {
    const kind = head[1] === '1' || head[1] === '4' ? 'PBM (bitmap)' : 'PPM (colour)';
    found = `a ${kind} Netpbm image (${head.slice(0, 2)})`;
  } else if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    found = 'a JPEG image';
  } else if (head.startsWith('GIF8')) {
    found = 'a GIF image';
  } else if (head.startsWith('BM')) {
    found = 'a BMP image';
  } else if (bytes.length === 0) {
    found = 'an empty file';
  } else {
    const hex = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join('');
    found = `an unrecognised image format (first bytes 0x${hex})`;
  }
  return new DataError(`${fileName}: ${found}: expected a PNG or a greyscale PGM (P2 or P5) image`);
}

function borderMean(pixels: Uint8Array, rows: number, cols: number): number {
  let sum = 0;
  let count = 0;
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      if (row === 0 || row === rows - 1 || col === 0 || col === cols - 1) {
        sum += pixels[row * cols + col];
        count++;
      }
    }
  }
  return sum / count;
}
