/**
 * `npm run bench`: GEMM GFLOP/s for every shape of a batch-32 mlp-256-128 training step, LeNet-5's
 * convolutions, and training throughput of every preset on the genuine MNIST, single-threaded. Prints tables, checks
 * the targets of the engine issue, and writes everything to bench/results/latest.json.
 *
 *   npm run bench                 # full run (~5 minutes)
 *   npm run bench -- --quick      # fewer rounds and epochs, for a smoke check
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../src/data/mnist.js';
import { benchConv, formatConvTable } from './conv.js';
import { benchGemm, formatGemmTable } from './gemm.js';
import { benchTraining, formatTrainingTable } from './training.js';

const TARGET_GFLOPS = 15;
const TARGET_EPOCH_SECONDS = 4;

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    v8: process.versions.v8,
    date: new Date().toISOString(),
  };
  console.log(
    `mnist-wasm benchmarks — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, single-threaded\n`,
  );

  console.log('GEMM (warm caches, packing included; median of interleaved rounds)');
  const gemm = await benchGemm(quick ? { rounds: 3 } : {});
  console.log(formatGemmTable(gemm));

  console.log('\nConvolution (LeNet-5 layers, batch 32)');
  const conv = benchConv();
  console.log(formatConvTable(conv));

  console.log('\nTraining (Adam, batch 32, 60,000 MNIST images)');
  const training = benchTraining(loadMnist(), {
    epochs: quick ? 1 : 3,
    epochModels: ['mlp-256-128', 'lenet5'],
  });
  console.log(formatTrainingTable(training));

  const wasmGemm = gemm.filter((g) => g.layout !== 'js');
  const slowest = wasmGemm.reduce((a, b) => (b.gflops < a.gflops ? b : a));
  const epoch = training.find((t) => t.model === 'mlp-256-128')?.medianEpochSeconds ?? NaN;
  const checks = [
    {
      target: `GEMM ≥ ${TARGET_GFLOPS} GFLOP/s on every training shape`,
      measured: `slowest ${slowest.name} ${slowest.gflops.toFixed(1)} GFLOP/s`,
      pass: slowest.gflops >= TARGET_GFLOPS,
    },
    {
      target: `mlp-256-128 epoch ≤ ${TARGET_EPOCH_SECONDS} s`,
      measured: `${epoch.toFixed(2)} s`,
      pass: epoch <= TARGET_EPOCH_SECONDS,
    },
  ];
  console.log('\nTargets');
  for (const c of checks)
    console.log(`  ${c.pass ? 'met    ' : 'NOT met'}  ${c.target}: ${c.measured}`);

  const out = fileURLToPath(new URL('../../bench/results/latest.json', import.meta.url));
  mkdirSync(fileURLToPath(new URL('../../bench/results/', import.meta.url)), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify({ machine, quick, gemm, conv, training, checks }, null, 2) + '\n',
  );
  console.log(`\nwrote ${out}`);
}

await main();
