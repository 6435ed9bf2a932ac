/**
 * A checkpoint write that fails — full disk, read-only file system, no permission — keeps the
 * previous checkpoint byte for byte, leaves no temporary file, and says why; training goes on and
 * the run reports which checkpoint the folder still holds. The faults are injected into `node:fs`
 * (this file mocks it), so they happen exactly where a real disk would fail: in the middle of the
 * write, or when the temporary file is created. A second test fills a real (tmpfs) disk where the
 * machine allows private mounts.
 */
import { spawnSync } from 'node:child_process';
import * as realFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

/** The fault to inject: the errno code, and where. */
const fault: { code?: string; at?: 'open' | 'write'; afterBytes?: number } = {};

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const fail = (code: string): never => {
    throw Object.assign(new Error(`${code}: injected fault`), { code });
  };
  let written = 0;
  return {
    ...actual,
    openSync: (...args: Parameters<typeof actual.openSync>) => {
      if (fault.code && fault.at === 'open' && args[1] === 'wx') fail(fault.code);
      written = 0;
      return actual.openSync(...args);
    },
    writeSync: (fd: number, data: Uint8Array, offset: number, length: number) => {
      if (fault.code && fault.at === 'write') {
        // Write part of the data for real first, as a disk that fills up does.
        const room = Math.max(0, (fault.afterBytes ?? 0) - written);
        if (room === 0) fail(fault.code);
        const n = actual.writeSync(fd, data, offset, Math.min(room, length));
        written += n;
        return n;
      }
      return actual.writeSync(fd, data, offset, length);
    },
  };
});

const { loadMnistQuick } = await import('../src/data/mnist.js');
const { subset } = await import('../src/data/dataset.js');
const { createModel } = await import('../src/nn/create.js');
const { fit } = await import('../src/train/fit.js');
const { loadCheckpoint, saveCheckpoint } = await import('../src/io/files.js');
const { main } = await import('../src/cli/program.js');

afterEach(() => {
  delete fault.code;
  delete fault.at;
  delete fault.afterBytes;
});

const quick = loadMnistQuick();
const data = { train: subset(quick.train, 0, 600), test: subset(quick.test, 0, 200) };

describe('a failed checkpoint write keeps the previous checkpoint', () => {
  const dir = realFs.mkdtempSync(join(tmpdir(), 'mnist-wasm-ckfault-'));
  const model = createModel('mlp-40', { seed: 1 });
  const checkpoints: Parameters<typeof saveCheckpoint>[2][] = [];
  fit(model, data, {
    epochs: 2,
    batchSize: 32,
    optimizer: { type: 'adam', learningRate: 1e-3 },
    onCheckpoint: (cp) => checkpoints.push(cp),
  });
  const path = saveCheckpoint(dir, model, checkpoints[0]!);
  const before = realFs.readFileSync(path);

  const cases = [
    { code: 'ENOSPC', at: 'write', afterBytes: 100_000, says: 'no space left on the device' },
    { code: 'ENOSPC', at: 'write', afterBytes: 0, says: 'no space left on the device' },
    { code: 'EROFS', at: 'open', says: 'the file system is read-only' },
    { code: 'EACCES', at: 'open', says: `permission denied in ${dir}` },
  ] as const;
  for (const c of cases) {
    it(`${c.code} ${c.at === 'write' ? `after ${c.afterBytes} bytes` : 'creating the file'}`, () => {
      Object.assign(fault, c);
      expect(() => saveCheckpoint(dir, model, checkpoints[1]!)).toThrow(
        `cannot write ${path}: ${c.says} (nothing was written)`,
      );
      expect(realFs.readFileSync(path).equals(before)).toBe(true);
      expect(realFs.readdirSync(dir)).toEqual(['checkpoint.safetensors']);
      expect(loadCheckpoint(dir).checkpoint.epoch).toBe(2);
    });
  }

  it('the CLI warns, trains on, and names the checkpoint the folder still holds', async () => {
    const ck = realFs.mkdtempSync(join(tmpdir(), 'mnist-wasm-ckcli-'));
    const err: string[] = [];
    const out: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err.push(String(s));
      return true;
    });
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.push(String(s));
      // The disk fills up once the first epoch's row is printed (its checkpoint comes just after).
      if (String(s).startsWith('  2 ')) Object.assign(fault, { code: 'ENOSPC', at: 'write' });
      return true;
    });
    let code: number;
    try {
      code = await main([
        'train',
        '--quick',
        '--model',
        'mlp-40',
        '--epochs',
        '3',
        '--limit',
        '600',
        '--no-progress',
        '--checkpoint',
        ck,
      ]);
    } finally {
      stderr.mockRestore();
      stdout.mockRestore();
    }
    expect(code, err.join('')).toBe(0);
    expect(err.join('')).toBe(
      `warning: checkpoint not saved: cannot write ${join(ck, 'checkpoint.safetensors')}: no space left on the device (nothing was written); ${ck} still holds the end of epoch 1\n`.repeat(
        2,
      ),
    );
    expect(out.join('')).toMatch(/after 3 epochs/);
    expect(loadCheckpoint(ck).checkpoint).toMatchObject({ epoch: 2, batch: 0 });
    expect(realFs.readdirSync(ck)).toEqual(['checkpoint.safetensors']);
  });
});

