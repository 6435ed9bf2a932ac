/**
 * MNIST-style preprocessing of drawn digits: synthetic strokes on a 280×280 canvas (bounding box,
 * aspect ratio, centre of mass, anti-aliasing), a round trip of real MNIST test digits through a
 * ×10 upscale at seeded random offsets, and the RGBA → ink conversion for the usual canvas setups.
 * Centres of mass use the module's convention: pixel centres at i + 0.5.
 */
import { describe, expect, it } from 'vitest';
import { loadMnist } from '../src/data/mnist.js';
import { inkFromRgba, preprocessDigit } from '../src/data/preprocess.js';
import { Rng } from '../src/engine/rng.js';

const CANVAS = 280;
const SIDE = 28;

interface DigitStats {
  /** Extent of the non-zero pixels. */
  width: number;
  height: number;
  /** Centre of mass, pixel centres at i + 0.5. */
  centreX: number;
  centreY: number;
}

function stats(digit: Uint8Array): DigitStats {
  let x0 = SIDE;
  let x1 = -1;
  let y0 = SIDE;
  let y1 = -1;
  let mass = 0;
  let sumX = 0;
  let sumY = 0;
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const v = digit[y * SIDE + x];
      if (v === 0) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
      mass += v;
      sumX += v * (x + 0.5);
      sumY += v * (y + 0.5);
    }
  }
  return {
    width: x1 - x0 + 1,
    height: y1 - y0 + 1,
    centreX: sumX / mass,
    centreY: sumY / mass,
  };
}

/** Inks every pixel whose centre is within `thickness / 2` of the segment (xa, ya)–(xb, yb). */
function stroke(
  ink: Uint8Array,
  xa: number,
  ya: number,
  xb: number,
  yb: number,
  thickness: number,
): void {
  const dx = xb - xa;
  const dy = yb - ya;
  const lengthSquared = dx * dx + dy * dy;
  const reach = Math.ceil(thickness / 2);
  const yEnd = Math.min(CANVAS, Math.max(ya, yb) + reach);
  const xEnd = Math.min(CANVAS, Math.max(xa, xb) + reach);
  for (let y = Math.max(0, Math.min(ya, yb) - reach); y < yEnd; y++) {
    for (let x = Math.max(0, Math.min(xa, xb) - reach); x < xEnd; x++) {
      const px = x + 0.5 - xa;
      const py = y + 0.5 - ya;
      const t = Math.min(1, Math.max(0, (px * dx + py * dy) / lengthSquared));
      if (Math.hypot(px - t * dx, py - t * dy) <= thickness / 2) ink[y * CANVAS + x] = 255;
    }
  }
}

function fillRect(ink: Uint8Array, x: number, y: number, width: number, height: number): void {
  for (let row = y; row < y + height; row++)
    ink.fill(255, row * CANVAS + x, row * CANVAS + x + width);
}

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let meanA = 0;
  let meanB = 0;
  for (let i = 0; i < n; i++) {
    meanA += a[i] / n;
    meanB += b[i] / n;
  }
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i] - meanA) * (b[i] - meanB);
    aa += (a[i] - meanA) ** 2;
    bb += (b[i] - meanB) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/** Asserts the MNIST geometry: longer side 20 (±1), centre of mass in pixel 14's extent. */
function expectMnistGeometry(digit: Uint8Array): DigitStats {
  const s = stats(digit);
  expect(Math.max(s.width, s.height)).toBeGreaterThanOrEqual(19);
  expect(Math.max(s.width, s.height)).toBeLessThanOrEqual(21);
  // Within 0.5 px of pixel 14's centre (14.5), plus what rounding the pixels to uint8 can move.
  expect(Math.abs(s.centreX - 14.5)).toBeLessThanOrEqual(0.52);
  expect(Math.abs(s.centreY - 14.5)).toBeLessThanOrEqual(0.52);
  return s;
}

function preprocessCanvas(ink: Uint8Array): Uint8Array {
  const digit = preprocessDigit(ink, CANVAS, CANVAS);
  if (digit === null) throw new Error('expected ink, got null');
  expect(digit.length).toBe(SIDE * SIDE);
  return digit;
}

