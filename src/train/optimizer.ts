/**
 * Optimizer configuration and the host side of the update kernels (assembly/optim.ts): one call per
 * step over the model's whole parameter region.
 */
import type { Model } from '../nn/model.js';

export type OptimizerName = 'sgd' | 'adam' | 'rmsprop' | 'adagrad';
export const OPTIMIZERS: readonly OptimizerName[] = ['sgd', 'adam', 'rmsprop', 'adagrad'];

export interface OptimizerOptions {
  type: OptimizerName;
  learningRate: number;
  /** SGD momentum μ (default 0). */
  momentum?: number;
  /** SGD: Nesterov momentum (default false). */
  nesterov?: boolean;
  /** Adam β1 (default 0.9). */
  beta1?: number;
  /** Adam β2 (default 0.999). */
  beta2?: number;
  /** RMSprop decay ρ of the squared-gradient average (default 0.99 as PyTorch; Keras uses 0.9). */
  rho?: number;
  /** ε added to the denominator: Adam and RMSprop 1e-8, AdaGrad 1e-10 (PyTorch; Keras uses 1e-7). */
  epsilon?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
}

/** Defaults: PyTorch's for Adam (β1 0.9, β2 0.999, ε 1e-8). */
export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 } as const;
/** Defaults: PyTorch's RMSprop (ρ 0.99, ε 1e-8) and Adagrad (ε 1e-10). */
export const RMSPROP_DEFAULTS = { rho: 0.99, epsilon: 1e-8 } as const;
export const ADAGRAD_DEFAULTS = { epsilon: 1e-10 } as const;

export function validateOptimizer(o: OptimizerOptions): void {
  if (!OPTIMIZERS.includes(o.type)) {
    throw new RangeError(`unknown optimizer "${o.type}" (expected ${OPTIMIZERS.join(', ')})`);
  }
  const check = (
    name: string,
    value: number | undefined,
    ok: (x: number) => boolean,
    expected: string,
  ): void => {
    if (value !== undefined && !(Number.isFinite(value) && ok(value))) {
      throw new RangeError(`${name} must be ${expected}, got ${value}`);
    }
  };
  check('learning rate', o.learningRate, (x) => x > 0, 'a positive number');
  if (o.learningRate === undefined) throw new RangeError('learning rate is required');
  check('momentum', o.momentum, (x) => x >= 0 && x < 1, 'in [0, 1)');
  check('beta1', o.beta1, (x) => x >= 0 && x < 1, 'in [0, 1)');
  check('beta2', o.beta2, (x) => x >= 0 && x < 1, 'in [0, 1)');
  check('rho', o.rho, (x) => x >= 0 && x < 1, 'in [0, 1)');
  check('epsilon', o.epsilon, (x) => x > 0, 'a positive number');
  check('weight decay', o.weightDecay, (x) => x >= 0, '≥ 0');
  if (o.nesterov && !(o.momentum && o.momentum > 0)) {
    throw new RangeError('Nesterov momentum needs momentum > 0');
  }
  if (o.type !== 'sgd' && (o.momentum || o.nesterov)) {
    throw new RangeError(`momentum and Nesterov apply to sgd only, not ${o.type}`);
  }
}

/** A short human-readable description, e.g. "adam(lr=0.001)". */
export function describeOptimizer(o: OptimizerOptions): string {
  const extra: string[] = [`lr=${o.learningRate}`];
  if (o.momentum) extra.push(`momentum=${o.momentum}${o.nesterov ? ', nesterov' : ''}`);
  if (o.weightDecay) extra.push(`weightDecay=${o.weightDecay}`);
  return `${o.type}(${extra.join(', ')})`;
}

/** Step count and Adam's running β powers: what a checkpoint keeps besides the state regions. */
export interface OptimizerCounters {
  steps: number;
  beta1Power: number;
  beta2Power: number;
}

/** Applies updates to one model; its state lives in the model's state regions. */
export class Optimizer {
  private stepCount = 0;
  /** β1^t and β2^t by repeated multiplication: exact IEEE products, identical in every engine
   * (Math.pow's last bit is implementation-defined and would break Node/browser bit-identity). */
  private beta1Power = 1;
  private beta2Power = 1;

  constructor(
    readonly model: Model,
    readonly options: OptimizerOptions,
  ) {
    validateOptimizer(options);
    this.reset();
  }

  /** Zero the momentum / moment estimates and the step counter. */
  reset(): void {
    const { model } = this;
    model.engine.f32(model.state1Ptr, model.regionFloats).fill(0);
    model.engine.f32(model.state2Ptr, model.regionFloats).fill(0);
    this.stepCount = 0;
    this.beta1Power = 1;
    this.beta2Power = 1;
  }

  get steps(): number {
    return this.stepCount;
  }

  /** The host-side counters (the moment estimates live in the model's state regions). */
  getState(): OptimizerCounters {
    return { steps: this.stepCount, beta1Power: this.beta1Power, beta2Power: this.beta2Power };
  }

  /** Continue from counters `getState` returned (with the state regions restored alongside). */
  setState(state: OptimizerCounters): void {
    this.stepCount = state.steps;
    this.beta1Power = state.beta1Power;
    this.beta2Power = state.beta2Power;
  }

  /** One update from the gradients currently in the model's grads region. */
  step(): void {
    const { model, options: o } = this;
    const k = model.engine.kernels;
    const n = model.regionFloats;
    this.stepCount++;
    switch (o.type) {
      case 'sgd':
        k.sgd_step(
          model.paramsPtr,
          model.gradsPtr,
          model.state1Ptr,
          n,
          o.learningRate,
          o.momentum ?? 0,
          o.nesterov ? 1 : 0,
          o.weightDecay ?? 0,
        );
        return;
      case 'adam': {
        const beta1 = o.beta1 ?? ADAM_DEFAULTS.beta1;
        const beta2 = o.beta2 ?? ADAM_DEFAULTS.beta2;
        this.beta1Power *= beta1;
        this.beta2Power *= beta2;
        k.adam_step(
          model.paramsPtr,
          model.gradsPtr,
          model.state1Ptr,
          model.state2Ptr,
          n,
          o.learningRate,
          beta1,
          beta2,
          o.epsilon ?? ADAM_DEFAULTS.epsilon,
          1 - this.beta1Power,
          1 - this.beta2Power,
          o.weightDecay ?? 0,
        );
        return;
      }
      case 'rmsprop':
        k.rmsprop_step(
          model.paramsPtr,
          model.gradsPtr,
          model.state1Ptr,
          n,
          o.learningRate,
          o.rho ?? RMSPROP_DEFAULTS.rho,
          o.epsilon ?? RMSPROP_DEFAULTS.epsilon,
          o.weightDecay ?? 0,
        );
        return;
      case 'adagrad':
        k.adagrad_step(
          model.paramsPtr,
          model.gradsPtr,
          model.state1Ptr,
          n,
          o.learningRate,
          o.epsilon ?? ADAGRAD_DEFAULTS.epsilon,
          o.weightDecay ?? 0,
        );
        return;
    }
  }
}
