/**
 * Do the two cores compute at once? For `npm run bench`: the register-only f32x4 loop of the
 * peak measurement (peak_f32x4, baseline build) runs alone on this thread, then on this thread
 * and a worker thread at the same time, trial after trial. On two free cores the pair takes
 * as long as one loop; on cores that share execution units (SMT siblings) or a host that
 * deschedules one of a VM's cores, the slower of the pair takes longer. The thread rows of the
 * benchmark depend on this more than on the engine: a two-thread epoch is as fast as its
 * slower thread at each hand-over.
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { wasmPath } from '../src/engine/node.js';
import { median } from './timing.js';

export interface CoreContention {
  trials: number;
  /** Loop iterations per trial (96 flops each). */
  iterations: number;
  /** Median over trials of (slower of the pair's seconds) / (the loop alone's seconds). */
  medianRatio: number;
  /** Trials whose ratio is at least SLOW_RATIO. */
  slowTrials: number;
  ratios: number[];
}

/** A trial counts as slow when the pair took at least this many times one loop alone. */
export const SLOW_RATIO = 1.3;

// The worker: wait for a job number in ctl[0], run the loop ctl[1] times, store its ms in
// times[0], then ctl[2] = the job number. ctl[0] = −1 ends it.
const WORKER = `
const { workerData } = require('node:worker_threads');
const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
const { exports } = new WebAssembly.Instance(workerData.module, {
  env: { memory, abort() { throw new Error('abort'); } },
});
const ctl = new Int32Array(workerData.control);
const times = new Float64Array(workerData.times);
exports.peak_f32x4(1000);
Atomics.store(ctl, 3, 1);
Atomics.notify(ctl, 3);
for (let seen = 0; ; ) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  if (seen < 0) break;
  const t = performance.now();
  exports.peak_f32x4(Atomics.load(ctl, 1));
  times[0] = performance.now() - t;
  Atomics.store(ctl, 2, seen);
  Atomics.notify(ctl, 2);
}`;

function waitFor(ctl: Int32Array, at: number, value: number): void {
  for (let v = Atomics.load(ctl, at); v !== value; v = Atomics.load(ctl, at)) {
    Atomics.wait(ctl, at, v, 1000);
  }
}

/** `trials` trials of `iterations` loop iterations (2,000,000 ≈ 4 ms at 47 GFLOP/s). */
export function benchCoreContention(trials = 40, iterations = 2_000_000): CoreContention {
  const module = new WebAssembly.Module(readFileSync(wasmPath('baseline')));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  const local = new WebAssembly.Instance(module, { env: { memory, abort: () => {} } }).exports as {
    peak_f32x4(iters: number): number;
  };
  const control = new SharedArrayBuffer(16);
  const ctl = new Int32Array(control);
  const times = new Float64Array(new SharedArrayBuffer(8));
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { module, control, times: times.buffer },
  });
  try {
    waitFor(ctl, 3, 1);
    local.peak_f32x4(iterations); // warm
    const ratios: number[] = [];
    for (let trial = 1; trial <= trials; trial++) {
      let t = performance.now();
      local.peak_f32x4(iterations);
      const alone = performance.now() - t;
      Atomics.store(ctl, 1, iterations);
      Atomics.store(ctl, 0, trial);
      Atomics.notify(ctl, 0);
      t = performance.now();
      local.peak_f32x4(iterations);
      const mine = performance.now() - t;
      waitFor(ctl, 2, trial);
      ratios.push(Math.max(mine, times[0]!) / alone);
    }
    return {
      trials,
      iterations,
      medianRatio: median(ratios),
      slowTrials: ratios.filter((r) => r >= SLOW_RATIO).length,
      ratios,
    };
  } finally {
    Atomics.store(ctl, 0, -1);
    Atomics.notify(ctl, 0);
    void worker.terminate();
  }
}

export function formatCoreContention(c: CoreContention): string {
  return (
    `Two cores at once: the register-only loop alone, then on two threads at once, ${c.trials} ` +
    `trials of ${((c.iterations * 96) / 1e6).toFixed(0)} Mflop: the slower of the pair took ` +
    `${c.medianRatio.toFixed(2)}× the loop alone (median); ≥ ${SLOW_RATIO}× in ` +
    `${c.slowTrials} of ${c.trials} trials`
  );
}

/** Floats per measurement of StepAfter: 1 MiB of parameters, used as their own gradients. */
const STEP_FLOATS = 262_144;

/**
 * An optimizer step (sgd_step, threads build, baseline) over 1 MiB of parameters on this thread,
 * in µs: `afterRead` right after the other core read those parameters, as the
 * shared engine's forward reads the weights before each update (so this step's writes must
 * invalidate that core's copies); `afterWrite` right after the other core updated them itself;
 * `local` right after this thread's own step. Medians of 9 passes.
 */