describe('preprocessDigit', () => {
  it('returns null for an empty canvas', () => {
    expect(preprocessDigit(new Uint8Array(CANVAS * CANVAS), CANVAS, CANVAS)).toBeNull();
    expect(preprocessDigit(new Float32Array(12), 4, 3)).toBeNull();
  });

  it('centres and scales a small "1" drawn in a corner, keeping it thin', () => {
    const ink = new Uint8Array(CANVAS * CANVAS);
    fillRect(ink, 10, 5, 3, 60);
    const s = expectMnistGeometry(preprocessCanvas(ink));
    expect(s.height).toBeGreaterThanOrEqual(19);
    expect(s.width).toBeLessThanOrEqual(8);
  });

  it('centres and scales a "7" drawn in the opposite corner', () => {
    const ink = new Uint8Array(CANVAS * CANVAS);
    stroke(ink, 200, 180, 262, 180, 6);
    stroke(ink, 262, 180, 225, 270, 6);
    const digit = preprocessCanvas(ink);
    const s = expectMnistGeometry(digit);
    expect(s.height).toBeGreaterThanOrEqual(19);
    // The bar stays on top, unflipped: the first two ink rows carry more than ten full pixels.
    const firstInkRow = Math.floor(digit.findIndex((v) => v > 0) / SIDE);
    const rowMass = (row: number) =>
      digit.subarray(row * SIDE, (row + 1) * SIDE).reduce((a, v) => a + v, 0);
    expect(rowMass(firstInkRow) + rowMass(firstInkRow + 1)).toBeGreaterThan(10 * 255);
  });

  it('keeps a wide flat stroke wide and flat', () => {
    const ink = new Uint8Array(CANVAS * CANVAS);
    fillRect(ink, 100, 240, 120, 12);
    const s = expectMnistGeometry(preprocessCanvas(ink));
    expect(s.width).toBeGreaterThanOrEqual(19);
    expect(s.height).toBeLessThanOrEqual(3);
  });

  it('scales a tiny dot up to fill the 20-px box', () => {
    const ink = new Uint8Array(CANVAS * CANVAS);
    fillRect(ink, 50, 60, 2, 2);
    const digit = preprocessCanvas(ink);
    const s = expectMnistGeometry(digit);
    expect([s.width, s.height]).toEqual([20, 20]);
    // A 20×20 square centred on a pixel edge: the tie goes to 14, the low end of pixel 14.
    expect([s.centreX, s.centreY]).toEqual([14, 14]);
    expect(digit.filter((v) => v === 255).length).toBe(400);
  });

  it('anti-aliases: a hard diagonal comes out with intermediate greys', () => {
    const ink = new Uint8Array(CANVAS * CANVAS);
    stroke(ink, 40, 40, 240, 240, 8);
    const digit = preprocessCanvas(ink);
    const greys = digit.filter((v) => v > 0 && v < 255).length;
    // Nearest-neighbour resampling of 0/255 ink would give no greys at all.
    expect(greys).toBeGreaterThanOrEqual(20);
    expect(Math.max(...digit)).toBeGreaterThan(128);
  });

  it('accepts float ink and a custom threshold', () => {
    const ink = new Float32Array(CANVAS * CANVAS);
    for (let y = 100; y < 160; y++) for (let x = 100; x < 130; x++) ink[y * CANVAS + x] = 200;
    ink[10 * CANVAS + 10] = 30; // 15 % of the maximum: noise for 20 %, ink for the 10 % default
    const solidRows = (digit: Uint8Array) =>
      Array.from({ length: SIDE }, (_, y) => digit.subarray(y * SIDE, (y + 1) * SIDE)).filter(
        (row) => row.some((v) => v >= 128),
      ).length;
    const blockOnly = preprocessDigit(ink, CANVAS, CANVAS, { threshold: 0.2 })!;
    expect([stats(blockOnly).width, stats(blockOnly).height]).toEqual([10, 20]);
    expect(solidRows(blockOnly)).toBe(20);
    // The speck stretches the box to 120×150 px, so the 60-px block shrinks to 8 rows.
    expect(solidRows(preprocessDigit(ink, CANVAS, CANVAS)!)).toBe(8);
  });

  it('rejects sizes that do not match', () => {
    expect(() => preprocessDigit(new Uint8Array(10), 4, 3)).toThrow(RangeError);
    expect(() => preprocessDigit(new Uint8Array(12), 4, 3, { threshold: 1 })).toThrow(RangeError);
    expect(() => inkFromRgba(new Uint8Array(12), 4, 3)).toThrow(RangeError);
  });

  // Measured: mean r = 0.99996 (min 0.9991) over the first 50 test digits with seed 7, 36 of them
  // bit-identical: this is the procedure that made MNIST. The floors are far above the 0.85 that a
  // merely plausible preprocessing reaches, so a drift in the centring convention fails here
  // (aiming the centre of mass at (14, 14) instead of pixel 14's centre gives 0.76).
  it('recovers real MNIST digits upscaled ×10 at random offsets (mean r = 0.99996)', () => {
    const { test } = loadMnist();
    const rng = new Rng(7);
    const scale = 10;
    const correlations: number[] = [];
    for (let k = 0; k < 50; k++) {
      const original = test.images.subarray(k * SIDE * SIDE, (k + 1) * SIDE * SIDE);
      let x0 = SIDE;
      let x1 = -1;
      let y0 = SIDE;
      let y1 = -1;
      original.forEach((v, i) => {
        if (v === 0) return;
        x0 = Math.min(x0, i % SIDE);
        x1 = Math.max(x1, i % SIDE);
        y0 = Math.min(y0, Math.floor(i / SIDE));
        y1 = Math.max(y1, Math.floor(i / SIDE));
      });
      const width = (x1 - x0 + 1) * scale;
      const height = (y1 - y0 + 1) * scale;
      const offsetX = rng.nextInt(CANVAS - width + 1);
      const offsetY = rng.nextInt(CANVAS - height + 1);
      const ink = new Uint8Array(CANVAS * CANVAS);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const source = (y0 + Math.floor(y / scale)) * SIDE + x0 + Math.floor(x / scale);
          ink[(offsetY + y) * CANVAS + offsetX + x] = original[source];
        }
      }
      correlations.push(pearson(preprocessCanvas(ink), original));
    }
    const mean = correlations.reduce((a, r) => a + r, 0) / correlations.length;
    expect(mean).toBeGreaterThan(0.999);
    expect(Math.min(...correlations)).toBeGreaterThan(0.99);
  });
});

