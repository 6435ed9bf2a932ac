/**
 * `npm run bench`: GEMM GFLOP/s and % of the measured SIMD peak for every shape of a batch-32
 * mlp-256-128 training step in both kernel builds (baseline SIMD and relaxed SIMD), LeNet-5's
 * convolutions, and training throughput of every preset on the genuine MNIST, single-threaded.
 * Prints tables, checks the targets of the engine issues, and writes everything to
 * bench/results/latest.json.
 *
 *   npm run bench                 # full run (~4 minutes)
 *   npm run bench -- --quick      # fewer rounds and epochs, for a smoke check
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../src/data/mnist.js';
import type { SimdBuild } from '../src/engine/engine.js';
import { createEngine, relaxedSimdAvailable } from '../src/engine/node.js';
import { presetNames } from '../src/nn/presets.js';
import { benchConv, formatConvTable } from './conv.js';
import { benchGemm, formatGemmTable } from './gemm.js';
import { benchCoreContention, formatCoreContention } from './cores.js';
import { benchThreads, formatThreadsTable } from './threads.js';
import { benchTraining, formatTrainingTable } from './training.js';

const TARGET_GFLOPS = 15;
const TARGET_PCT_PEAK = 75;
const TARGET_EPOCH_SECONDS = 4;
const TARGET_TWO_THREADS = 1.6;

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const builds: SimdBuild[] = relaxedSimdAvailable() ? ['baseline', 'relaxed'] : ['baseline'];
  const auto = createEngine();
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    v8: process.versions.v8,
    builds,
    defaultBuild: auto.build,
    relaxedMaddFused: builds.includes('relaxed') && createEngine({ simd: 'relaxed' }).fusedMadd,
    date: new Date().toISOString(),
  };
  console.log(
    `mnist-wasm benchmarks — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ` +
      `single-threaded; kernel builds: ${builds.join(', ')} (default ${auto.build}` +
      `${machine.relaxedMaddFused ? ', relaxed_madd fused to FMA' : ''})\n`,
  );

  console.log(
    "GEMM (warm caches, packing included; median of interleaved rounds; % of the same build's\n" +
      'register-only peak measured in the same rounds; "best" = fastest round, the quiet machine)',
  );
  const gemm = await benchGemm(quick ? { rounds: 5, warmupMs: 300 } : {});
  console.log(formatGemmTable(gemm));

  const conv = builds.map((build) => ({
    build,
    rows: benchConv({ simd: build, ...(quick ? { rounds: 5, warmupMs: 300 } : {}) }),
  }));
  for (const c of conv) {
    console.log(`\nConvolution (LeNet-5 layers, batch 32; ${c.build} build)`);
    console.log(formatConvTable(c.rows));
  }

  console.log('\nTraining (Adam, batch 32, 60,000 MNIST images)');
  const data = loadMnist();
  const epochs = quick ? 1 : 3;
  // Model by model, the builds back to back, so the machine's drift hits both alike. Whole
  // epochs of LeNet-5 take long: in the default build only.
  const training = presetNames().flatMap((model) =>
    builds.flatMap((build) =>
      benchTraining(data, {
        simd: build,
        epochs,
        models: [model],
        epochModels: build === auto.build ? ['mlp-256-128', 'lenet5'] : ['mlp-256-128'],
      }),
    ),
  );
  // Zero skipping (same bits) against the dense kernels alone.
  training.push(
    ...benchTraining(data, {
      simd: auto.build,
      epochs,
      models: ['mlp-256-128'],
      epochModels: ['mlp-256-128'],
      sparseInput: false,
    }),
  );
  console.log(formatTrainingTable(training));

  console.log(
    `\nThreads and inference (${auto.build} build; training: whole epochs, Adam, batch 32, ` +
      'rounds interleaved across thread counts; inference: 10,000 test images at batch 1000).\n' +
      'Each round of a trained preset ends with "two halves at once": two threads, one engine and ' +
      'model each, training on\none half of the images at the same time with nothing shared; its ' +
      '"× 1 thread" bounds what any two-thread split of that epoch can reach here.',
  );
  // The cores' concurrency drifts on a shared machine: measured just before and after the rows.
  const before = benchCoreContention(quick ? 10 : 40);
  const threads = await benchThreads(data, {
    rounds: quick ? 1 : undefined, // benchThreads' default
    trainModels: quick ? ['mlp-256-128'] : ['mlp-256-128', 'lenet5'],
  });
  const cores = { before, after: benchCoreContention(quick ? 10 : 40) };
  console.log(formatThreadsTable(threads));
  console.log(`${formatCoreContention(cores.before)} (before the thread rows)`);
  console.log(`${formatCoreContention(cores.after)} (after them)`);

  const checks = [];
  for (const build of builds) {
    const rows = gemm.rows.filter((g) => g.build === build);
    const slowest = rows.reduce((a, b) => (b.gflops < a.gflops ? b : a));
    const lowest = rows.reduce((a, b) => ((b.pctPeak ?? 0) < (a.pctPeak ?? 0) ? b : a));
    checks.push(
      {
        target: `${build}: GEMM ≥ ${TARGET_GFLOPS} GFLOP/s on every training shape`,
        measured: `slowest ${slowest.name} ${slowest.gflops.toFixed(1)} GFLOP/s`,
        pass: slowest.gflops >= TARGET_GFLOPS,
      },
      {
        target: `${build}: GEMM ≥ ${TARGET_PCT_PEAK}% of the peak on every training shape`,
        measured:
          `lowest ${lowest.name} ${lowest.pctPeak?.toFixed(0)}% ` +
          `(quiet machine: ${lowest.bestPctPeak?.toFixed(0)}%)`,
        pass: (lowest.pctPeak ?? 0) >= TARGET_PCT_PEAK,
      },
    );
  }
  const epoch =
    training.find((t) => t.model === 'mlp-256-128' && t.build === auto.build && t.sparseInput)
      ?.medianEpochSeconds ?? NaN;
  checks.push({
    target: `mlp-256-128 epoch ≤ ${TARGET_EPOCH_SECONDS} s (${auto.build} build)`,
    measured: `${epoch.toFixed(2)} s`,
    pass: epoch <= TARGET_EPOCH_SECONDS,
  });
  const mlp = threads.filter((t) => t.model === 'mlp-256-128' && t.threads === 2);
  const twoThreads = mlp.find((t) => !t.halves);
  const ceiling = mlp.find((t) => t.halves)?.speedup;
  if (twoThreads?.speedup) {
    checks.push({
      target: `mlp-256-128 epoch with 2 threads ≥ ${TARGET_TWO_THREADS}× faster than with 1`,
      measured:
        `${twoThreads.speedup.toFixed(2)}×` +
        (ceiling ? ` (two independent half-epochs at once: ${ceiling.toFixed(2)}×)` : ''),
      pass: twoThreads.speedup >= TARGET_TWO_THREADS,
    });
  }
  console.log('\nTargets');
  for (const c of checks)
    console.log(`  ${c.pass ? 'met    ' : 'NOT met'}  ${c.target}: ${c.measured}`);

  const out = fileURLToPath(new URL('../../bench/results/latest.json', import.meta.url));
  mkdirSync(fileURLToPath(new URL('../../bench/results/', import.meta.url)), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify({ machine, quick, gemm, conv, training, threads, cores, checks }, null, 2) +
      '\n',
  );
  console.log(`\nwrote ${out}`);
}

await main();
