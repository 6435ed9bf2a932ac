/**
 * GEMM kernel benchmark: GFLOP/s (2·M·N·K per call) of every GEMM in one batch-32 training step
 * of the MLP 784-256-128-10 (weights stored in×out), in both kernel builds (baseline SIMD and
 * relaxed SIMD with FMA, see assembly/simd.ts), each as a percentage of the same build's
 * arithmetic peak measured in the same run, plus a plain-JavaScript triple loop for scale.
 * Single-threaded.
 *
 * Peak: the register-only loops of assembly/peak.ts — 12 chains of x·m + c (mul + add, or one
 * relaxed_madd) and 6 mul + 6 add chains — with no memory traffic. A build's peak is the faster
 * of its two loops: that is the most f32x4 arithmetic the build's instructions reach on this CPU
 * under V8, so "% of peak" is what a kernel leaves on the table.
 *
 * What is measured: back-to-back calls on the same operands, so caches are warm (as in training,
 * where a layer's weights and activations were just touched); the time includes the kernel's
 * own packing of A and B. Each job first runs ≥ warmupMs so TurboFan has replaced the baseline
 * tier; then rounds interleave all jobs of both builds and the peaks (A B C … A B C …) and the
 * median of the per-round times is reported, because this shared machine drifts between a fast
 * and a ≈0.55× state: a kernel and the peak it is divided by are always measured side by side.
 * Samples are short (≈1 ms): when other processes compete for the 2 cores, a lost time slice
 * spoils the few samples it lands in instead of all of them. The best sample is kept too.
 *
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/gemm.js [--quick]
 */
import { pathToFileURL } from 'node:url';
import type { SimdBuild } from '../src/engine/engine.js';
import { createEngine, relaxedSimdAvailable } from '../src/engine/node.js';
import { GEMM_RELU, type Kernels } from '../src/engine/kernels.js';
import { Rng } from '../src/engine/rng.js';
import { median, timeInterleaved } from './timing.js';

export interface GemmResult {
  build: SimdBuild | 'js';
  name: string;
  layout: 'nn' | 'tn' | 'nt' | 'js';
  M: number;
  N: number;
  K: number;
  gflops: number;
  medianMs: number;
  /** Fastest sample (ms per call): the machine's quiet-state speed. */
  minMs: number;
  /**
   * % of the same build's peak: the median over rounds of (this round's GFLOP/s ÷ the build's
   * peak in the same round), so drift between rounds cancels (null for plain JS).
   */
  pctPeak: number | null;
  /** Best-sample GFLOP/s ÷ the best peak sample, in %: the quiet-machine ratio. */
  bestPctPeak: number | null;
}

export interface PeakResult {
  build: SimdBuild;
  name: string;
  gflops: number;
  bestGflops: number;
}

export interface GemmBench {
  builds: SimdBuild[];
  /** The peak loops, per build. */
  peaks: PeakResult[];
  /** Per build: the faster of its peak loops (median GFLOP/s), the denominator of pctPeak. */
  peak: Partial<Record<SimdBuild, number>>;
  rows: GemmResult[];
}

export interface GemmBenchOptions {
  /** Minimum warm-up per job before timing (ms). */
  warmupMs?: number;
  /** Target duration of one timed sample (ms). */
  sampleMs?: number;
  /** Interleaved rounds; the median over rounds is reported. */
  rounds?: number;
  /** Builds to measure (default: both when relaxed SIMD is available). */
  builds?: SimdBuild[];
}

export interface Shape {
  name: string;
  layout: 'nn' | 'tn' | 'nt';
  M: number;
  N: number;
  K: number;
  flags: number;
  bias: boolean;
}

/** Batch 32 through 784-256-128-10: forward (with fused bias, ReLU on hidden layers), dW, dX. */
export const TRAINING_SHAPES: Shape[] = [
  { name: 'fwd L1 x·W1+b1', layout: 'nn', M: 32, N: 256, K: 784, flags: GEMM_RELU, bias: true },
  { name: 'fwd L2 h1·W2+b2', layout: 'nn', M: 32, N: 128, K: 256, flags: GEMM_RELU, bias: true },
  { name: 'fwd L3 h2·W3+b3', layout: 'nn', M: 32, N: 10, K: 128, flags: 0, bias: true },
  { name: 'dW1 = xᵀ·dY1', layout: 'tn', M: 784, N: 256, K: 32, flags: 0, bias: false },
  { name: 'dW2 = h1ᵀ·dY2', layout: 'tn', M: 256, N: 128, K: 32, flags: 0, bias: false },
  { name: 'dW3 = h2ᵀ·dY3', layout: 'tn', M: 128, N: 10, K: 32, flags: 0, bias: false },
  { name: 'dX2 = dY2·W2ᵀ', layout: 'nt', M: 32, N: 256, K: 128, flags: 0, bias: false },
  { name: 'dX3 = dY3·W3ᵀ', layout: 'nt', M: 32, N: 128, K: 10, flags: 0, bias: false },
];

