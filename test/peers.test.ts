/**
 * The peer benchmark harness end to end, in its smoke mode (the built dist/ entry, as
 * `npm run bench:peers -- --quick` runs it): 256 training images (tfjs-cpu: 32), 1 round, two workloads (an MLP
 * and LeNet-5, which also exercises a peer's failure path where it has one), engines mnist-wasm,
 * tfjs-wasm and tfjs-cpu. PyTorch is left out on purpose: CI machines have no python3-torch (the
 * harness then reports "skipped: …", which needs no test of its own to be visible). No speed is
 * asserted — only that the JSON has its structure and that every number is finite or is replaced
 * by an error string.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const harness = fileURLToPath(new URL('../dist/bench/peers.js', import.meta.url));
const out = join(mkdtempSync(join(tmpdir(), 'mnist-wasm-peers-')), 'peers.json');
const ENGINES = ['mnist-wasm', 'tfjs-wasm', 'tfjs-cpu'];
const WORKLOADS = ['mlp-128-64', 'lenet5'];

interface Row {
  workload: string;
  engine: string;
  status: string;
  error?: string;
  [key: string]: unknown;
}

/** Every row is either ok with finite numbers, or failed with the engine's error message. */
function expectFiniteOrError(row: Row, numbers: string[]): void {
  const where = `${row.workload} ${row.engine}`;
  if (row.status === 'ok') {
    for (const key of numbers) {
      expect(Number.isFinite(row[key]), `${where}: ${key} = ${String(row[key])}`).toBe(true);
    }
  } else {
    expect(row.status, where).toBe('failed');
    expect(typeof row.error, where).toBe('string');
    expect(row.error!.length, where).toBeGreaterThan(0);
  }
}

describe('npm run bench:peers -- --quick', () => {
  it('is built (npm run build)', () => {
    expect(existsSync(harness)).toBe(true);
  });

  it('runs every engine on a tiny slice and writes the JSON report', () => {
    const started = performance.now();
    const r = spawnSync(
      process.execPath,
      [
        harness,
        '--quick',
        '--engines',
        ENGINES.join(','),
        '--only',
        WORKLOADS.join(','),
        '--cpu-samples', // one step of tfjs-cpu LeNet-5 (≈2 s) instead of two
        '32',
        '--out',
        out,
      ],
      { encoding: 'utf8', timeout: 90_000 },
    );
    const seconds = (performance.now() - started) / 1000;
    expect(r.stderr).not.toMatch(/^error:/m);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Training \(one thread each\): /m);
    expect(r.stdout).toMatch(/^Inference \(one thread each\): /m);
    expect(seconds).toBeLessThan(90);

    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.machine).toMatchObject({ tfjs: '4.22.0', cores: expect.any(Number) });
    for (const key of ['cpu', 'node', 'v8', 'date', 'command'])
      expect(typeof report.machine[key], key).toBe('string');
    expect(report.settings).toMatchObject({ quick: true, rounds: 1, inferRounds: 1, threads: 1 });
    expect(report.engines['mnist-wasm'].threads).toBe(1);
    expect(Object.keys(report.engines)).toEqual(ENGINES);
    expect(typeof report.engines['tfjs-wasm'].threadsProbe.summary).toBe('string');
    expect(report.engines['mnist-wasm'].build).toMatch(/^(baseline|relaxed)$/);

    const training = report.training as Row[];
    const inference = report.inference as Row[];
    const pairs = WORKLOADS.flatMap((w) => ENGINES.map((e) => `${w} ${e}`));
    expect(training.map((t) => `${t.workload} ${t.engine}`)).toEqual(pairs);
    expect(inference.map((t) => `${t.workload} ${t.engine}`)).toEqual(pairs);
    for (const row of training) {
      expectFiniteOrError(row, ['epochSeconds', 'samplesPerSecond', 'testAccuracy', 'ratio']);
      if (row.status === 'ok') {
        expect(row.testAccuracy as number).toBeGreaterThanOrEqual(0);
        expect(row.testAccuracy as number).toBeLessThanOrEqual(1);
        // A 256-image "epoch" is extrapolated to 60,000 and says so.
        expect(row.extrapolated).toBe(true);
        expect((row.seconds as number[]).length).toBe(1);
      }
    }
    for (const row of inference) expectFiniteOrError(row, ['imagesPerSecond', 'ratio']);
    // mnist-wasm is the baseline of every ratio: it must run everything.
    for (const row of [...training, ...inference].filter((t) => t.engine === 'mnist-wasm')) {
      expect(row.status).toBe('ok');
      expect(row.ratio).toBe(1);
    }
  });
});
