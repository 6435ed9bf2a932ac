/**
 * Digit image reader: PNG (several colour types, written with pngjs) and PGM (P2, P5, 8- and
 * 16-bit) round trips of a synthetic white-on-black digit, inversion of dark-on-light drawings,
 * and the size and format errors. Fixtures are written to a fresh temp folder.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG, type ColorType } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../src/data/errors.js';
import { decodeDigitImage, encodePgm, readDigitImage } from '../src/data/image.js';

const fixtureDir = mkdtempSync(join(tmpdir(), 'mnist-wasm-image-'));
afterAll(() => rmSync(fixtureDir, { recursive: true, force: true }));

const SIDE = 28;

/** (28, 28) white-on-black test digit: a black border, varied bright values inside. */
const digit = Uint8Array.from({ length: SIDE * SIDE }, (_, i) => {
  const row = Math.floor(i / SIDE);
  const col = i % SIDE;
  const onBorder = row === 0 || col === 0 || row === SIDE - 1 || col === SIDE - 1;
  return onBorder ? 0 : (row * 31 + col * 7) % 256;
});
const inverted = digit.map((value) => 255 - value);

function writeFixture(name: string, bytes: Uint8Array): string {
  const path = join(fixtureDir, name);
  writeFileSync(path, bytes);
  return path;
}

/** A PNG of (height, width) RGBA pixels given per pixel, saved with `colorType`. */
function encodePng(
  width: number,
  height: number,
  rgbaAt: (i: number) => [number, number, number, number],
  colorType: ColorType,
): Uint8Array {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set(rgbaAt(i), 4 * i);
  return PNG.sync.write(png, { colorType });
}

function dataErrorMessage(read: () => unknown): string {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(DataError);
    return (error as DataError).message;
  }
  throw new Error('expected a DataError, nothing was thrown');
}

describe('PNG', () => {
  const grey = (values: Uint8Array) => (i: number) =>
    [values[i], values[i], values[i], 255] as [number, number, number, number];

  it('round trips greyscale, grey+alpha, RGB and RGBA encodings', () => {
    for (const colorType of [0, 2, 4, 6] as ColorType[]) {
      const path = writeFixture(
        `digit-${colorType}.png`,
        encodePng(SIDE, SIDE, grey(digit), colorType),
      );
      expect(readDigitImage(path), `colour type ${colorType}`).toEqual(digit);
    }
  });

  it('converts colour to Rec. 601 luminance', () => {
    const png = encodePng(SIDE, SIDE, (i) => (i === 29 ? [255, 0, 0, 255] : [0, 0, 0, 255]), 2);
    const pixels = decodeDigitImage(png, 'red.png');
    expect(pixels[29]).toBe(Math.round(0.299 * 255));
    expect(pixels[30]).toBe(0);
  });

  it('composites alpha over white, then inverts the resulting light background', () => {
    // A black digit on a fully transparent background, as drawing tools export it.
    const png = encodePng(SIDE, SIDE, (i) => [0, 0, 0, 255 - inverted[i]], 6);
    expect(decodeDigitImage(png, 'transparent.png')).toEqual(digit);
  });

  it('inverts a black-on-white drawing', () => {
    const path = writeFixture('paper.png', encodePng(SIDE, SIDE, grey(inverted), 0));
    expect(readDigitImage(path)).toEqual(digit);
  });

  it('rejects a wrong size without resizing', () => {
    const path = writeFixture(
      'big.png',
      encodePng(32, 20, () => [0, 0, 0, 255], 0),
    );
    expect(dataErrorMessage(() => readDigitImage(path))).toBe(
      `${path}: expected a 28×28 image, got 32×20 (images are not resized: scale it to 28×28 first)`,
    );
  });

  it('reports a corrupt PNG', () => {
    const png = encodePng(SIDE, SIDE, grey(digit), 0).slice(0, 40);
    expect(dataErrorMessage(() => decodeDigitImage(png, 'cut.png'))).toContain(
      'cut.png: invalid PNG',
    );
  });
});