/** Private mount namespaces (unshare -rm) let a test fill a real tmpfs without touching the host. */
const canMount =
  spawnSync('unshare', ['-rm', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs ${tmpdir()}`])
    .status === 0;

describe.runIf(canMount)('a really full disk (tmpfs in a private mount namespace)', () => {
  it('the second checkpoint does not fit: the first survives intact; read-only refuses up front', () => {
    const cli = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js');
    const outside = realFs.mkdtempSync(join(tmpdir(), 'mnist-wasm-full-'));
    const disk = join(outside, 'disk');
    realFs.mkdirSync(disk);
    // mlp-40's checkpoint is ≈ 510 kB: room for one, not for a second beside it (atomic writes
    // need the new file complete before the old one goes).
    const script = [
      `mount -t tmpfs -o size=800k tmpfs "${disk}"`,
      `"${process.execPath}" "${cli}" train --quick --model mlp-40 --epochs 3 --limit 600 --no-progress --checkpoint "${disk}"`,
      'echo "exit=$?"',
      `ls -a "${disk}"`,
      `cp "${disk}/checkpoint.safetensors" "${outside}/survivor.safetensors"`,
      // Now the same disk read-only: resuming into it is refused before any training; resuming
      // from it into a writable folder works.
      `mount -o remount,ro "${disk}"`,
      `"${process.execPath}" "${cli}" train --resume "${disk}" --no-progress; echo "ro-exit=$?"`,
      `"${process.execPath}" "${cli}" train --resume "${disk}" --checkpoint "${outside}/moved" --no-progress > /dev/null; echo "moved-exit=$?"`,
    ].join('; ');
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', script], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/exit=0/);
    expect(r.stderr).toMatch(
      /warning: checkpoint not saved: cannot write .*checkpoint.safetensors: no space left on the device \(nothing was written\); .* still holds the end of epoch 1/,
    );
    expect(r.stdout.split('\n').filter((l) => l.includes('.tmp'))).toEqual([]);
    const survivor = loadCheckpoint(join(outside, 'survivor.safetensors'));
    expect(survivor.checkpoint).toMatchObject({ epoch: 2, batch: 0 });
    expect(r.stdout).toMatch(/ro-exit=1/);
    expect(r.stderr).toMatch(
      /error: cannot write .*disk\/checkpoint.safetensors: the file system is read-only\n/,
    );
    expect(r.stdout).toMatch(/moved-exit=0/);
    expect(loadCheckpoint(join(outside, 'moved')).checkpoint).toMatchObject({ epoch: 4, batch: 0 });
  });
});
