/**
 * The one error type of the data layer. Every problem with a user's file (missing, wrong format,
 * truncated, wrong size) is a DataError whose message names the file, what was found and what was
 * expected, so the CLI can print `error: <message>` without a stack trace. Programming errors
 * (bad arguments from our own code) stay RangeError/TypeError.
 */
import { existsSync } from 'node:fs';

/** A problem with input data, worded for the person who supplied it. */
export class DataError extends Error {
  override name = 'DataError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Translates a node:fs failure on `path` into a DataError that says what went wrong. */
export function fileError(path: string, error: unknown): DataError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT': {
      const sibling = path.endsWith('.gz') ? path.slice(0, -3) : `${path}.gz`;
      const hint = existsSync(sibling) ? ` (but ${sibling} exists)` : '';
      return new DataError(`${path}: file not found${hint}`, { cause: error });
    }
    case 'EISDIR':
      return new DataError(`${path}: is a folder, expected a file`, { cause: error });
    case 'EACCES':
    case 'EPERM':
      return new DataError(`${path}: permission denied`, { cause: error });
    default:
      return new DataError(`${path}: cannot read (${(error as Error).message})`, { cause: error });
  }
}
