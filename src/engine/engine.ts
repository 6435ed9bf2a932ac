/**
 * The seam between the TypeScript host and the AssemblyScript kernels.
 *
 * One `Engine` is one WebAssembly instance with its own linear memory. The host owns the memory
 * layout: it reserves byte ranges with `reserve` (a bump allocator that never frees below a mark)
 * and passes raw byte offsets to the kernels, which never allocate. Growing a non-shared memory
 * detaches every view of it, so views are only ever made through `f32`/`i32`/`u8` *after* the
 * layout is reserved, and holders of cached views compare `buffer` to know when to refresh them.
 *
 * Two builds of the same kernels exist (asconfig.json, assembly/simd.ts): `baseline` (SIMD, runs
 * everywhere) and `relaxed` (relaxed SIMD: FMA in the GEMM and convolution kernels, ≈1.2× faster
 * training GEMMs). Loaders choose one with `resolveSimd` from the host's answer to
 * `WebAssembly.validate(relaxedBytes)`; an engine reports the one it runs as `build`. Results are
 * deterministic per build (FMA rounds once where mul + add rounds twice), so bit-for-bit
 * comparisons — Node vs browser, a resumed run vs an uninterrupted one — need the same build.
 */
import { instantiate, instantiateSync } from '@assemblyscript/loader';
import type { Kernels } from './kernels.js';
import { MAX_THREADS, type PoolCall, type ThreadPool } from './threads.js';

/**
 * How a kernel whose work is independent per image (or per element) splits into contiguous
 * ranges, one per thread, from its arguments `a`: the count at index `at` (images, or floats),
 * ranges cut at multiples of `align`, and each pointer argument [index, bytes per image or
 * float] moved to its range's start. Every output is computed by the same code as in one call.
 */
interface RangeSplit {
  at: number;
  align: number;
  ptrs: (a: readonly number[]) => readonly (readonly [number, number])[];
  /** Floats read and written per image (or float): a call below PARALLEL_RANGE_FLOATS stays whole. */
  floats: (a: readonly number[]) => number;
}

// Per image (NHWC): in/out floats of one image from the shapes among the arguments.
const pool2d = (outAt: number, argmaxAt: number, inAt: number, shape: number): RangeSplit => ({
  at: shape,
  align: 1,
  ptrs: (a) => {
    const [H, W, C] = [a[shape + 1]!, a[shape + 2]!, a[shape + 3]!];
    const outBytes = a[a.length - 2]! * a[a.length - 1]! * C * 4; // OH, OW are the last two
    const ptrs: [number, number][] = [
      [outAt, outBytes],
      [inAt, H * W * C * 4],
    ];
    if (argmaxAt >= 0) ptrs.push([argmaxAt, outBytes]);
    return ptrs;
  },
  floats: (a) => a[shape + 1]! * a[shape + 2]! * a[shape + 3]! * 2,
});
// im2col's cols (B·OH·OW, KH·KW·C) at colsAt and its images (B, H, W, C) at imageAt.
const patches = (colsAt: number, imageAt: number): RangeSplit => ({
  at: 2,
  align: 1,
  ptrs: (a) => [
    [colsAt, a[10]! * a[11]! * a[6]! * a[7]! * a[5]! * 4],
    [imageAt, a[3]! * a[4]! * a[5]! * 4],
  ],
  floats: (a) => a[10]! * a[11]! * a[6]! * a[7]! * a[5]!,
});
const elementwise = (ptrCount: number, at: number): RangeSplit => ({
  at,
  align: 16,
  ptrs: () => Array.from({ length: ptrCount }, (_, i) => [i, 4] as const),
  floats: () => ptrCount,
});

