/**
 * Work sharing between threads: the threads that share one kernel call take its units (GEMM
 * blocks, chunks of an elementwise loop) from a zeroed i32 counter in shared memory, each the next
 * unfinished one as it finishes the last, so a thread that starts late or runs on a slower core
 * simply does fewer units. Which thread did which unit never changes a result: every unit writes
 * its own outputs.
 */

/** The next unit: `after` when the call runs alone (claim = 0), else the counter's next value. */
export function claim_next(claim: usize, after: i32): i32 {
  if (!claim) return after;
  if (ASC_FEATURE_THREADS) return atomic.add<i32>(claim, 1);
  // Builds without threads never share a call; this keeps their counter semantics.
  const u = load<i32>(claim);
  store<i32>(claim, u + 1);
  return u;
}

/**
 * Floats per unit of a shared elementwise loop (the optimizer steps): 16 KiB per
 * array, a few µs of work, so one counter increment per unit costs nothing and the last unit
 * leaves the other thread little to wait for. A multiple of 16: units never split a vector.
 */
export const CHUNK_FLOATS: i32 = 4096;

/** Units of CHUNK_FLOATS in n floats: the host shares only calls with several. */
export function chunk_units(n: i32): i32 {
  return n > 0 ? (n + CHUNK_FLOATS - 1) / CHUNK_FLOATS : 0;
}
