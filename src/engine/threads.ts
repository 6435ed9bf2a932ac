/**
 * A pool of helper threads that run kernels on the engine's shared WebAssembly memory.
 *
 * Each helper (a Node worker_thread or a browser Web Worker) instantiates the same compiled module
 * on the same `shared: true` memory, then waits for jobs. `run` hands each helper one kernel call
 * (its share of the work: a GEMM's units or chunks of the parameters from its own range of them,
 * taking the others' once that is done — assembly/claim.ts —, or a range of a batch's images),
 * `runJobs` a list of calls to run in order (a shard's work, src/nn/shards.ts),
 * and the calling thread computes share 0 itself — on two cores a coordinator that only waited
 * was slower (DESIGN.md). Then it waits for each helper's share. A helper that starts late (its
 * core busy, a slow wake-up) costs little: in the claimed kernels the caller takes the units of
 * that helper's range once its own are done, and the helper, when it runs, finds none left.
 * Until 2026-11-23 the caller also took back a share whose helper had not started it yet and ran
 * it itself (a compare-and-exchange on the job); with that, four-thread `mlp-256-128` epochs
 * ended on other weights than one thread's in about 1 of 11 (a race whose mechanism was not
 * found), and in none of hundreds without it, at the same speed (README, Threads). A helper whose
 * module fails to instantiate marks itself dead, and the caller runs its shares instead.
 * Jobs and completions travel through a small SharedArrayBuffer of their own:
 *
 *   control  Int32Array, one 64-byte line per helper t: [t·16] job sequence number (−1: exit),
 *            [t·16 + 1] the sequence number of the last job it finished (HELPER_DEAD: it could
 *            not start), [t·16 + 2] that of the last job that threw, [t·16 + 3] 1 while the
 *            helper sleeps waiting for a job, [t·16 + 4] 1 while the caller sleeps waiting for
 *            that helper's job to finish
 *   jobs     Float64Array, 128 slots per helper: [0] the number of calls c (≤ MAX_CALLS), then
 *            c calls of 17 slots: export index, then the 16 arguments, zero-filled (pointers and
 *            sizes are exact in f64; f32 scalars too). A helper runs its calls in order.
 *            Several calls per job save hand-overs where each thread's next kernel needs only
 *            what the same thread just wrote (Engine.shards).
 *
 * Waiting spins for at most SPIN_MICROS before `Atomics.wait` (waitChange): a kernel call lasts
 * tens to hundreds of microseconds, while waking a sleeping thread costs about as much again.
 * A thread that stores a new value calls `Atomics.notify` only when the waiter has said it sleeps
 * (wake): in V8 a notify takes a process-wide lock even when nobody waits, and a CPU profile of
 * two-thread training put ≈ 40 ms of each `mlp-256-128` epoch (≈ 3.5 µs per hand-over) there.
 *
 * Kernels never allocate and each share writes its own outputs, so the results are those of one
 * thread, bit for bit, whatever the thread count (the callers split by output, or into partial
 * sums that are added in the same order however many threads computed them: src/nn/shards.ts).
 */

/** One kernel call of a job: the export's name and its arguments. */
export type PoolCall = readonly [name: string, args: readonly number[]];

/** What a helper receives when it starts. */
interface HelperInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: Int32Array;
  jobs: Float64Array;
  index: number;
  names: readonly string[];
  spinMicros: number;
}

/** Threads a pool may have: the engine keeps a work range per thread (assembly/claim.ts). */
export const MAX_THREADS = 256;

const LINE_INTS = 16;
const JOB_SLOTS = 128;
/** Slots per call in a job: the export index and MAX_ARGS arguments. */
const CALL_SLOTS = 17;
/** Calls one job may hold. */
export const MAX_CALLS = 7;
/** A helper's "last job finished" when its module failed to instantiate (helperMain). */
const HELPER_DEAD = -2;
/** Arguments per job; a helper passes all of them (unused slots are 0). */
const MAX_ARGS = 16;
/**
 * Microseconds a waiting thread spins before it sleeps. Spinning much longer hurt on the 2-vCPU
 * machines we measure on: with 3 ms of spinning (an iteration count meant as ≈ 30 µs, but each
 * `Atomics.load` turned out to cost ≈ 13 ns) two-thread `mlp-256-128` epochs fell into a mode
 * about twice as slow as one thread in half the rounds, at the time. With 50 µs (until
 * 2026-11-23) a CPU profile of slow two-thread epochs found both threads often asleep between
 * the steps' hand-overs, each wake-up on the critical path; 200 µs ran 0.947× the time (paired
 * medians of 14 interleaved epochs, faster in 11), 1000 µs no better than 200 (0.988×, 8 of 14).
 */
const SPIN_MICROS = 200;

/**
 * Wait until control[at] ≠ value and return it: spin (reading the clock every 64 loads) for up to
 * `micros` µs, then sleep in `Atomics.wait`, with control[sleepAt] = 1 meanwhile when `sleepAt`
 * is given (see wake). Self-contained: the helpers get it as source text.
 */
