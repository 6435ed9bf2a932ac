/**
 * Convolution and pooling benchmark: LeNet-5's two conv layers at batch 32, NHWC, single-threaded,
 *   conv1 28×28×1 → 5×5×6 pad 2 (OH = OW = 28): M = B·OH·OW = 25,088 rows, K = KH·KW·C = 25
 *   conv2 14×14×6 → 5×5×16 pad 0 (OH = OW = 10): M = 3,200 rows,           K = 150
 * as the engine runs them (assembly/conv2d.ts header):
 *   forward        im2col + gemm_f32_nn with fused bias + ReLU
 *   dW + db        gemm_f32_tn (K = B·OH·OW) + dense_bias_backward
 *   dinp           gemm_f32_nt + col2im (conv2 only: conv1's input is the image, whose gradient
 *                  training never needs)
 * and, for conv1 (C = 1), the direct kernels that skip cols: conv2d_direct_c1_forward (with
 * bias + ReLU) and conv2d_direct_c1_backward_weight + dense_bias_backward. The GEMMs, im2col and
 * col2im are also timed alone (indented rows) to show where the time of each pass goes.
 * GFLOP/s counts 2·B·OH·OW·OC·KH·KW·C per pass (the same for all three). im2col, col2im and the
 * pooling kernels (2×2 stride 2 on 28×28×6 and 10×10×16) are reported in milliseconds.
 *
 * Method as in bench/gemm.ts: back-to-back calls on the same buffers (warm caches, as in training
 * right after the previous layer); each job first runs ≥ warmupMs so TurboFan has replaced the
 * baseline tier; then rounds interleave all jobs (A B C … A B C …) and the median of the
 * per-round samples is reported (this shared machine drifts between a fast and a ≈0.55× state),
 * with the best sample beside it.
 *
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/conv.js [--baseline]
 */
import { pathToFileURL } from 'node:url';
import type { SimdChoice } from '../src/engine/engine.js';
import { createEngine } from '../src/engine/node.js';
import { GEMM_RELU } from '../src/engine/kernels.js';
import { Rng } from '../src/engine/rng.js';
import { timeInterleaved } from './timing.js';

export interface ConvResult {
  name: string;
  /** Flops per call (0 for data-movement kernels, which are reported in ms only). */
  flops: number;
  /** GFLOP/s at the median time, or null for data-movement kernels. */
  gflops: number | null;
  medianMs: number;
  /** Fastest sample (ms per call): the machine's quiet-state speed. */
  minMs: number;
}

export interface ConvBenchOptions {
  batchSize?: number;
  /** Minimum warm-up per job before timing (ms). */
  warmupMs?: number;
  /** Target duration of one timed sample (ms). */
  sampleMs?: number;
  /** Interleaved rounds; the median over rounds is reported. */
  rounds?: number;
  /** Kernel build (default 'auto': relaxed SIMD where available). */
  simd?: SimdChoice;
}

interface Layer {
  name: string;
  H: number;
  W: number;
  C: number;
  OC: number;
  K: number;
  pad: number;
}

const CONV1: Layer = { name: 'conv1', H: 28, W: 28, C: 1, OC: 6, K: 5, pad: 2 };
const CONV2: Layer = { name: 'conv2', H: 14, W: 14, C: 6, OC: 16, K: 5, pad: 0 };
const POOLS = [
  { name: 'pool1 28×28×6', H: 28, W: 28, C: 6 },
  { name: 'pool2 10×10×16', H: 10, W: 10, C: 16 },
];

