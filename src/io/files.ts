/**
 * Node file I/O for models and reports: atomic writes (a temp file in the target directory, fsync,
 * then rename), so a crash or a full disk never leaves a half-written model behind.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Engine } from '../engine/engine.js';
import { createEngine } from '../engine/node.js';
import type { Model } from '../nn/model.js';
import { encodeModel, ModelFileError, modelFromBytes } from './safetensors.js';
import type { TrainingCheckpoint } from '../train/checkpoint.js';
import { CheckpointError } from '../train/checkpoint.js';
import {
  CHECKPOINT_FILE,
  decodeCheckpoint,
  encodeCheckpoint,
  isCheckpoint,
  modelFromCheckpoint,
  type CheckpointFile,
} from './checkpoint.js';

let tempCounter = 0;

/** Write `bytes` to `path` atomically; errors name the path and the reason in plain words. */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const target = resolve(path);
  const dir = dirname(target);
  if (!existsSync(dir))
    throw new ModelFileError(`cannot write ${path}: directory ${dir} does not exist`);
  const temp = join(dir, `.${basename(target)}.${process.pid}.${Date.now()}.${tempCounter++}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o644);
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, target);
    syncDirectory(dir);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    const err = e as NodeJS.ErrnoException;
    const reason =
      err.code === 'EACCES' || err.code === 'EPERM'
        ? `permission denied in ${dir}`
        : err.code === 'ENOSPC'
          ? 'no space left on the device'
          : err.code === 'EROFS'
            ? 'the file system is read-only'
            : err.message;
    throw new ModelFileError(`cannot write ${path}: ${reason} (nothing was written)`);
  }
}

/** Make a rename durable: fsync the directory that holds the entry (a no-op where unsupported). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot open or fsync a directory; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Fail early, before hours of training, if `path` could not be written. */
export function checkWritable(path: string): void {
  const target = resolve(path);
  const dir = dirname(target);
  let dirStat;
  try {
    dirStat = statSync(dir);
  } catch {
    throw new ModelFileError(`cannot write ${path}: directory ${dir} does not exist`);
  }
  if (!dirStat.isDirectory())
    throw new ModelFileError(`cannot write ${path}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new ModelFileError(
      (e as NodeJS.ErrnoException).code === 'EROFS'
        ? `cannot write ${path}: the file system is read-only`
        : `cannot write ${path}: permission denied in ${dir}`,
    );
  }
  try {
    if (statSync(target).isDirectory())
      throw new ModelFileError(`cannot write ${path}: it is a directory`);
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
  }
}

/** A whole file's bytes; a failure names the file (as `what`) and the reason in plain words. */
export function readFileBytes(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ModelFileError(
      err.code === 'ENOENT'
        ? `${what} ${path} does not exist`
        : err.code === 'EISDIR'
          ? `${what} ${path} is a directory`
          : `cannot read ${what} ${path}: ${err.message}`,
    );
  }
}

export function saveModel(model: Model, path: string): void {
  writeFileAtomic(path, encodeModel(model));
}

/**
 * A model file written by `saveModel` — or a checkpoint (its folder or file), whose current weights
 * are then loaded, so a run in progress can be evaluated.
 */
export function loadModel(path: string, engine: Engine = createEngine()): Model {
  if (existsSync(path) && statSync(path).isDirectory()) {
    return modelFromCheckpoint(loadCheckpoint(path), engine);
  }
  const bytes = readFileBytes(path, 'model file');
  if (isCheckpoint(bytes)) return modelFromCheckpoint(decodeCheckpoint(bytes, path), engine);
  return modelFromBytes(bytes, path, engine);
}

/** Write `checkpoint` as DIR/checkpoint.safetensors, atomically: a failure keeps the previous one. */
export function saveCheckpoint(
  dir: string,
  model: Model,
  checkpoint: TrainingCheckpoint,
  run: Record<string, unknown> = {},
): string {
  const path = join(dir, CHECKPOINT_FILE);
  writeFileAtomic(path, encodeCheckpoint(model.spec, model.metadata, checkpoint, run));
  return path;
}

/** Read DIR/checkpoint.safetensors (or a checkpoint file given directly). */
export function loadCheckpoint(dirOrFile: string): CheckpointFile {
  let path = dirOrFile;
  try {
    if (statSync(dirOrFile).isDirectory()) path = join(dirOrFile, CHECKPOINT_FILE);
  } catch {
    throw new CheckpointError(`checkpoint ${dirOrFile} does not exist`);
  }
  if (path !== dirOrFile && !existsSync(path)) {
    throw new CheckpointError(
      `no checkpoint in ${dirOrFile} (${CHECKPOINT_FILE} is missing; was the run started with --checkpoint?)`,
    );
  }
  return decodeCheckpoint(readFileBytes(path, 'checkpoint'), path);
}