export function waitChange(
  control: Int32Array,
  at: number,
  value: number,
  micros: number,
  sleepAt = -1,
): number {
  let now = Atomics.load(control, at);
  if (now !== value) return now;
  const until = performance.now() + micros / 1000;
  for (let i = 1; now === value; i++) {
    if ((i & 63) === 0 && performance.now() > until) break;
    now = Atomics.load(control, at);
  }
  if (now !== value) return now;
  // Say so before sleeping: Atomics.wait checks the value again, so a store made after the
  // storer found no sleeper is seen (all Atomics operations are sequentially consistent).
  if (sleepAt >= 0) Atomics.store(control, sleepAt, 1);
  while (now === value) {
    Atomics.wait(control, at, value);
    now = Atomics.load(control, at);
  }
  if (sleepAt >= 0) Atomics.store(control, sleepAt, 0);
  return now;
}

/**
 * Store `value` at control[at] and wake its waiter if it sleeps (control[sleepAt] = 1, see
 * waitChange). Self-contained: the helpers get it as source text.
 */
export function wake(control: Int32Array, at: number, value: number, sleepAt: number): void {
  Atomics.store(control, at, value);
  if (Atomics.load(control, sleepAt) !== 0) Atomics.notify(control, at);
}

/**
 * The helper's whole program. It is sent as source text (`String(helperMain)`, with waitChange and wake
 * bound around it), so it must not refer to anything else outside its own body. `started`, when
 * given, is called once the module is instantiated: a browser trainer awaits it before the first
 * `run` (see SpawnHelper).
 */
function helperMain(init: HelperInit, started?: () => void): void {
  const { control, jobs, index, names, spinMicros } = init;
  const seqAt = index * 16;
  const doneAt = seqAt + 1;
  let fns: ((...args: number[]) => void)[];
  try {
    const instance = new WebAssembly.Instance(init.module, {
      env: {
        memory: init.memory,
        abort: (_m: number, _f: number, line: number, column: number) => {
          throw new Error(`mnist-wasm kernel aborted at ${line}:${column} (helper thread)`);
        },
      },
    });
    const exports = instance.exports as Record<string, (...args: number[]) => void>;
    fns = names.map((n) => exports[n]!);
  } catch (error) {
    // HELPER_DEAD (the caller runs this helper's shares from now on); a literal: this function
    // is sent as source text.
    Atomics.store(control, doneAt, -2);
    Atomics.notify(control, doneAt);
    throw error;
  }
  started?.();
  const job = index * 128;
  let seen = 0;
  for (;;) {
    const seq = waitChange(control, seqAt, seen, spinMicros, seqAt + 3);
    if (seq < 0) return;
    seen = seq;
    try {
      const calls = jobs[job]!;
      for (let c = 0; c < calls; c++) {
        // Always MAX_ARGS arguments (a wasm export ignores the extra ones): no array, no spread.
        const f = job + 1 + c * 17;
        const a = f + 1;
        fns[jobs[f]!]!(
          jobs[a]!,
          jobs[a + 1]!,
          jobs[a + 2]!,
          jobs[a + 3]!,
          jobs[a + 4]!,
          jobs[a + 5]!,
          jobs[a + 6]!,
          jobs[a + 7]!,
          jobs[a + 8]!,
          jobs[a + 9]!,
          jobs[a + 10]!,
          jobs[a + 11]!,
          jobs[a + 12]!,
          jobs[a + 13]!,
          jobs[a + 14]!,
          jobs[a + 15]!,
        );
      }
    } catch {
      // Report instead of dying: the caller is blocked waiting for this job.
      Atomics.store(control, seqAt + 2, seq);
    }
    wake(control, doneAt, seq, seqAt + 4);
  }
}

/**
 * Starts one helper thread running `source` with `init` (Node: worker_threads; browser: Worker).
 * `source` is a function expression to call as `source(init)` or `source(init, started)`.
 */
export type SpawnHelper = (source: string, init: unknown) => { terminate(): unknown };

export class ThreadPool {
  /** Threads that share the work, the calling thread included. */
  readonly threads: number;
  private readonly control: Int32Array;
  private readonly jobs: Float64Array;
  private readonly index: Map<string, number>;
  private readonly helpers: { terminate(): unknown }[] = [];
  private seq = 0;