/** Measure every job; returns one row per job. */
export function benchConv(options: ConvBenchOptions = {}): ConvResult[] {
  const B = options.batchSize ?? 32;
  const warmupMs = options.warmupMs ?? 600;
  const sampleMs = options.sampleMs ?? 2;
  const rounds = options.rounds ?? 41;
  const engine = createEngine({ simd: options.simd });
  const k = engine.kernels;
  const rng = new Rng(3);

  // Reserve everything first (growing memory detaches views), then fill.
  const fills: [number, number][] = [];
  const buffer = (floats: number, what: string, fill = true) => {
    const p = engine.reserve(floats * 4, what);
    if (fill) fills.push([p, floats]);
    return p;
  };
  const layers = [CONV1, CONV2].map((l) => {
    const OH = l.H + 2 * l.pad - l.K + 1;
    const OW = l.W + 2 * l.pad - l.K + 1;
    const M = B * OH * OW;
    const Kc = l.K * l.K * l.C;
    const scratchFloats = Math.max(
      k.gemm_scratch_floats(M, l.OC, Kc),
      k.gemm_scratch_floats(Kc, l.OC, M),
      k.gemm_scratch_floats(M, Kc, l.OC),
    );
    return {
      ...l,
      OH,
      OW,
      M,
      Kc,
      flops: 2 * M * l.OC * Kc,
      inp: buffer(B * l.H * l.W * l.C, `${l.name} input`),
      w: buffer(Kc * l.OC, `${l.name} weight`),
      bias: buffer(l.OC, `${l.name} bias`),
      out: buffer(M * l.OC, `${l.name} output`, false),
      dout: buffer(M * l.OC, `${l.name} dout`),
      cols: buffer(M * Kc, `${l.name} cols`, false),
      dcols: buffer(M * Kc, `${l.name} dcols`, false),
      dinp: buffer(B * l.H * l.W * l.C, `${l.name} dinp`, false),
      dw: buffer(Kc * l.OC, `${l.name} dW`, false),
      db: buffer(l.OC, `${l.name} db`, false),
      scratch: buffer(scratchFloats, `${l.name} GEMM scratch`, false),
    };
  });
  const pools = POOLS.map((p) => {
    const OH = p.H >> 1;
    const OW = p.W >> 1;
    return {
      ...p,
      OH,
      OW,
      inp: buffer(B * p.H * p.W * p.C, `${p.name} input`),
      dout: buffer(B * OH * OW * p.C, `${p.name} dout`),
      out: buffer(B * OH * OW * p.C, `${p.name} output`, false),
      argmax: buffer(B * OH * OW * p.C, `${p.name} argmax`, false),
      dinp: buffer(B * p.H * p.W * p.C, `${p.name} dinp`, false),
    };
  });
  for (const [p, n] of fills) rng.fillUniform(engine.f32(p, n), -1, 1);

  interface Job {
    name: string;
    flops: number;
    fn: () => void;
  }
  const jobs: Job[] = [];
  const job = (name: string, flops: number, fn: () => void) => jobs.push({ name, flops, fn });

  for (const l of layers) {
    const im2col = () =>
      k.conv2d_im2col(l.cols, l.inp, B, l.H, l.W, l.C, l.K, l.K, 1, l.pad, l.OH, l.OW);
    const col2im = () =>
      k.conv2d_col2im(l.dinp, l.dcols, B, l.H, l.W, l.C, l.K, l.K, 1, l.pad, l.OH, l.OW);
    const fwdGemm = () =>
      k.gemm_f32_nn(l.out, l.cols, l.w, l.bias, l.M, l.OC, l.Kc, GEMM_RELU, l.scratch);
    const dwGemm = () => k.gemm_f32_tn(l.dw, l.cols, l.dout, 0, l.Kc, l.OC, l.M, 0, l.scratch);
    const dxGemm = () => k.gemm_f32_nt(l.dcols, l.dout, l.w, 0, l.M, l.Kc, l.OC, 0, l.scratch);
    const tag = `${l.name} ${l.H}×${l.W}×${l.C}→${l.K}×${l.K}×${l.OC}`;
    job(`${tag} forward`, l.flops, () => {
      im2col();
      fwdGemm();
    });
    job(`${tag} dW + db`, l.flops, () => {
      dwGemm();
      k.dense_bias_backward(l.db, l.dout, l.M, l.OC, 0);
    });
    if (l.C === 1) {
      job(`${tag} forward, direct`, l.flops, () =>
        k.conv2d_direct_c1_forward(
          l.out,
          l.inp,
          l.w,
          l.bias,
          B,
          l.H,
          l.W,
          l.OC,
          l.K,
          l.K,
          l.pad,
          l.OH,
          l.OW,
          GEMM_RELU,
        ),
      );
      job(`${tag} dW + db, direct`, l.flops, () => {
        k.conv2d_direct_c1_backward_weight(
          l.dw,
          l.inp,
          l.dout,
          B,
          l.H,
          l.W,
          l.OC,
          l.K,
          l.K,
          l.pad,
          l.OH,
          l.OW,
        );
        k.dense_bias_backward(l.db, l.dout, l.M, l.OC, 0);
      });
    }
    if (l === layers[1]) {
      job(`${tag} dinp`, l.flops, () => {
        dxGemm();
        col2im();
      });
    }
    job(`  ${l.name} nn GEMM only (M=${l.M} N=${l.OC} K=${l.Kc})`, l.flops, fwdGemm);
    job(`  ${l.name} tn GEMM only (M=${l.Kc} N=${l.OC} K=${l.M})`, l.flops, dwGemm);
    if (l === layers[1]) {
      job(`  ${l.name} nt GEMM only (M=${l.M} N=${l.Kc} K=${l.OC})`, l.flops, dxGemm);
    }
    job(`  ${l.name} im2col`, 0, im2col);
    if (l === layers[1]) job(`  ${l.name} col2im`, 0, col2im);
  }
  for (const p of pools) {
    job(`${p.name} maxpool forward`, 0, () =>
      k.maxpool2d_forward(p.out, p.argmax, p.inp, B, p.H, p.W, p.C, 2, 2, p.OH, p.OW),
    );
    job(`${p.name} maxpool backward`, 0, () =>
      k.maxpool2d_backward(p.dinp, p.dout, p.argmax, B, p.H, p.W, p.C, p.OH, p.OW),
    );
    job(`${p.name} avgpool forward`, 0, () =>
      k.avgpool2d_forward(p.out, p.inp, B, p.H, p.W, p.C, 2, 2, p.OH, p.OW),
    );
    job(`${p.name} avgpool backward`, 0, () =>
      k.avgpool2d_backward(p.dinp, p.dout, B, p.H, p.W, p.C, 2, 2, p.OH, p.OW),
    );
  }

  const times = timeInterleaved(jobs, { warmupMs, sampleMs, rounds });
  return jobs.map(({ name, flops }, i) => {
    const { medianMs, minMs } = times[i]!;
    return { name, flops, gflops: flops ? flops / (medianMs * 1e6) : null, medianMs, minMs };
  });
}

/** A fixed-width table of results. */
export function formatConvTable(rows: ConvResult[]): string {
  const width = Math.max(...rows.map((r) => r.name.length), 4);
  const lines = [
    `${'pass'.padEnd(width)}  median ms   best ms   GFLOP/s   best GFLOP/s`,
    `${'-'.repeat(width)}  ---------  --------  --------  -------------`,
  ];
  for (const r of rows) {
    const rate = (ms: number) => (r.flops ? (r.flops / (ms * 1e6)).toFixed(2) : '');
    lines.push(
      `${r.name.padEnd(width)}  ${r.medianMs.toFixed(3).padStart(9)}  ` +
        `${r.minMs.toFixed(3).padStart(8)}  ${rate(r.medianMs).padStart(8)}  ` +
        `${rate(r.minMs).padStart(13)}`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const simd = process.argv.includes('--baseline') ? 'baseline' : 'auto';
  console.log(`LeNet-5 convolutions and pooling, batch 32, NHWC, single-threaded (${simd})`);
  console.log(formatConvTable(benchConv({ simd })));
}