/** The JavaScript baseline's shape (fwd L2): big enough to mean something, small enough to be quick. */
const JS_SHAPE = { M: 32, N: 128, K: 256 };

/** Iterations per call of a peak loop (≈ 20 µs): calls as short as the GEMMs'. */
const PEAK_ITERS = 8192;

/** C (M, N) = A (M, K) · B (K, N) in plain JavaScript (i-k-j order, the cache-friendly one). */
function jsGemm(
  C: Float32Array,
  A: Float32Array,
  B: Float32Array,
  M: number,
  N: number,
  K: number,
) {
  for (let i = 0; i < M; i++) {
    const c = i * N;
    for (let j = 0; j < N; j++) C[c + j] = 0;
    for (let k = 0; k < K; k++) {
      const a = A[i * K + k];
      const b = k * N;
      for (let j = 0; j < N; j++) C[c + j] += a * B[b + j];
    }
  }
}

interface Job {
  fn: () => void;
  flops: number;
  row: Omit<GemmResult, 'gflops' | 'medianMs' | 'minMs' | 'pctPeak' | 'bestPctPeak'> | null;
  peak: { build: SimdBuild; name: string } | null;
}

/** The peak loops and every training shape of one build, on a fresh engine. */
function buildJobs(build: SimdBuild, shapes: readonly Shape[]): Job[] {
  const engine = createEngine({ simd: build });
  const k: Kernels = engine.kernels;
  const rng = new Rng(1);

  // Reserve everything first: growing memory detaches views.
  const placed = shapes.map((s) => ({
    s,
    a: engine.reserve(s.M * s.K * 4),
    b: engine.reserve(s.K * s.N * 4),
    c: engine.reserve(s.M * s.N * 4),
    bias: engine.reserve(s.N * 4),
  }));
  const scratchFloats = Math.max(...shapes.map((s) => k.gemm_scratch_floats(s.M, s.N, s.K)));
  const scratch = engine.reserve(scratchFloats * 4);
  for (const p of placed) {
    rng.fillUniform(engine.f32(p.a, p.s.M * p.s.K), -1, 1);
    rng.fillUniform(engine.f32(p.b, p.s.K * p.s.N), -1, 1);
    rng.fillUniform(engine.f32(p.bias, p.s.N), -1, 1);
  }
  const madd = build === 'relaxed' ? 'relaxed_madd' : 'mul + add';
  const jobs: Job[] = [
    {
      fn: () => k.peak_f32x4(PEAK_ITERS),
      flops: 96 * PEAK_ITERS,
      row: null,
      peak: { build, name: `12 chains x·m + c (${madd})` },
    },
    {
      fn: () => k.peak_f32x4_split(PEAK_ITERS, 1, 0),
      flops: 48 * PEAK_ITERS,
      row: null,
      peak: { build, name: '6 mul + 6 add chains' },
    },
  ];
  for (const { s, a, b, c, bias } of placed) {
    const gemm = { nn: k.gemm_f32_nn, tn: k.gemm_f32_tn, nt: k.gemm_f32_nt }[s.layout];
    const biasPtr = s.bias ? bias : 0;
    jobs.push({
      fn: () => gemm(c, a, b, biasPtr, s.M, s.N, s.K, s.flags, scratch),
      flops: 2 * s.M * s.N * s.K,
      row: { build, name: s.name, layout: s.layout, M: s.M, N: s.N, K: s.K },
      peak: null,
    });
  }
  return jobs;
}

