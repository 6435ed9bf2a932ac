/**
 * Work sharing between threads. The units of a shared kernel call (GEMM blocks, chunks of an
 * elementwise loop, kernel rows) are dealt out by the host as T contiguous ranges, one per thread,
 * each in a slot of CLAIM_SLOT_BYTES in shared memory:
 *
 *   slot t   i32 [lo | hi << 16]: the units lo … hi − 1 not taken yet (so at most 0xffff units:
 *            the host runs a larger call whole)
 *            i32 [t | T << 16]: the slot's thread and the number of slots (slot 0 is
 *            t·CLAIM_SLOT_BYTES before it)
 *            i32 r, i32 U: the ranges are rotated by r of the call's U units — range unit q is
 *            the call's unit (q − r) mod U — so that one thread's range can be the call's first
 *            units and its last (r = 0: not rotated)
 *   + 64     128 bytes that only the slot's thread writes: the pinned splats of the optimizer
 *            steps (claim_pins)
 *
 * Thread t passes the address of its own slot and takes units from the front of its range; once
 * that is empty it takes them from the back of the other threads' ranges (compare-and-exchange on
 * the slot), so a thread that starts late or runs on a slower core simply does fewer units. On
 * balanced cores each thread keeps the same part of every call step after step — the same
 * weights' columns, the same optimizer chunks — which a single shared counter dealt at random.
 * Which thread did which unit never changes a result: every unit writes its own outputs.
 */

import { use_pin_area } from './simd';

/**
 * Three cache lines per slot, none shared with another thread's: a thread's takes from its own
 * range stay in its own core's cache (with 8-byte slots all on one line, until 2026-11-23, every
 * take moved that line between the cores), and so do its pinned splats (README, Threads).
 */
const CLAIM_SLOT_BYTES: i32 = 192;
/** Bytes per thread of the ranges' area: the host lays the slots out with this stride. */
export function claim_slot_bytes(): i32 {
  return CLAIM_SLOT_BYTES;
}

/** Offset of a slot's pinned-splat area (claim_pins) from the slot. */
const CLAIM_PINS_OFFSET: usize = 64;

/**
 * The 128 bytes, on lines of its own, where the thread that runs with slot `claim` pins its
 * optimizer's splats (simd.ts: pin_area); 0 (the static area) for a call run alone.
 */
export function claim_pins(claim: usize): usize {
  return claim ? claim + CLAIM_PINS_OFFSET : 0;
}

/** From now on, this thread's optimizer steps run alone pin at slot `claim` (simd.ts: pinArea). */
export function pin_to_slot(claim: usize): void {
  use_pin_area(claim_pins(claim));
}

/**
 * What claim_next returns once every range is empty: above any unit, and small enough that
 * unit · CHUNK_FLOATS stays an i32.
 */
const CLAIM_DONE: i32 = 0x10000;

/** The next unit: `after` when the call runs alone (claim = 0), else the next this thread takes. */
export function claim_next(claim: usize, after: i32): i32 {
  if (!claim) return after;
  const info = load<i32>(claim, 4);
  const t = info & 0xffff;
  const slots = info >>> 16;
  const first = claim - <usize>t * CLAIM_SLOT_BYTES;
  let u = take(claim, true);
  for (let i = 1; u < 0 && i < slots; i++) {
    const s = t + i < slots ? t + i : t + i - slots;
    u = take(first + <usize>s * CLAIM_SLOT_BYTES, false);
  }
  if (u < 0) return CLAIM_DONE;
  const r = load<i32>(claim, 8);
  if (r == 0) return u;
  const units = load<i32>(claim, 12);
  return u < r ? units - r + u : u - r;
}

/** A unit from the front (the slot's own thread) or the back of a slot's range; −1 when empty. */
function take(slot: usize, front: bool): i32 {
  let w = read(slot);
  let lo = w & 0xffff;
  let hi = w >>> 16;
  while (lo < hi) {
    const seen = swap(slot, w, front ? w + 1 : w - 0x10000);
    if (seen == w) return front ? lo : hi - 1;
    w = seen;
    lo = w & 0xffff;
    hi = w >>> 16;
  }
  return -1;
}

function read(slot: usize): i32 {
  if (ASC_FEATURE_THREADS) return atomic.load<i32>(slot);
  return load<i32>(slot);
}

/** Compare-and-exchange; builds without threads never share a call, so a plain store does. */
function swap(slot: usize, expected: i32, next: i32): i32 {
  if (ASC_FEATURE_THREADS) return atomic.cmpxchg<i32>(slot, expected, next);
  const w = load<i32>(slot);
  if (w == expected) store<i32>(slot, next);
  return w;
}

/**
 * Floats per unit of a shared elementwise loop (the optimizer steps): 16 KiB per
 * array, a few µs of work, so one compare-and-exchange per unit costs nothing and the last unit
 * leaves the other thread little to wait for. A multiple of 16: units never split a vector.
 */
export const CHUNK_FLOATS: i32 = 4096;

/** Units of CHUNK_FLOATS in n floats: the host shares only calls with several. */
export function chunk_units(n: i32): i32 {
  return n > 0 ? (n + CHUNK_FLOATS - 1) / CHUNK_FLOATS : 0;
}
