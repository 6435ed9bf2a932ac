/**
 * The seam between the TypeScript host and the AssemblyScript kernels.
 *
 * One `Engine` is one WebAssembly instance with its own linear memory. The host owns the memory
 * layout: it reserves byte ranges with `reserve` (a bump allocator that never frees below a mark)
 * and passes raw byte offsets to the kernels, which never allocate. Growing a non-shared memory
 * detaches every view of it, so views are only ever made through `f32`/`i32`/`u8` *after* the
 * layout is reserved, and holders of cached views compare `buffer` to know when to refresh them.
 */
import { instantiate, instantiateSync } from '@assemblyscript/loader';
import type { Kernels } from './kernels.js';

const PAGE_BYTES = 65536;
/** wasm32 limit: 65,536 pages of 64 KiB = 4 GiB. */
const MAX_PAGES = 65536;
/** Every reservation is aligned to a cache line so SIMD loads never straddle one needlessly. */
export const ALIGN = 64;

/** Engine options: `maxMemoryBytes` caps the linear memory (default and ceiling: 4 GiB). */
export interface EngineOptions {
  maxMemoryBytes?: number;
}

function maxPagesOf(options: EngineOptions): number {
  const bytes = options.maxMemoryBytes;
  if (bytes === undefined) return MAX_PAGES;
  if (!Number.isFinite(bytes) || bytes < PAGE_BYTES) {
    throw new RangeError(`the memory limit must be at least 64 KiB, got ${bytes} bytes`);
  }
  return Math.min(MAX_PAGES, Math.floor(bytes / PAGE_BYTES));
}

function newMemory(maxPages: number): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 1, maximum: maxPages });
}

function imports(memory: WebAssembly.Memory) {
  return {
    env: {
      memory,
      abort: (_msg: number, _file: number, line: number, column: number) => {
        throw new Error(`mnist-wasm kernel aborted at ${line}:${column}`);
      },
    },
  };
}

export class OutOfMemoryError extends Error {
  override name = 'OutOfMemoryError';
}

export class Engine {
  readonly memory: WebAssembly.Memory;
  readonly kernels: Kernels;
  /** First byte the host may use (after the module's static data), aligned. */
  readonly heapBase: number;
  private top: number;
  /** The most pages this engine may grow to (its memory limit / 64 KiB). */
  readonly maxPages: number;

  /** Wrap an instance whose `env.memory` import is `memory` (use the static factories). */
  constructor(instance: WebAssembly.Instance, memory: WebAssembly.Memory, maxPages = MAX_PAGES) {
    this.memory = memory;
    this.maxPages = maxPages;
    // The raw exports, not the loader's demangled wrappers: kernels take only numbers.
    this.kernels = instance.exports as unknown as Kernels;
    this.heapBase = alignUp(this.kernels.heap_base(), ALIGN);
    this.top = this.heapBase;
  }

  /** A new engine from a compiled module, instantiated synchronously (Node, workers). */
  static fromModule(module: WebAssembly.Module, options: EngineOptions = {}): Engine {
    const maxPages = maxPagesOf(options);
    const memory = newMemory(maxPages);
    const { instance } = instantiateSync<Record<string, unknown>>(module, imports(memory));
    return new Engine(instance, memory, maxPages);
  }

  /** The same, asynchronously: required on a browser page's main thread for large modules. */
  static async fromModuleAsync(
    module: WebAssembly.Module,
    options: EngineOptions = {},
  ): Promise<Engine> {
    const maxPages = maxPagesOf(options);
    const memory = newMemory(maxPages);
    const { instance } = await instantiate<Record<string, unknown>>(module, imports(memory));
    return new Engine(instance, memory, maxPages);
  }

  /** The current end of reserved memory; pass to `release` to free everything reserved after it. */
  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    if (mark < this.heapBase || mark > this.top) throw new RangeError(`bad arena mark ${mark}`);
    this.top = mark;
  }

  /**
   * Reserve `bytes` (aligned to ALIGN) and grow memory once if needed. Returns the byte offset.
   * Throws OutOfMemoryError with the sizes involved when wasm32 cannot hold it.
   */
  reserve(bytes: number, what = 'buffer'): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`cannot reserve ${bytes} bytes`);
    const offset = this.top;
    const end = alignUp(offset + bytes, ALIGN);
    this.ensure(end, what);
    this.top = end;
    return offset;
  }

  /** Make sure the memory holds at least `bytes` bytes, growing it once. */
  ensure(bytes: number, what = 'buffer'): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    const pages = Math.ceil(bytes / PAGE_BYTES);
    if (pages > this.maxPages) {
      const limit =
        this.maxPages === MAX_PAGES
          ? 'the 4 GiB a wasm32 module can address'
          : `the memory limit of ${formatBytes(this.maxPages * PAGE_BYTES)}`;
      throw new OutOfMemoryError(
        `${what} needs ${formatBytes(bytes)} (${bytes} bytes) of WebAssembly memory, more than ` +
          `${limit}; use a smaller batch size or model`,
      );
    }
    try {
      this.memory.grow(pages - have / PAGE_BYTES);
    } catch {
      throw new OutOfMemoryError(
        `${what} needs ${formatBytes(bytes)} of WebAssembly memory and the runtime refused to ` +
          `grow it beyond ${formatBytes(have)}; use a smaller batch size or model`,
      );
    }
  }

  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, length);
  }

  i32(offset: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, offset, length);
  }

  u8(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, offset, length);
  }
}

export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}
