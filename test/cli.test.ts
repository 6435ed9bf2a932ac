/**
 * The mnist-wasm command end to end (the built dist/ entry, as users run it): a tiny train run
 * writes a model that evaluate, predict and info read; bad input exits non-zero with one clear line.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encodePgm } from '../src/data/image.js';
import { loadMnistQuick } from '../src/data/mnist.js';

const cli = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'mnist-wasm-cli-'));
writeFileSync(join(dir, 'a-file'), 'not a folder');

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('mnist-wasm CLI', () => {
  it('is built (npm run build)', () => {
    expect(existsSync(cli)).toBe(true);
  });

  const model = join(dir, 'models', 'tiny.safetensors');

  it('train --json on a tiny run prints one JSON summary and writes the model (creating its folder)', () => {
    const r = run(
      'train',
      '--model',
      'mlp-40',
      '--quick',
      '--limit',
      '2000',
      '--epochs',
      '2',
      '--batch',
      '16',
      '--seed',
      '3',
      '--out',
      model,
      '--json',
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!);
    expect(summary).toMatchObject({ model: 'mlp-40', seed: 3, trainCount: 2000 });
    expect(summary.testAccuracy).toBeGreaterThan(0.8);
    expect(summary.testLoss).toBeGreaterThan(0);
    expect(summary.epochs).toHaveLength(2);
    for (const key of [
      'trainLoss',
      'trainAccuracy',
      'testAccuracy',
      'seconds',
      'samplesPerSecond',
    ]) {
      expect(typeof summary.epochs[1][key]).toBe('number');
    }
    expect(existsSync(model)).toBe(true);
  });

  it('train without --json prints the epoch table and a final line', () => {
    const r = run(
      'train',
      '--model',
      'mlp-40',
      '--quick',
      '--limit',
      '500',
      '--epochs',
      '1',
      '--optimizer',
      'sgd',
      '--lr',
      '0.1',
      '--momentum',
      '0.9',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /epoch\s+train loss\s+train acc\s+test loss\s+test acc\s+seconds\s+samples\/s/,
    );
    expect(r.stdout).toMatch(/^test accuracy \d+\.\d\d% \(loss \d/m);
  });

  it('evaluate reads the model and agrees with the training summary', () => {
    const r = run('evaluate', '--model', model, '--quick', '--json');
    expect(r.code).toBe(0);
    const ev = JSON.parse(r.stdout);
    expect(ev.count).toBe(loadMnistQuick().test.count);
    expect(ev.confusion).toHaveLength(10);
    const text = run('evaluate', '--model', model, '--quick');
    expect(text.stdout).toMatch(/confusion matrix/);
  });

  it('predict classifies a dataset index and a PGM image', () => {
    const r = run('predict', '--model', model, '--quick', '--index', '0', '--json');
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p.probabilities).toHaveLength(10);
    expect(p.predicted).toBe(p.probabilities.indexOf(Math.max(...p.probabilities)));
    const quick = loadMnistQuick();
    const image = join(dir, 'digit.pgm');
    writeFileSync(image, encodePgm(quick.test.images.subarray(0, 784), 28, 28));
    const fromFile = JSON.parse(
      run('predict', '--model', model, '--image', image, '--json').stdout,
    );
    expect(fromFile.probabilities).toEqual(p.probabilities);
  });

  it('info shows the architecture and the training metadata', () => {
    const r = run('info', '--model', model);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('784-40-10');
    expect(r.stdout).toContain('total parameters: 31,810');
    expect(r.stdout).toMatch(/seed: 3/);
  });

  it('compare-activations trains one model per activation and writes a table, JSON curves and an SVG plot', () => {
    const prefix = join(dir, 'cmp', 'acts');
    const r = run(
      'compare-activations',
      '--model',
      'mlp-40',
      '--activations',
      'relu,elu,tanh',
      '--quick',
      '--limit',
      '600',
      '--epochs',
      '2',
      '--seed',
      '9',
      '--out',
      prefix,
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /activation\s+final test acc\s+best test acc \(epoch\)\s+train seconds/,
    );
    for (const act of ['relu', 'elu', 'tanh'])
      expect(r.stdout).toMatch(new RegExp(`^${act}\\s+\\d+\\.\\d\\d%`, 'm'));
    const report = JSON.parse(readFileSync(`${prefix}.json`, 'utf8'));
    expect(report.runs.map((x: { label: string }) => x.label)).toEqual(['relu', 'elu', 'tanh']);
    expect(report.runs[0].history).toHaveLength(2);
    const svg = readFileSync(`${prefix}.svg`, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const act of ['relu', 'elu', 'tanh']) expect(svg).toContain(`>${act}<`);
    expect(run('compare-activations', '--activations', 'relu,gelu', '--quick').stderr).toMatch(
      /unknown activation "gelu"/,
    );
  });

  it('sweep-lr runs a recipe once per learning rate into one plot (the full-batch sweep, shortened)', () => {
    const prefix = join(dir, 'sweep');
    const r = run(
      'sweep-lr',
      '--recipe',
      'fullbatch-128',
      '--lrs',
      '0.01,0.7,1.5',
      '--quick',
      '--limit',
      '500',
      '--epochs',
      '4',
      '--test-every',
      '2',
      '--out',
      prefix,
    );
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/learning rate\s+final test acc/);
    const report = JSON.parse(readFileSync(`${prefix}.json`, 'utf8'));
    expect(report.runs.map((x: { label: string }) => x.label)).toEqual([
      'lr 0.01',
      'lr 0.7',
      'lr 1.5',
    ]);
    expect(report.runs[0].history).toHaveLength(4);
    expect(report.batchSize).toBe('full');
    const svg = readFileSync(`${prefix}.svg`, 'utf8');
    for (const lr of ['lr 0.01', 'lr 0.7', 'lr 1.5']) expect(svg).toContain(`>${lr}<`);
    expect(run('sweep-lr', '--lrs', '0.1,fast', '--quick').stderr).toMatch(
      /learning rate "fast" is not a positive number/,
    );
  });

  it('train --plot writes the curves as SVG', () => {
    const plot = join(dir, 'curves.svg');
    const r = run(
      'train',
      '--model',
      'mlp-40',
      '--quick',
      '--limit',
      '300',
      '--epochs',
      '2',
      '--plot',
      plot,
    );
    expect(r.code).toBe(0);
    expect(readFileSync(plot, 'utf8')).toMatch(/^<svg[\s\S]*accuracy[\s\S]*<\/svg>$/);
  });

  const bad: [string, string[], RegExp][] = [
    ['an unknown option', ['train', '--epoch', '3'], /unknown option '--epoch'/],
    ['an unknown preset', ['train', '--model', 'mlp-7', '--quick'], /unknown model "mlp-7"/],
    [
      'a bad learning rate',
      ['train', '--lr', 'fast'],
      /--lr must be a positive number, got "fast"/,
    ],
    ['a bad batch size', ['train', '--batch', '0'], /--batch must be a positive integer/],
    ['an unknown optimizer', ['train', '--optimizer', 'lion'], /'lion' is invalid|Allowed choices/],
    ['an unknown recipe', ['train', '--recipe', 'nope'], /unknown recipe "nope"/],
    [
      'a missing data folder',
      ['train', '--data', join(dir, 'nothing-here'), '--epochs', '1'],
      /nothing-here/,
    ],
    [
      'an unwritable output path',
      ['train', '--quick', '--out', join(dir, 'a-file', 'm.safetensors')],
      /cannot write .*a-file.*cannot create directory/,
    ],
    [
      'a missing model file',
      ['evaluate', '--model', join(dir, 'none.safetensors'), '--quick'],
      /does not exist/,
    ],
    [
      'a memory limit too small for the run',
      ['train', '--quick', '--model', 'mlp-40', '--max-memory', '4MB'],
      /needs .* more than the memory limit of 3\.8 MiB/,
    ],
    ['a malformed memory limit', ['train', '--max-memory', 'lots'], /--max-memory must be a size/],
    [
      'an out-of-range index',
      ['predict', '--model', model, '--quick', '--index', '99999'],
      /out of range/,
    ],
  ];
  it.each(bad)('%s: non-zero exit and one clear line, no stack trace', (_name, args, message) => {
    const r = run(...args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('--debug adds the stack trace to the one-line message', () => {
    const args = ['evaluate', '--model', join(dir, 'none.safetensors'), '--quick'];
    const plain = run(...args);
    const debug = run(...args, '--debug');
    expect(plain.stderr).toMatch(/^error: model file .*none.safetensors does not exist\n$/);
    expect(debug.code).toBe(1);
    expect(debug.stderr.startsWith(plain.stderr)).toBe(true);
    expect(debug.stderr).toMatch(
      /\nModelFileError: model file .* does not exist\n\s+at readFileBytes /,
    );
  });

  it('a corrupt model file is rejected and a failed run leaves no file behind', () => {
    const corrupt = join(dir, 'corrupt.safetensors');
    writeFileSync(corrupt, 'this is not a model');
    const r = run('info', '--model', corrupt);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*corrupt\.safetensors: /);
    const out = join(dir, 'out');
    mkdirSync(out);
    const diverged = run(
      'train',
      '--model',
      'mlp-40',
      '--quick',
      '--limit',
      '300',
      '--optimizer',
      'sgd',
      '--lr',
      '1e30',
      '--epochs',
      '1',
      '--out',
      join(out, 'm.safetensors'),
    );
    expect(diverged.code).toBe(1);
    expect(diverged.stderr).toMatch(/diverged.*epoch 1, batch \d+/);
    expect(readdirSync(out)).toEqual([]);
  });
});
