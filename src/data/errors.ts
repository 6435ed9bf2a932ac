/**
 * The one error type of the data layer. Every problem with a user's file (missing, wrong format,
 * truncated, wrong size) is a DataError whose message names the file, what was found and what was
 * expected, so the CLI can print `error: <message>` without a stack trace. Programming errors
 * (bad arguments from our own code) stay RangeError/TypeError. No Node imports: the browser entry
 * uses it too; the file-system error translation `fileError` lives in `idx.ts`.
 */

/** A problem with input data, worded for the person who supplied it. */
export class DataError extends Error {
  override name = 'DataError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