/** The kernels split by image or element range (RangeSplit) when a thread pool is attached. */
const RANGE_SPLITS = {
  // (out, inp, w, bias, B, H, W, OC, KH, KW, pad, OH, OW, flags): one input channel
  conv2d_direct_c1_forward: {
    at: 4,
    align: 1,
    ptrs: (a) => [
      [0, a[11]! * a[12]! * a[7]! * 4],
      [1, a[5]! * a[6]! * 4],
    ],
    floats: (a) => a[11]! * a[12]! * a[7]! * a[8]! * a[9]!,
  },
  // (dst, src, B, H, W, pad): the direct conv's input in a frame of zeros
  pad_images: {
    at: 2,
    align: 1,
    ptrs: (a) => [
      [0, (a[3]! + 2 * a[5]!) * (a[4]! + 2 * a[5]!) * 4],
      [1, a[3]! * a[4]! * 4],
    ],
    floats: (a) => a[3]! * a[4]! + (a[3]! + 2 * a[5]!) * (a[4]! + 2 * a[5]!),
  },
  // (cols, inp, B, H, W, C, KH, KW, stride, pad, OH, OW) and col2im (dinp, dcols, …)
  conv2d_im2col: patches(0, 1),
  conv2d_col2im: patches(1, 0),
  // (dinp, delta, wT, B, H, W, C, OC, KH, KW, stride, pad, OH, OW)
  conv2d_backward_input_scatter: {
    at: 3,
    align: 1,
    ptrs: (a) => [
      [0, a[4]! * a[5]! * a[6]! * 4],
      [1, a[12]! * a[13]! * a[7]! * 4],
    ],
    floats: (a) => a[4]! * a[5]! * a[6]! + a[12]! * a[13]! * a[7]!,
  },
  // (out, argmax, inp, B, H, W, C, K, stride, OH, OW); argmax is per image
  maxpool2d_forward: pool2d(0, 1, 2, 3),
  // (dinp, dout, argmax, B, H, W, C, OH, OW)
  maxpool2d_backward: pool2d(1, 2, 0, 3),
  // (out, inp, B, H, W, C, K, stride, OH, OW) and (dinp, dout, …)
  avgpool2d_forward: pool2d(0, -1, 1, 2),
  avgpool2d_backward: pool2d(1, -1, 0, 2),
  relu_forward: elementwise(2, 2),
  relu_backward: elementwise(3, 3),
  leaky_relu_forward: elementwise(2, 2),
  leaky_relu_backward: elementwise(3, 3),
  elu_forward: elementwise(2, 2),
  elu_backward: elementwise(3, 3),
  sigmoid_forward: elementwise(2, 2),
  sigmoid_backward: elementwise(3, 3),
  tanh_forward: elementwise(2, 2),
  tanh_backward: elementwise(3, 3),
  dropout_apply: elementwise(3, 3),
  // (dst, images, indices, B, D, scale): D bytes read and D floats written per image
  gather_normalize_u8: {
    at: 3,
    align: 1,
    ptrs: (a) => [
      [0, a[4]! * 4],
      [2, 4],
    ],
    floats: (a) => a[4]! * 2,
  },
} satisfies Partial<Record<keyof Kernels, RangeSplit>>;
type RangeKernel = keyof typeof RANGE_SPLITS;

/** Kernels the helper threads may run. */
export const POOL_KERNELS = [
  'gemm_f32_shared',
  'sgd_step_shared',
  'adam_step_shared',
  'rmsprop_step_shared',
  'adagrad_step_shared',
  'has_non_finite_shared',
  'conv2d_direct_c1_backward_weight_shared',
  // Run in shard jobs (Engine.shards): whole calls, each thread on its own operands.
  'gemm_f32_nn',
  'gemm_f32_tn',
  'gemm_f32_nt',
  'gather_normalize_u8_cols',
  'dense_sum_bias_act',
  'dense_bias_backward',
  'copy_block',
  ...(Object.keys(RANGE_SPLITS) as RangeKernel[]),
] as const;
type PoolKernel = (typeof POOL_KERNELS)[number];
/** Kernels Engine.shards runs. */
export type ShardKernel =
  | 'gemm_f32_nn'
  | 'gemm_f32_tn'
  | 'gemm_f32_nt'
  | 'gather_normalize_u8_cols'
  | 'dense_sum_bias_act'
  | 'dense_bias_backward'
  | 'copy_block'
  | 'relu_backward'
  | 'has_non_finite_shared';
/** One call of a shard job: the kernel and its arguments. */
export type ShardCall = readonly [ShardKernel, readonly number[]];
/**
 * Below these sizes a call stays on one thread. A hand-over costs ≈ 5–10 µs of the critical path
 * (waking the helper, its slower start, the wait for the later share; measured on a 2-core
 * machine), about what a split saves on a GEMM of 256k multiply-adds (M·N·K), e.g. the 10-wide
 * output layer's 32×10×128 is far below it, or on a 16k-float optimizer update.
 */
const PARALLEL_GEMM_MACS = 256 * 1024;
const PARALLEL_STEP_FLOATS = 16 * 1024;
/** Floats read and written (a convolution: output floats × taps) for a range split (RangeSplit). */
const PARALLEL_RANGE_FLOATS = 32 * 1024;

