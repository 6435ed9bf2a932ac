/**
 * Checkpoint and resume through the real CLI in child processes: a run killed mid-epoch (SIGTERM,
 * which writes a mid-epoch checkpoint, and SIGKILL, which leaves the last epoch's one) and resumed
 * with `train --resume` writes a model file byte-identical to the uninterrupted run's. Needs the
 * build (dist/), which `npm test` makes first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from '../src/io/checkpoint.js';

const cli = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'mnist-wasm-resume-'));
/** Batch 1 on 2,000 images: epochs of a few seconds, so a signal lands well inside one. */
const RUN = [
  'train',
  '--quick',
  '--model',
  'mlp-256-128',
  '--batch',
  '1',
  '--epochs',
  '2',
  '--limit',
  '2000',
  '--seed',
  '3',
  '--test-every',
  '0',
  '--no-progress',
];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function start(args: string[]): { child: ChildProcess; done: Promise<Exit> } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

const run = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });

/** Resolves once `path` exists (the epoch-1 checkpoint: the child is now inside epoch 2). */
async function appears(path: string, child: ChildProcess): Promise<void> {
  while (!existsSync(path)) {
    if (child.exitCode !== null) throw new Error(`child exited (${child.exitCode}) before ${path}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const checkpointOf = (d: string) => {
  const path = join(d, 'checkpoint.safetensors');
  return decodeCheckpoint(readFileSync(path), path).checkpoint;
};

let reference: Buffer;
beforeAll(async () => {
  const whole = start([...RUN, '--out', join(dir, 'whole.safetensors')]);
  const exit = await whole.done;
  expect(exit.stderr).toBe('');
  expect(exit.code).toBe(0);
  reference = readFileSync(join(dir, 'whole.safetensors'));
}, 120_000);

afterAll(() => {
  // Leave nothing running if a test failed half-way.
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});
const children: ChildProcess[] = [];

describe('train --checkpoint, killed, then --resume', () => {
  it('SIGTERM mid-epoch: a mid-epoch checkpoint, exit 143, and a bit-identical resumed model', async () => {
    const ck = join(dir, 'term');
    const { child, done } = start([...RUN, '--checkpoint', ck, '--out', join(ck, 'm.safetensors')]);
    children.push(child);
    await appears(join(ck, 'checkpoint.safetensors'), child);
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    const exit = await done;
    expect(exit.code).toBe(143);
    const m =
      /stopped by SIGTERM; checkpoint saved to .*term \(epoch 2, batch (\d+)\); continue with: mnist-wasm train --resume .*term/.exec(
        exit.stderr,
      );
    expect(m, exit.stderr).not.toBeNull();
    const cp = checkpointOf(ck);
    expect(cp.epoch).toBe(2);
    expect(cp.batch).toBe(Number(m![1]));
    expect(cp.batch).toBeGreaterThan(0);
    expect(cp.batch).toBeLessThan(2000);
    expect(cp.history).toHaveLength(1);
    expect(existsSync(join(ck, 'm.safetensors'))).toBe(false); // no model from an unfinished run
    expect(readdirSync(ck)).toEqual(['checkpoint.safetensors']);
    // A run in progress can be evaluated and inspected straight from its checkpoint.
    const evaluated = run('evaluate', '--model', ck, '--quick', '--json');
    expect(evaluated.status, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout).accuracy).toBeGreaterThan(0.8);
    const info = run('info', '--model', ck);
    expect(info.stdout).toMatch(new RegExp(`checkpoint: epoch 2, batch ${cp.batch}`));

    const resumed = run(
      'train',
      '--resume',
      ck,
      '--out',
      join(ck, 'm.safetensors'),
      '--no-progress',
    );
    expect(resumed.stderr).toBe('');
    expect(resumed.status).toBe(0);
    expect(resumed.stdout).toMatch(
      new RegExp(`resuming from .*term at epoch 2, batch ${cp.batch} of 2000`),
    );
    expect(resumed.stdout).toMatch(/after 2 epochs/);
    expect(readFileSync(join(ck, 'm.safetensors')).equals(reference)).toBe(true);
    // It kept checkpointing into the same folder: now at the end of the run.
    expect(checkpointOf(ck)).toMatchObject({ epoch: 3, batch: 0 });
  }, 120_000);

  it('SIGKILL (no chance to save): resumes from the last epoch checkpoint, bit-identical', async () => {
    const ck = join(dir, 'kill');
    const { child, done } = start([...RUN, '--checkpoint', ck]);
    children.push(child);
    await appears(join(ck, 'checkpoint.safetensors'), child);
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    expect(checkpointOf(ck)).toMatchObject({ epoch: 2, batch: 0 });
    const out = join(dir, 'kill.safetensors');
    const resumed = run('train', '--resume', ck, '--out', out, '--no-progress');
    expect(resumed.stderr).toBe('');
    expect(resumed.status).toBe(0);
    expect(readFileSync(out).equals(reference)).toBe(true);
  }, 120_000);

  it('--resume refuses options that would change the run, and unknown checkpoints', () => {
    const ck = join(dir, 'kill');
    const r = run('train', '--resume', ck, '--lr', '0.1', '--batch', '4');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /error: --resume continues the checkpoint's run exactly as it was, so --lr, --batch cannot be given/,
    );
    const missing = run('train', '--resume', join(dir, 'nowhere'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^error: checkpoint .*nowhere does not exist\n$/);
    const empty = run('train', '--resume', dir);
    expect(empty.stderr).toMatch(/error: no checkpoint in .* \(checkpoint.safetensors is missing/);
    const model = run('train', '--resume', join(dir, 'whole.safetensors'));
    expect(model.stderr).toMatch(/error: .*whole.safetensors: not an mnist-wasm checkpoint/);
  });

  it('Ctrl-C without --checkpoint stops cleanly, says nothing was saved, exits 130', async () => {
    const { child, done } = start([...RUN, '--out', join(dir, 'never.safetensors')]);
    children.push(child);
    // Its first line comes after the signal handlers are installed (they are the first thing).
    await new Promise((r) => child.stdout!.once('data', r));
    child.kill('SIGINT');
    const exit = await done;
    expect(exit.code).toBe(130);
    expect(exit.stderr).toMatch(
      /^stopped by SIGINT; nothing was saved \(train with --checkpoint DIR to be able to resume\)\n$/,
    );
    expect(existsSync(join(dir, 'never.safetensors'))).toBe(false);
  }, 60_000);
});
