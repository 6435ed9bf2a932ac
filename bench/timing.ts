/**
 * The timing method every kernel benchmark shares: warm each job up until TurboFan has replaced the
 * baseline tier, calibrate a sample length, then interleave the jobs round by round (A B C … A B C …)
 * and keep every per-call sample, so a machine that drifts between a fast and a slow state affects
 * all jobs alike. Each sample starts with one untimed call: the jobs timed in between evicted this
 * job's operands, and a sample of a few calls would otherwise time mostly that reload (it cost
 * the 32×784×256 GEMM ≈ 10 points of "% of peak" with 1 ms samples). Report the median (typical)
 * and the minimum (quiet-state) time.
 */

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** ms per call of fn over `iters` back-to-back calls. */
export function timeCalls(fn: () => void, iters: number): number {
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  return (performance.now() - t0) / iters;
}

/** Run fn for at least `ms`, then return how many calls fill `sampleMs` at the warmed-up speed. */
export function warmUp(fn: () => void, ms: number, sampleMs: number): number {
  const t0 = performance.now();
  let calls = 0;
  let t = t0;
  while (t - t0 < ms) {
    fn();
    calls++;
    if ((calls & 15) === 0) t = performance.now();
  }
  // Calibrate on the warmed-up code, not on the average that includes the baseline tier.
  let iters = 4;
  for (;;) {
    const per = timeCalls(fn, iters);
    if (per * iters >= sampleMs / 4 || iters >= 1 << 24)
      return Math.max(1, Math.round(sampleMs / per));
    iters *= 4;
  }
}

export interface TimedJob {
  fn: () => void;
}

export interface Timing {
  /** Median ms per call over the rounds. */
  medianMs: number;
  /** Fastest round's ms per call: the machine's quiet-state speed. */
  minMs: number;
  /** ms per call in each round, in round order (round r of every job ran back to back). */
  samples: number[];
}

/** Interleaved timing of `jobs`: per job, the median and minimum ms per call over `rounds`. */
export function timeInterleaved(
  jobs: readonly TimedJob[],
  options: { warmupMs: number; sampleMs: number; rounds: number },
): Timing[] {
  const iters = jobs.map((j) => warmUp(j.fn, options.warmupMs, options.sampleMs));
  const samples: number[][] = jobs.map(() => []);
  for (let r = 0; r < options.rounds; r++) {
    jobs.forEach((j, i) => {
      j.fn(); // untimed: brings this job's operands back into cache after the other jobs ran
      samples[i]!.push(timeCalls(j.fn, iters[i]!));
    });
  }
  return samples.map((s) => ({ medianMs: median(s), minMs: Math.min(...s), samples: s }));
}