describe('inkFromRgba', () => {
  /** A width×height RGBA image of `background`, with `pixels` set at their (x, y). */
  function rgbaImage(
    width: number,
    height: number,
    background: number[],
    pixels: [number, number, number[]][],
  ): Uint8ClampedArray {
    const rgba = new Uint8ClampedArray(4 * width * height);
    for (let i = 0; i < width * height; i++) rgba.set(background, 4 * i);
    for (const [x, y, colour] of pixels) rgba.set(colour, 4 * (y * width + x));
    return rgba;
  }

  it('dark strokes on white paper become ink', () => {
    const rgba = rgbaImage(
      4,
      4,
      [255, 255, 255, 255],
      [
        [1, 1, [0, 0, 0, 255]],
        [2, 2, [128, 128, 128, 255]],
        [1, 2, [0, 0, 0, 0]],
      ],
    );
    const ink = inkFromRgba(rgba, 4, 4);
    expect(ink[1 * 4 + 1]).toBe(255);
    expect(ink[2 * 4 + 2]).toBe(127);
    expect(ink[2 * 4 + 1]).toBe(0); // transparent: background
    expect(ink.reduce((a, v) => a + v, 0)).toBe(255 + 127);
  });

  it('white strokes on a transparent canvas become ink, by coverage', () => {
    const rgba = rgbaImage(
      4,
      4,
      [0, 0, 0, 0],
      [
        [1, 1, [255, 255, 255, 255]],
        [2, 2, [255, 255, 255, 128]],
      ],
    );
    expect(Array.from(inkFromRgba(rgba, 4, 4))).toEqual([
      0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 128, 0, 0, 0, 0, 0,
    ]);
  });

  it('black strokes on a transparent canvas (the canvas default) become ink', () => {
    const rgba = rgbaImage(3, 3, [0, 0, 0, 0], [[1, 1, [0, 0, 0, 255]]]);
    expect(Array.from(inkFromRgba(rgba, 3, 3))).toEqual([0, 0, 0, 0, 255, 0, 0, 0, 0]);
  });

  it('light strokes on an opaque black canvas become ink', () => {
    const rgba = rgbaImage(3, 3, [0, 0, 0, 255], [[1, 1, [255, 255, 255, 255]]]);
    expect(Array.from(inkFromRgba(rgba, 3, 3))).toEqual([0, 0, 0, 0, 255, 0, 0, 0, 0]);
  });

  it('feeds preprocessDigit: a "7" drawn dark on white matches the same ink drawn directly', () => {
    const ink = new Uint8Array(CANVAS * CANVAS);
    stroke(ink, 60, 40, 200, 40, 14);
    stroke(ink, 200, 40, 110, 240, 14);
    const rgba = new Uint8ClampedArray(4 * CANVAS * CANVAS);
    ink.forEach((v, i) => rgba.set([255 - v, 255 - v, 255 - v, 255], 4 * i));
    expect(inkFromRgba(rgba, CANVAS, CANVAS)).toEqual(ink);
    expect(preprocessCanvas(inkFromRgba(rgba, CANVAS, CANVAS))).toEqual(preprocessCanvas(ink));
  });
});