const PAGE_BYTES = 65536;
/** wasm32 limit: 65,536 pages of 64 KiB = 4 GiB. */
const MAX_PAGES = 65536;
/** Every reservation is aligned to a cache line so SIMD loads never straddle one needlessly. */
export const ALIGN = 64;
/** The units a thread's work range of a shared call can hold (assembly/claim.ts). */
const CLAIM_MAX_UNITS = 0xffff;

/** The two builds of the kernels: plain 128-bit SIMD, or relaxed SIMD with fused multiply-add. */
export type SimdBuild = 'baseline' | 'relaxed';
/** Which build to run: 'auto' (the default) is 'relaxed' when the host validates it. */
export type SimdChoice = SimdBuild | 'auto';
export const SIMD_CHOICES: readonly SimdChoice[] = ['auto', 'relaxed', 'baseline'];

/**
 * Engine options: `maxMemoryBytes` caps the linear memory (default and ceiling: 4 GiB); `simd`
 * picks the kernel build (default 'auto').
 */
export interface EngineOptions {
  maxMemoryBytes?: number;
  simd?: SimdChoice;
  /**
   * Threads that share each GEMM, optimizer step and per-image kernel (convolution, pooling,
   * activation; see RANGE_SPLITS) (default 1). More than 1 needs a shared
   * memory (SharedArrayBuffer): Node always; a browser page only when cross-origin isolated.
   * Results are bit-identical for every thread count.
   */
  threads?: number;
  /**
   * Skip zeros in the GEMMs' A (GEMM_SPARSE_A; default true): the input in the first layer's
   * forward and weight-gradient GEMMs (MNIST pixels are ≈81% zeros) and a ReLU output in the next
   * dense layer's forward GEMM (about half zeros). The results are the same bits either way;
   * false is for benchmarks.
   */
  sparseInput?: boolean;
}

/**
 * The build a loader should instantiate for `choice`, given whether the host validates the
 * relaxed build. Throws for 'relaxed' on a host without relaxed SIMD, and for unknown choices.
 */
export function resolveSimd(choice: SimdChoice | undefined, relaxedAvailable: boolean): SimdBuild {
  switch (choice ?? 'auto') {
    case 'auto':
      return relaxedAvailable ? 'relaxed' : 'baseline';
    case 'baseline':
      return 'baseline';
    case 'relaxed':
      if (!relaxedAvailable) {
        throw new Error(
          'the relaxed-SIMD build was requested (simd: relaxed), but this WebAssembly runtime ' +
            "does not support relaxed SIMD; use simd 'auto' or 'baseline'",
        );
      }
      return 'relaxed';
    default:
      throw new RangeError(
        `simd must be one of ${SIMD_CHOICES.join(', ')}; got ${JSON.stringify(choice)}`,
      );
  }
}

function maxPagesOf(options: EngineOptions): number {
  const bytes = options.maxMemoryBytes;
  if (bytes === undefined) return MAX_PAGES;
  if (!Number.isFinite(bytes) || bytes < PAGE_BYTES) {
    throw new RangeError(`the memory limit must be at least 64 KiB, got ${bytes} bytes`);
  }
  return Math.min(MAX_PAGES, Math.floor(bytes / PAGE_BYTES));
}

function newMemory(maxPages: number, shared: boolean): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 1, maximum: maxPages, shared });
}