/** Measure the peaks and every training shape in each build (and the JS baseline), interleaved. */
export async function benchGemm(options: GemmBenchOptions = {}): Promise<GemmBench> {
  const warmupMs = options.warmupMs ?? 600;
  const sampleMs = options.sampleMs ?? 1;
  const rounds = options.rounds ?? 61;
  const builds =
    options.builds ??
    (relaxedSimdAvailable() ? (['baseline', 'relaxed'] as const) : (['baseline'] as const));
  const jobs = builds.flatMap((b) => buildJobs(b, TRAINING_SHAPES));
  {
    const { M, N, K } = JS_SHAPE;
    const rng = new Rng(1);
    const A = new Float32Array(M * K);
    const B = new Float32Array(K * N);
    const C = new Float32Array(M * N);
    rng.fillUniform(A, -1, 1);
    rng.fillUniform(B, -1, 1);
    jobs.push({
      fn: () => jsGemm(C, A, B, M, N, K),
      flops: 2 * M * N * K,
      row: { build: 'js', name: 'plain JS triple loop', layout: 'js', M, N, K },
      peak: null,
    });
  }

  await new Promise((resolve) => setImmediate(resolve)); // let pending I/O (the table so far) flush
  const times = timeInterleaved(jobs, { warmupMs, sampleMs, rounds });
  const gflops = (i: number, ms: number) => jobs[i]!.flops / (ms * 1e6);

  const peaks: PeakResult[] = [];
  const peak: Partial<Record<SimdBuild, number>> = {};
  const bestPeak: Partial<Record<SimdBuild, number>> = {};
  // Per build and round: the faster peak loop of that round.
  const peakPerRound: Partial<Record<SimdBuild, number[]>> = {};
  jobs.forEach((j, i) => {
    if (!j.peak) return;
    const { build } = j.peak;
    const t = times[i]!;
    const g = gflops(i, t.medianMs);
    const best = gflops(i, t.minMs);
    peaks.push({ ...j.peak, gflops: g, bestGflops: best });
    peak[build] = Math.max(peak[build] ?? 0, g);
    bestPeak[build] = Math.max(bestPeak[build] ?? 0, best);
    const perRound = (peakPerRound[build] ??= t.samples.map(() => 0));
    t.samples.forEach((ms, r) => (perRound[r] = Math.max(perRound[r]!, gflops(i, ms))));
  });
  const rows: GemmResult[] = [];
  jobs.forEach((j, i) => {
    if (!j.row) return;
    const { medianMs, minMs, samples } = times[i]!;
    const b = j.row.build;
    const perRound = b === 'js' ? undefined : peakPerRound[b];
    const best = b === 'js' ? undefined : bestPeak[b];
    rows.push({
      ...j.row,
      medianMs,
      minMs,
      gflops: gflops(i, medianMs),
      pctPeak: perRound ? 100 * median(samples.map((ms, r) => gflops(i, ms) / perRound[r]!)) : null,
      bestPctPeak: best ? (100 * gflops(i, minMs)) / best : null,
    });
  });
  return { builds: [...builds], peaks, peak, rows };
}

const fmt = (x: number | null | undefined, width: number, digits = 1): string =>
  (x === null || x === undefined ? '—' : x.toFixed(digits)).padStart(width);

/**
 * One table: the peaks, then per shape each build's median GFLOP/s, % of that build's peak and
 * best-sample GFLOP/s, and the relaxed/baseline speed ratio.
 */
export function formatGemmTable(bench: GemmBench): string {
  const { builds, peaks, peak, rows } = bench;
  const head = builds.map((b) => `${b.padStart(9)} GFLOP/s  % peak     best  best %`).join('  │');
  const rule = builds.map(() => '-----------------  ------  -------  ------').join('  │');
  const both = builds.length === 2;
  const lines = [
    `shape                    layout     M     N     K  │${head}${both ? '  │ rel/base' : ''}`,
    `-----------------------  ------  ----  ----  ----  │${rule}${both ? '  │ --------' : ''}`,
  ];
  const peakNames = [...new Set(peaks.map((p) => p.name.replace(/ \(.*\)$/, '')))];
  for (const name of peakNames) {
    const cells = builds.map((b) => {
      const p = peaks.find((x) => x.build === b && x.name.startsWith(name));
      const pct = p && peak[b] ? (100 * p.gflops) / peak[b] : null;
      return `${fmt(p?.gflops, 17)}  ${fmt(pct, 6, 0)}  ${fmt(p?.bestGflops, 7)}        `;
    });
    lines.push(`${('peak: ' + name).padEnd(49)}  │${cells.join('  │')}`);
  }
  const shapes = [...new Set(rows.filter((r) => r.build !== 'js').map((r) => r.name))];
  for (const name of shapes) {
    const byBuild = builds.map((b) => rows.find((r) => r.name === name && r.build === b));
    const r = byBuild.find((x) => x)!;
    const cells = byBuild.map((x) => {
      const best = x ? (2 * x.M * x.N * x.K) / (x.minMs * 1e6) : undefined;
      return `${fmt(x?.gflops, 17)}  ${fmt(x?.pctPeak, 6, 0)}  ${fmt(best, 7)}  ${fmt(x?.bestPctPeak, 6, 0)}`;
    });
    const ratio = both && byBuild[0] && byBuild[1] ? byBuild[1].gflops / byBuild[0].gflops : null;
    lines.push(
      `${r.name.padEnd(23)}  ${r.layout.padEnd(6)}  ${String(r.M).padStart(4)}  ` +
        `${String(r.N).padStart(4)}  ${String(r.K).padStart(4)}  │${cells.join('  │')}` +
        (both ? `  │ ${fmt(ratio, 8, 2)}` : ''),
    );
  }
  for (const r of rows.filter((x) => x.build === 'js')) {
    const best = (2 * r.M * r.N * r.K) / (r.minMs * 1e6);
    lines.push(
      `${r.name.padEnd(23)}  ${r.layout.padEnd(6)}  ${String(r.M).padStart(4)}  ` +
        `${String(r.N).padStart(4)}  ${String(r.K).padStart(4)}  │` +
        `${fmt(r.gflops, 17, 2)}  ${fmt(null, 6)}  ${fmt(best, 7, 2)}`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const bench = await benchGemm(quick ? { rounds: 5, warmupMs: 300 } : {});
  console.log(formatGemmTable(bench));
}
