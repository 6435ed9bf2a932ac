/**
 * GEMM kernel benchmark: GFLOP/s (2·M·N·K per call) of every GEMM in one batch-32 training step
 * of the MLP 784-256-128-10 (weights stored in×out), plus a plain-JavaScript triple loop on one
 * shape for scale. Single-threaded.
 *
 * What is measured: back-to-back calls on the same operands, so caches are warm (as in training,
 * where a layer's weights and activations were just touched); the time includes the kernel's
 * own packing of A and B. Each shape first runs ≥ warmupMs so TurboFan has replaced the baseline
 * tier; then rounds interleave all shapes (A B C … A B C …) and the median of the per-round
 * times is reported, because this shared machine drifts between a fast and a ≈0.55× state.
 * Samples are short (≈1 ms): when other processes compete for the 2 cores, a lost time slice
 * spoils the few samples it lands in instead of all of them. The best sample is kept too.
 *
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/gemm.js
 */
import { pathToFileURL } from 'node:url';
import { createEngine } from '../src/engine/node.js';
import { GEMM_RELU, type Kernels } from '../src/engine/kernels.js';
import { Rng } from '../src/engine/rng.js';
import { timeInterleaved } from './timing.js';

export interface GemmResult {
  name: string;
  layout: 'nn' | 'tn' | 'nt' | 'js';
  M: number;
  N: number;
  K: number;
  gflops: number;
  medianMs: number;
  /** Fastest sample (ms per call): the machine's quiet-state speed. */
  minMs: number;
}

export interface GemmBenchOptions {
  /** Minimum warm-up per shape before timing (ms). */
  warmupMs?: number;
  /** Target duration of one timed sample (ms). */
  sampleMs?: number;
  /** Interleaved rounds; the median over rounds is reported. */
  rounds?: number;
}

interface Shape {
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

/** Measure every training shape (and the JS baseline); returns one row per shape. */
export async function benchGemm(options: GemmBenchOptions = {}): Promise<GemmResult[]> {
  const warmupMs = options.warmupMs ?? 600;
  const sampleMs = options.sampleMs ?? 1;
  const rounds = options.rounds ?? 61;
  const engine = createEngine();
  const k: Kernels = engine.kernels;
  const rng = new Rng(1);

  // Reserve everything first: growing memory detaches views.
  const placed = TRAINING_SHAPES.map((s) => ({
    s,
    a: engine.reserve(s.M * s.K * 4),
    b: engine.reserve(s.K * s.N * 4),
    c: engine.reserve(s.M * s.N * 4),
    bias: engine.reserve(s.N * 4),
  }));
  const scratchFloats = Math.max(
    ...TRAINING_SHAPES.map((s) => k.gemm_scratch_floats(s.M, s.N, s.K)),
  );
  const scratch = engine.reserve(scratchFloats * 4);
  for (const p of placed) {
    rng.fillUniform(engine.f32(p.a, p.s.M * p.s.K), -1, 1);
    rng.fillUniform(engine.f32(p.b, p.s.K * p.s.N), -1, 1);
    rng.fillUniform(engine.f32(p.bias, p.s.N), -1, 1);
  }

  interface Job {
    row: Omit<GemmResult, 'gflops' | 'medianMs' | 'minMs'>;
    fn: () => void;
  }
  const jobs: Job[] = placed.map(({ s, a, b, c, bias }) => {
    const gemm = { nn: k.gemm_f32_nn, tn: k.gemm_f32_tn, nt: k.gemm_f32_nt }[s.layout];
    const biasPtr = s.bias ? bias : 0;
    return {
      row: { name: s.name, layout: s.layout, M: s.M, N: s.N, K: s.K },
      fn: () => gemm(c, a, b, biasPtr, s.M, s.N, s.K, s.flags, scratch),
    };
  });
  {
    const { M, N, K } = JS_SHAPE;
    const A = new Float32Array(M * K);
    const B = new Float32Array(K * N);
    const C = new Float32Array(M * N);
    rng.fillUniform(A, -1, 1);
    rng.fillUniform(B, -1, 1);
    jobs.push({
      row: { name: 'plain JS triple loop', layout: 'js', M, N, K },
      fn: () => jsGemm(C, A, B, M, N, K),
    });
  }

  await new Promise((resolve) => setImmediate(resolve)); // let pending I/O (the table so far) flush
  const times = timeInterleaved(jobs, { warmupMs, sampleMs, rounds });
  return jobs.map(({ row }, i) => {
    const { medianMs, minMs } = times[i]!;
    return { ...row, medianMs, minMs, gflops: (2 * row.M * row.N * row.K) / (medianMs * 1e6) };
  });
}

/** A fixed-width table of results. */
export function formatGemmTable(rows: GemmResult[]): string {
  const lines = [
    'shape                  layout     M     N     K   median µs   GFLOP/s   best GFLOP/s',
    '---------------------  ------  ----  ----  ----  ----------  --------  -------------',
  ];
  for (const r of rows) {
    const best = (2 * r.M * r.N * r.K) / (r.minMs * 1e6);
    lines.push(
      `${r.name.padEnd(21)}  ${r.layout.padEnd(6)}  ${String(r.M).padStart(4)}  ` +
        `${String(r.N).padStart(4)}  ${String(r.K).padStart(4)}  ` +
        `${(r.medianMs * 1000).toFixed(2).padStart(10)}  ${r.gflops.toFixed(2).padStart(8)}  ` +
        `${best.toFixed(2).padStart(13)}`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchGemm();
  console.log(formatGemmTable(rows));
}