/** Whether `module` is a threads build: it imports a shared memory. */
function importsSharedMemory(module: WebAssembly.Module): boolean {
  let shared = sharedImport.get(module);
  if (shared === undefined) {
    // The import descriptor does not say "shared"; linking a non-shared memory tells.
    try {
      new WebAssembly.Instance(module, imports(new WebAssembly.Memory({ initial: 1 })));
      shared = false;
    } catch {
      shared = true;
    }
    sharedImport.set(module, shared);
  }
  return shared;
}
const sharedImport = new WeakMap<WebAssembly.Module, boolean>();

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
  /** The kernel build this engine runs, as compiled into the module (see SimdBuild). */
  readonly build: SimdBuild;
  /**
   * Whether this engine's multiply-add rounds once: true for the relaxed build on a host whose
   * relaxed_madd is a hardware FMA (V8 on x64 with FMA3, arm64), false for the baseline build
   * (mul, then add). The spec lets relaxed_madd be either, so the relaxed build's bits match
   * across engines and machines only where this agrees.
   */
  readonly fusedMadd: boolean;
  /** Whether the GEMMs skip zero inputs (EngineOptions.sparseInput). */
  sparseInput = true;

  /** Wrap an instance whose `env.memory` import is `memory` (use the static factories). */
  constructor(instance: WebAssembly.Instance, memory: WebAssembly.Memory, maxPages = MAX_PAGES) {
    this.memory = memory;
    this.maxPages = maxPages;
    // The raw exports, not the loader's demangled wrappers: kernels take only numbers.
    this.kernels = instance.exports as unknown as Kernels;
    this.raw = this.kernels;
    this.build = this.kernels.simd_relaxed() ? 'relaxed' : 'baseline';
    // (1 + 2⁻¹²)² − (1 + 2⁻¹¹) is 2⁻²⁴ exactly; rounding the product first loses it.
    const x = 1 + 2 ** -12;
    this.fusedMadd = this.kernels.simd_madd_probe(x, x, -(1 + 2 ** -11)) !== 0;
    // The threads' work ranges of a shared call (assembly/claim.ts: a slot of whole cache lines
    // per thread, for MAX_THREADS), then the finiteness flag.
    this.claimPtr = alignUp(this.kernels.heap_base(), ALIGN);
    this.claimSlotBytes = this.kernels.claim_slot_bytes();
    // Slot 0 is the calling thread's: its optimizer steps pin there rather than in static memory,
    // which every helper's instantiation rewrites (assembly/simd.ts: pinArea).
    this.kernels.pin_to_slot(this.claimPtr);
    this.heapBase = this.claimPtr + MAX_THREADS * this.claimSlotBytes + ALIGN;
    this.top = this.heapBase;
    this.ensure(this.heapBase, "the threads' work ranges");
  }

  private readonly claimPtr: number;
  private readonly claimSlotBytes: number;

  /**
   * A new engine from a compiled module, instantiated synchronously (Node, workers). The module
   * decides the build; an explicit `options.simd` that names the other build is refused.
   */
  static fromModule(module: WebAssembly.Module, options: EngineOptions = {}): Engine {
    const maxPages = maxPagesOf(options);
    const memory = newMemory(maxPages, importsSharedMemory(module));
    const { instance } = instantiateSync<Record<string, unknown>>(module, imports(memory));
    return checkBuild(new Engine(instance, memory, maxPages), options);
  }

  /** The same, asynchronously: required on a browser page's main thread for large modules. */
  static async fromModuleAsync(
    module: WebAssembly.Module,
    options: EngineOptions = {},
  ): Promise<Engine> {
    const maxPages = maxPagesOf(options);
    const memory = newMemory(maxPages, importsSharedMemory(module));
    const { instance } = await instantiate<Record<string, unknown>>(module, imports(memory));
    return checkBuild(new Engine(instance, memory, maxPages), options);
  }

  /** Threads that share the kernels (1 without a pool). */
  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  private pool: ThreadPool | undefined;
  /** The module's exports, as the constructor found them (attachPool wraps `kernels`). */
  private readonly raw: Kernels;
  /**
   * Regions (by their first float's address) whose shared elementwise steps — the optimizer's,
   * the finiteness check — two threads split at given floats (splitAt).
   */
  private readonly cuts = new Map<number, readonly [number, number]>();

  /**
   * Run job t — its calls in order — on thread t (the calling thread runs job 0) and return when
   * all are done; without a pool, or with fewer threads than jobs, this thread runs the rest in
   * order. A job may read only what its own calls and the work before this one wrote, and its
   * calls write their own outputs, so the results do not depend on where a job ran. Used for
   * the layers a training pass cuts into shards (src/nn/shards.ts), which keep each shard's
   * inputs, weights and gradients on one core step after step.
   */
  shards(jobs: readonly (readonly ShardCall[])[]): void {
    const parties = Math.min(this.pool?.threads ?? 1, jobs.length);
    let t = 0;
    if (parties > 1) {
      this.pool!.runJobs(jobs, this.runCall, parties);
      t = parties;
    }
    for (; t < jobs.length; t++) for (const call of jobs[t]!) this.runCall(call);
  }

  /** One call of a shard job on this thread. */
  private readonly runCall = (call: PoolCall): void =>
    (this.raw as unknown as Record<string, (...a: number[]) => void>)[call[0]]!(...call[1]);

  /**
   * From now on, when two threads share an optimizer step or finiteness check over the region
   * that starts at `ptr`, thread 1 takes the floats from `from` to `to` and thread 0 the rest,
   * before and after (cuts rounded up to whole units of the step) — the parts of the weights
   * each thread's shards compute (Workspace). `to` ≤ `from` forgets the region.
   */
  splitAt(ptr: number, from: number, to: number): void {
    if (to > from) this.cuts.set(ptr, [from, to]);
    else this.cuts.delete(ptr);
  }

  /**
   * Share the GEMMs (units of C, dealt out as one contiguous range per thread; a thread whose
   * range is done takes units from the end of another's, assembly/claim.ts), the optimizer steps
   * and the gradients' finiteness check (chunks of 4096 floats, dealt the same way), the direct
   * convolution's weight gradient (kernel rows, likewise) and the kernels that work image by
   * image or element by element (one range of the batch per thread, RANGE_SPLITS; the batch's
   * gather too) across `pool`'s threads.
   * Every output is computed exactly as one call computes it, so the results are bit-identical
   * to one thread's; small calls stay on the calling thread.
   */
  attachPool(pool: ThreadPool): void {
    this.pool = pool;
    const k = this.kernels;
    const threads = pool.threads;
    const claim = this.claimPtr;
    const slotBytes = this.claimSlotBytes;
    const i32 = new Int32Array(this.memory.buffer); // shared: never detached by growth
    // One argument row per thread, reused by every call: nothing is allocated per step.
    const table = Array.from({ length: threads }, () => [] as number[]);
    // Deal a shared call's units out as one contiguous range per thread (assembly/claim.ts):
    // slot t holds [lo | hi << 16, t | parties << 16]. Returns the number of threads to run.
    // `cut` [from, to): thread 1's units, thread 0 takes those before and after (splitAt): its
    // range is rotated to run from `to` round to `from` (assembly/claim.ts).
    const deal = (units: number, cut?: readonly [number, number]): number => {
      const parties = Math.min(threads, units);
      if (parties === 2 && cut && cut[0] < cut[1] && cut[1] - cut[0] < units) {
        const r = units - cut[1];
        const mid = cut[0] + r;
        const at0 = claim >> 2;
        const at1 = (claim + slotBytes) >> 2;
        i32[at0] = mid << 16;
        i32[at0 + 1] = 2 << 16;
        i32[at1] = mid | (units << 16);
        i32[at1 + 1] = 1 | (2 << 16);
        for (const at of [at0, at1]) {
          i32[at + 2] = r;
          i32[at + 3] = units;
        }
        return 2;
      }
      for (let t = 0; t < parties; t++) {
        const at = (claim + t * slotBytes) >> 2;
        const lo = Math.floor((t * units) / parties);
        const hi = Math.floor(((t + 1) * units) / parties);
        i32[at] = lo | (hi << 16);
        i32[at + 1] = t | (parties << 16);
        i32[at + 2] = 0;
      }
      return parties;
    };
    const gemm =
      (layout: number, whole: Kernels['gemm_f32_nn']): Kernels['gemm_f32_nn'] =>
      (C, A, B, bias, M, N, K, flags, scratch) => {
        const units = k.gemm_shared_units(layout, M, N, flags);
        if (units < 2 || units > CLAIM_MAX_UNITS || M * N * K < PARALLEL_GEMM_MACS) {
          whole(C, A, B, bias, M, N, K, flags, scratch);
          return;
        }
        const scratchStride = alignUp(k.gemm_scratch_floats(M, N, K) * 4, ALIGN);
        const parties = deal(units);
        for (let t = 0; t < parties; t++) {
          const row = table[t]!;
          row.length = 0;
          const slot = claim + t * slotBytes;
          row.push(layout, C, A, B, bias, M, N, K, flags, scratch + t * scratchStride, slot);
        }
        pool.run('gemm_f32_shared', table, k.gemm_f32_shared, parties);
      };
    // Optimizer steps and the direct conv's weight gradient: every thread runs the `_shared`
    // twin with the same arguments after its range's slot and takes units (chunks of floats,
    // kernel rows) from its range, then from the others', so a thread on a slower or busier core
    // simply does fewer (assembly/claim.ts);
    // each output gets the same operations whichever thread computes it. `units` is 0 for a call
    // too small to share.
    const claimed =
      <F extends (...args: number[]) => void>(
        name: PoolKernel,
        whole: F,
        units: (a: readonly number[]) => number,
      ) =>
      (...a: number[]): void => {
        const u = units(a);
        if (u < 2 || u > CLAIM_MAX_UNITS) return whole(...a);
        const cut = this.cuts.get(a[0]!);
        const parties = deal(u, cut && [k.chunk_units(cut[0]), Math.min(u, k.chunk_units(cut[1]))]);
        for (let t = 0; t < parties; t++) {
          const row = table[t]!;
          row.length = 0;
          row.push(claim + t * slotBytes, ...a);
        }
        const local = k[name] as unknown as (...args: number[]) => void;
        pool.run(name, table, local, parties);
      };
    // (params, grads, state…, n, scalars…), n at index `at`.
    const step = <F extends (...args: number[]) => void>(name: PoolKernel, whole: F, at: number) =>
      claimed(name, whole, (a) => (a[at]! < PARALLEL_STEP_FLOATS ? 0 : k.chunk_units(a[at]!)));
    // The finiteness check of the gradients (every step): chunks taken like the optimizer's,
    // each thread writing 1 to `found` (the line after the ranges) if one of its chunks fails.
    const found = claim + MAX_THREADS * slotBytes;
    const checkInto = step(
      'has_non_finite_shared',
      (x: number, n: number, at: number) => {
        if (k.has_non_finite(x, n)) i32[at >> 2] = 1;
      },
      1,
    );
    const hasNonFinite = (x: number, n: number): number => {
      i32[found >> 2] = 0;
      checkInto(x, n, found);
      return i32[found >> 2]!;
    };
    // The direct conv's weight gradient sums over the images: shared by its KH kernel rows.
    // (dw, inp, dout, B, H, W, OC, KH, KW, pad, OH, OW)
    const directDw = claimed(
      'conv2d_direct_c1_backward_weight_shared',
      k.conv2d_direct_c1_backward_weight,
      (a) => (a[3]! * a[10]! * a[11]! * a[6]! * a[7]! * a[8]! < PARALLEL_RANGE_FLOATS ? 0 : a[7]!),
    );
    // Kernels independent per image or per element: one contiguous range per thread (static).
    const ranges = <N extends RangeKernel>(name: N): Kernels[N] => {
      const split: RangeSplit = RANGE_SPLITS[name];
      const whole = k[name] as unknown as (...args: number[]) => void;
      const wrapped = (...a: number[]): void => {
        const n = a[split.at]!;
        const shares = Math.min(threads, Math.ceil(n / split.align));
        if (shares < 2 || n * split.floats(a) < PARALLEL_RANGE_FLOATS) return whole(...a);
        const ptrs = split.ptrs(a);
        const per = Math.ceil(n / split.align / shares) * split.align;
        for (let t = 0; t < shares; t++) {
          const row = table[t]!;
          row.length = 0;
          row.push(...a);
          const first = Math.min(n, t * per);
          row[split.at] = Math.min(n, first + per) - first;
          for (const [i, bytes] of ptrs) row[i] = a[i]! + first * bytes;
        }
        pool.run(name, table, whole, shares);
      };
      return wrapped as unknown as Kernels[N];
    };
    const rangeKernels = Object.fromEntries(
      (Object.keys(RANGE_SPLITS) as RangeKernel[]).map((name) => [name, ranges(name)]),
    ) as Pick<Kernels, RangeKernel>;
    (this as { kernels: Kernels }).kernels = {
      ...k,
      ...rangeKernels,
      conv2d_direct_c1_backward_weight: directDw,
      gemm_f32_nn: gemm(0, k.gemm_f32_nn),
      gemm_f32_tn: gemm(1, k.gemm_f32_tn),
      gemm_f32_nt: gemm(2, k.gemm_f32_nt),
      sgd_step: step('sgd_step_shared', k.sgd_step, 3),
      adam_step: step('adam_step_shared', k.adam_step, 4),
      rmsprop_step: step('rmsprop_step_shared', k.rmsprop_step, 3),
      adagrad_step: step('adagrad_step_shared', k.adagrad_step, 3),
      has_non_finite: hasNonFinite,
    };
  }

  /** Stop the helper threads (an engine without a pool has nothing to stop). */
  close(): void {
    this.pool?.terminate();
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

function checkBuild(engine: Engine, options: EngineOptions): Engine {
  engine.sparseInput = options.sparseInput ?? true;
  const wanted = options.simd ?? 'auto';
  if (wanted !== 'auto' && wanted !== engine.build) {
    throw new Error(
      `simd: ${wanted} was requested, but the module given is the ${engine.build} build`,
    );
  }
  return engine;
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
