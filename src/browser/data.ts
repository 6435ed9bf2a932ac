/**
 * Dataset loading in a browser or worker: the four IDX files (gzip-compressed) from the page's own
 * origin, decompressed with the platform's DecompressionStream and parsed by the same validating
 * IDX parser the CLI uses. Progress is reported in compressed bytes.
 */
import type { DataSplit } from '../data/dataset.js';
import { isGzip, parseIdxImages, parseIdxLabels } from '../data/idx-format.js';
import type { DatasetName } from './protocol.js';

const FILES = [
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
] as const;

/** Folder (under the data base URL) of each dataset: `mnist` = the genuine 60k/10k, `quick` = 8k/2k. */
export const DATASET_FOLDERS: Record<DatasetName, string> = { mnist: 'mnist', quick: 'quick' };

/**
 * The file's IDX bytes. Servers differ: some send `.gz` files as they are, others with
 * `Content-Encoding: gzip` so the browser has already inflated them — so look at the bytes
 * (gzip magic 1f 8b) rather than at the name or the headers.
 */
async function fetchIdxGz(
  url: string,
  onBytes: (n: number) => void,
): Promise<{ bytes: Uint8Array; total: number }> {
  const response = await fetch(url);
  if (!response.ok || !response.body)
    throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get('content-length') ?? 0);
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    length += value.byteLength;
    onBytes(value.byteLength);
  }
  let bytes = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  if (isGzip(bytes)) {
    const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    bytes = new Uint8Array(await new Response(inflated).arrayBuffer());
  }
  return { bytes, total: Math.max(total, length) };
}

/** Fetch and parse a dataset; `onProgress(loadedBytes, totalBytes)` while downloading. */
export async function fetchDataset(
  dataset: DatasetName,
  baseUrl: string,
  onProgress?: (loaded: number, total: number) => void,
): Promise<DataSplit> {
  const folder = new URL(`${DATASET_FOLDERS[dataset]}/`, new URL(baseUrl, self.location.href));
  let loaded = 0;
  const totals = [0, 0, 0, 0];
  const results = await Promise.all(
    FILES.map(async (name, i) => {
      const url = new URL(`${name}.gz`, folder).href;
      const r = await fetchIdxGz(url, (n) => {
        loaded += n;
        onProgress?.(
          loaded,
          totals.reduce((a, b) => a + b, 0),
        );
      });
      totals[i] = r.total;
      return { name, bytes: r.bytes };
    }),
  );
  const [trainImages, trainLabels, testImages, testLabels] = results;
  const ti = parseIdxImages(trainImages!.bytes, trainImages!.name);
  const tl = parseIdxLabels(trainLabels!.bytes, trainLabels!.name);
  const si = parseIdxImages(testImages!.bytes, testImages!.name);
  const sl = parseIdxLabels(testLabels!.bytes, testLabels!.name);
  if (ti.count !== tl.count || si.count !== sl.count) {
    throw new Error(
      `${dataset}: image and label counts differ (${ti.count}/${tl.count}, ${si.count}/${sl.count})`,
    );
  }
  onProgress?.(loaded, loaded);
  return {
    source: `${dataset} (${folder.href})`,
    train: {
      name: `${dataset} train`,
      images: ti.images,
      labels: tl.labels,
      count: ti.count,
      rows: ti.rows,
      cols: ti.cols,
    },
    test: {
      name: `${dataset} test`,
      images: si.images,
      labels: sl.labels,
      count: si.count,
      rows: si.rows,
      cols: si.cols,
    },
  };
}