  /**
   * `threads` − 1 helpers on `memory` (which must be shared), able to call the exports `names`.
   * `spawn` starts a helper from source text; see node.ts and the browser worker for the two.
   */
  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    threads: number,
    names: readonly string[],
    spawn: SpawnHelper,
  ) {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new RangeError(`threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
    }
    if (!(memory.buffer instanceof SharedArrayBuffer)) {
      throw new Error('a thread pool needs a shared WebAssembly.Memory');
    }
    this.threads = threads;
    this.control = new Int32Array(new SharedArrayBuffer(threads * LINE_INTS * 4));
    this.jobs = new Float64Array(new SharedArrayBuffer(threads * JOB_SLOTS * 8));
    this.index = new Map(names.map((n, i) => [n, i]));
    const source = `((waitChange, wake) => ${String(helperMain)})(${String(waitChange)}, ${String(wake)})`;
    for (let t = 1; t < threads; t++) {
      const init: HelperInit = {
        module,
        memory,
        control: this.control,
        jobs: this.jobs,
        index: t,
        names,
        spinMicros: SPIN_MICROS,
      };
      this.helpers.push(spawn(source, init));
    }
  }

  /**
   * Call `name` once per share: `shares[t]` are the arguments for thread t, share 0 runs here.
   * Returns when every share is done. Only the first `count` shares are run (default all); fewer
   * shares than threads leave the rest idle.
   */
  run(
    name: string,
    shares: readonly (readonly number[])[],
    local: (...args: number[]) => void,
    count = shares.length,
  ): void {
    this.checkCount(count, shares.length);
    const seq = ++this.seq;
    for (let t = 1; t < count; t++) {
      const at = t * JOB_SLOTS;
      this.jobs[at] = 1;
      this.putCall(at + 1, name, shares[t]!);
      wake(this.control, t * LINE_INTS, seq, t * LINE_INTS + 3);
    }
    if (count > 0) local(...shares[0]!);
    // A helper that never started (dead) has its share run here.
    for (let t = 1; t < count; t++) if (!this.waitFor(t, seq)) local(...shares[t]!);
    this.checkFailed(seq, count, name);
  }

  /**
   * Run job t — calls in order — on thread t, job 0 here (`local` runs each of its calls).
   * Returns when every job is done. Only the first `count` jobs are run (default all). Nothing is
   * allocated unless a call fails.
   */
  runJobs(
    jobs: readonly (readonly PoolCall[])[],
    local: (call: PoolCall) => void,
    count = jobs.length,
  ): void {
    this.checkCount(count, jobs.length);
    const seq = ++this.seq;
    for (let t = 1; t < count; t++) {
      const calls = jobs[t]!;
      if (calls.length > MAX_CALLS) throw new RangeError(`more than ${MAX_CALLS} calls in a job`);
      const at = t * JOB_SLOTS;
      this.jobs[at] = calls.length;
      for (let c = 0; c < calls.length; c++) {
        this.putCall(at + 1 + c * CALL_SLOTS, calls[c]![0], calls[c]![1]);
      }
      wake(this.control, t * LINE_INTS, seq, t * LINE_INTS + 3);
    }
    if (count > 0) for (const call of jobs[0]!) local(call);
    for (let t = 1; t < count; t++) {
      if (!this.waitFor(t, seq)) for (const call of jobs[t]!) local(call);
    }
    this.checkFailed(seq, count, undefined, jobs);
  }

  private checkCount(count: number, available: number): void {
    if (count > this.threads || count > available) {
      throw new RangeError(`${count} shares for ${this.threads} threads`);
    }
  }

  /** One call into the job slots at `at`: the export index, then the arguments zero-filled. */
  private putCall(at: number, name: string, args: readonly number[]): void {
    const fn = this.index.get(name);
    if (fn === undefined) throw new Error(`the thread pool cannot call "${name}"`);
    if (args.length > MAX_ARGS) throw new RangeError(`"${name}": more than ${MAX_ARGS} arguments`);
    this.jobs[at] = fn;
    for (let i = 0; i < MAX_ARGS; i++) this.jobs[at + 1 + i] = i < args.length ? args[i]! : 0;
  }

  /** Wait until helper t has finished job `seq`; false when it never started (dead). */
  private waitFor(t: number, seq: number): boolean {
    const doneAt = t * LINE_INTS + 1;
    let done = Atomics.load(this.control, doneAt);
    while (done !== seq) {
      if (done === HELPER_DEAD) return false;
      done = waitChange(this.control, doneAt, done, SPIN_MICROS, doneAt + 3);
    }
    return true;
  }

  /** Throw if a helper's job `seq` failed, naming the call (`name`) or the job's calls. */
  private checkFailed(
    seq: number,
    count: number,
    name: string | undefined,
    jobs?: readonly (readonly PoolCall[])[],
  ): void {
    for (let t = 1; t < count; t++) {
      if (Atomics.load(this.control, t * LINE_INTS + 2) === seq) {
        const what = name ?? jobs?.[t]?.map((c) => c[0]).join('", "');
        throw new Error(`"${what}" failed on helper thread ${t} (a kernel aborted)`);
      }
    }
  }

  /** Stop the helpers (they exit after their current job). */
  terminate(): void {
    for (let t = 1; t < this.threads; t++) {
      Atomics.store(this.control, t * LINE_INTS, -1);
      Atomics.notify(this.control, t * LINE_INTS);
    }
    for (const h of this.helpers) h.terminate();
    this.helpers.length = 0;
  }
}