describe('PGM', () => {
  const ascii = (text: string) => new TextEncoder().encode(text);

  it('round trips P5 written by encodePgm', () => {
    const pgm = encodePgm(digit, SIDE, SIDE);
    expect(new TextDecoder().decode(pgm.subarray(0, 13))).toBe('P5\n28 28\n255\n');
    expect(readDigitImage(writeFixture('digit.pgm', pgm))).toEqual(digit);
  });

  it('reads P2 with comments and rescales a small maxval', () => {
    const levels = digit.map((value) => value >> 4); // 0..15
    const rows = Array.from({ length: SIDE }, (_, r) =>
      levels.subarray(r * SIDE, (r + 1) * SIDE).join(' '),
    );
    const text = `P2\n# drawn by hand\n28 # width\n28\n15\n${rows.join('\n')}\n`;
    const pixels = decodeDigitImage(ascii(text), 'digit.pgm');
    expect(pixels).toEqual(levels.map((level) => Math.round((level * 255) / 15)));
  });

  it('reads 16-bit P5', () => {
    const header = ascii('P5 28 28 65535\n');
    const file = new Uint8Array(header.length + 2 * SIDE * SIDE);
    file.set(header);
    // value·257 maps 0..255 exactly onto 0..65535.
    digit.forEach((value, i) =>
      new DataView(file.buffer).setUint16(header.length + 2 * i, value * 257),
    );
    expect(decodeDigitImage(file, 'deep.pgm')).toEqual(digit);
  });

  it('inverts a black-on-white drawing', () => {
    expect(decodeDigitImage(encodePgm(inverted, SIDE, SIDE), 'paper.pgm')).toEqual(digit);
  });

  it('rejects a wrong size', () => {
    const message = dataErrorMessage(() =>
      decodeDigitImage(encodePgm(new Uint8Array(16 * 16), 16, 16), 'small.pgm'),
    );
    expect(message).toContain('small.pgm: expected a 28×28 image, got 16×16');
  });

  it('reports truncated rasters and out-of-range values', () => {
    const p5 = encodePgm(digit, SIDE, SIDE).subarray(0, 100);
    expect(dataErrorMessage(() => decodeDigitImage(p5, 'cut.pgm'))).toBe(
      'cut.pgm: truncated PGM: 28×28 pixels at 1 byte(s) each need 784 bytes, found 87',
    );
    expect(dataErrorMessage(() => decodeDigitImage(ascii('P2 28 28 255 1 2 3'), 'few.pgm'))).toBe(
      'few.pgm: truncated PGM: found 3 of 784 pixel values',
    );
    expect(dataErrorMessage(() => decodeDigitImage(ascii('P2 28 28 15 16'), 'big.pgm'))).toBe(
      'big.pgm: PGM pixel 0 is 16, above maxval 15',
    );
    expect(dataErrorMessage(() => decodeDigitImage(ascii('P2 28 x'), 'bad.pgm'))).toContain(
      'bad.pgm: PGM: expected a decimal number, found "x"',
    );
  });
});

describe('other inputs', () => {
  it('names the format it does not read', () => {
    const cases: [string, Uint8Array, string][] = [
      ['digit.ppm', new TextEncoder().encode('P6 28 28 255\n'), 'a PPM (colour) Netpbm image (P6)'],
      ['digit.jpg', Uint8Array.from([0xff, 0xd8, 0xff, 0xe0]), 'a JPEG image'],
      [
        'notes.txt',
        new TextEncoder().encode('hello'),
        'an unrecognised image format (first bytes 0x68656c6c)',
      ],
      ['empty.png', new Uint8Array(0), 'an empty file'],
    ];
    for (const [name, bytes, found] of cases) {
      expect(dataErrorMessage(() => decodeDigitImage(bytes, name))).toBe(
        `${name}: ${found}: expected a PNG or a greyscale PGM (P2 or P5) image`,
      );
    }
  });

  it('reports a missing file', () => {
    const path = join(fixtureDir, 'absent.png');
    expect(dataErrorMessage(() => readDigitImage(path))).toBe(`${path}: file not found`);
  });
});