export interface StepAfter {
  afterRead: number;
  afterWrite: number;
  local: number;
}

/**
 * How far apart the two threads' cores are: the round trip of one cache line between this thread
 * and a worker that answers each odd value with the next even one. On this machine kind it is
 * bimodal, ≈ 110–170 ns in one state and ≈ 320–440 ns in the other (the host placing the VM's
 * two vCPUs on nearby or distant cores), and two-thread epochs of the shared engine run about
 * half as fast in the distant state, while two threads that share nothing do not slow down
 * (README, Threads). The worker sleeps between measurements. `measureStep` times what that
 * distance costs the engine (StepAfter).
 */
export class RoundTripProbe {
  private readonly control = new Int32Array(new SharedArrayBuffer(16));
  private readonly worker: Worker;
  private readonly kernels: {
    sgd_step(p: number, g: number, v: number, n: number, lr: number, ...z: number[]): void;
  };
  private readonly params = 65536;
  private readonly grads = 65536;

  constructor() {
    const module = new WebAssembly.Module(readFileSync(wasmPath('baseline', true)));
    const memory = new WebAssembly.Memory({ initial: 48, maximum: 65536, shared: true });
    const abort = (): never => {
      throw new Error('abort');
    };
    this.kernels = new WebAssembly.Instance(module, { env: { memory, abort } })
      .exports as unknown as RoundTripProbe['kernels'];
    new Float32Array(memory.buffer, this.params, 2 * STEP_FLOATS).fill(1e-3);
    // [0] the ball (odd: the worker's turn), [1] 1 = answer, 2 = read the parameters once,
    // 3 = step them once (for each new request number in [3], then [2] = it), 0 = sleep,
    // −1 = exit.
    this.worker = new Worker(
      `const { control, module, memory, params, grads, n } = require('node:worker_threads').workerData;
      const c = new Int32Array(control);
      const k = new WebAssembly.Instance(module, { env: { memory, abort() {} } }).exports;
      for (;;) {
        const mode = Atomics.load(c, 1);
        if (mode < 0) break;
        if (mode === 0) { Atomics.wait(c, 1, 0); continue; }
        if (mode === 1) {
          const v = Atomics.load(c, 0);
          if (v & 1) Atomics.store(c, 0, v + 1);
          continue;
        }
        const job = Atomics.load(c, 3);
        if (job === Atomics.load(c, 2)) continue;
        if (mode === 2) k.has_non_finite(params, n);
        else k.sgd_step(params, grads, 0, n, 1e-6, 0, 0, 0);
        Atomics.store(c, 2, job);
      }`,
      {
        eval: true,
        workerData: {
          control: this.control.buffer,
          module,
          memory,
          params: this.params,
          grads: this.grads,
          n: STEP_FLOATS,
        },
      },
    );
    this.worker.unref();
  }

  /** An optimizer step's µs here after the other core read or updated the parameters, and alone. */
  measureStep(): StepAfter {
    const c = this.control;
    const step = (): number => {
      const t = performance.now();
      this.kernels.sgd_step(this.params, this.grads, 0, STEP_FLOATS, 1e-6, 0, 0, 0);
      return (performance.now() - t) * 1000;
    };
    const other = (mode: 2 | 3): void => {
      const job = Atomics.load(c, 3) + 1;
      Atomics.store(c, 3, job);
      Atomics.store(c, 1, mode);
      Atomics.notify(c, 1);
      while (Atomics.load(c, 2) !== job);
    };
    const afterRead: number[] = [];
    const afterWrite: number[] = [];
    const local: number[] = [];
    step();
    for (let pass = 0; pass < 9; pass++) {
      other(2);
      afterRead.push(step());
      local.push(step());
      other(3);
      afterWrite.push(step());
    }
    Atomics.store(c, 1, 0);
    return { afterRead: median(afterRead), afterWrite: median(afterWrite), local: median(local) };
  }

  /** Nanoseconds per round trip over `trips` round trips (after 2,000 untimed ones). */
  measure(trips = 20_000): number {
    const c = this.control;
    Atomics.store(c, 0, 0);
    Atomics.store(c, 1, 1);
    Atomics.notify(c, 1);
    let ball = 0;
    let started = 0;
    for (let i = -2000; i < trips; i++) {
      if (i === 0) started = performance.now();
      Atomics.store(c, 0, ball + 1);
      while ((ball = Atomics.load(c, 0)) & 1);
    }
    const ns = ((performance.now() - started) / trips) * 1e6;
    Atomics.store(c, 1, 0);
    return ns;
  }

  close(): void {
    Atomics.store(this.control, 1, -1);
    Atomics.notify(this.control, 1);
    void this.worker.terminate();
  }
}
