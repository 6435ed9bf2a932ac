/**
 * Model specs: a plain, JSON-able description of a Sequential network, its validation and shape
 * inference, and a small builder. Nothing here touches WebAssembly; `Model` turns a spec into an
 * arena layout and kernel calls.
 *
 * Tensor conventions: a dense layer's weight is stored (in, out) row-major — Keras's kernel layout,
 * the transpose of PyTorch's `Linear.weight` — and its bias is (out).
 */

export type Activation = 'relu' | 'linear' | 'softmax';
export const ACTIVATIONS: readonly Activation[] = ['relu', 'linear', 'softmax'];

/** Weight initialisers; biases always start at zero. */
export type InitName = 'glorot_uniform' | 'he_uniform' | 'uniform';
export const INITS: readonly InitName[] = ['glorot_uniform', 'he_uniform', 'uniform'];

export interface DenseSpec {
  type: 'dense';
  units: number;
  /** Default 'linear'. 'softmax' is only valid on the last layer (fused with cross-entropy). */
  activation?: Activation;
  /** Default: 'he_uniform' before a ReLU, 'glorot_uniform' otherwise. */
  init?: InitName;
  /** Half-width a of uniform(−a, a) when init is 'uniform'. */
  initScale?: number;
  /** Default true. */
  bias?: boolean;
}

export type LayerSpec = DenseSpec;

export interface ModelSpec {
  /** Optional display name (a preset's name, or the spec file's). */
  name?: string;
  /** Input features per sample: 784 for 28×28 MNIST. */
  inputSize: number;
  layers: LayerSpec[];
}

/** A layer after shape inference. */
export interface ResolvedDense {
  type: 'dense';
  index: number;
  inputSize: number;
  units: number;
  activation: Activation;
  init: InitName;
  initScale: number;
  bias: boolean;
  parameterCount: number;
}

export class SpecError extends Error {
  override name = 'SpecError';
}

function isPositiveInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

const DENSE_KEYS = new Set(['type', 'units', 'activation', 'init', 'initScale', 'bias']);

/** Validate a spec (e.g. parsed from a user's JSON file) and infer every layer's shapes. */
export function resolveSpec(spec: unknown): ResolvedDense[] {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new SpecError('model spec must be an object like { "inputSize": 784, "layers": [...] }');
  }
  const s = spec as Partial<ModelSpec> & Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!['name', 'inputSize', 'layers'].includes(key)) {
      throw new SpecError(`model spec: unknown field "${key}" (expected name, inputSize, layers)`);
    }
  }
  if (!isPositiveInt(s.inputSize)) {
    throw new SpecError(
      `model spec: inputSize must be a positive integer, got ${JSON.stringify(s.inputSize)}`,
    );
  }
  if (!Array.isArray(s.layers) || s.layers.length === 0) {
    throw new SpecError('model spec: layers must be a non-empty array');
  }
  const resolved: ResolvedDense[] = [];
  let size = s.inputSize;
  s.layers.forEach((layer: unknown, index: number) => {
    const where = `model spec: layers[${index}]`;
    if (typeof layer !== 'object' || layer === null)
      throw new SpecError(`${where} must be an object`);
    const l = layer as Record<string, unknown>;
    if (l.type !== 'dense') {
      throw new SpecError(
        `${where}: unknown layer type ${JSON.stringify(l.type)} (expected "dense")`,
      );
    }
    for (const key of Object.keys(l)) {
      if (!DENSE_KEYS.has(key)) {
        throw new SpecError(
          `${where}: unknown field "${key}" (expected ${[...DENSE_KEYS].join(', ')})`,
        );
      }
    }
    if (!isPositiveInt(l.units)) {
      throw new SpecError(
        `${where}: units must be a positive integer, got ${JSON.stringify(l.units)}`,
      );
    }
    const activation = (l.activation ?? 'linear') as Activation;
    if (!ACTIVATIONS.includes(activation)) {
      throw new SpecError(
        `${where}: unknown activation ${JSON.stringify(l.activation)} (expected ${ACTIVATIONS.join(', ')})`,
      );
    }
    if (activation === 'softmax' && index !== s.layers!.length - 1) {
      throw new SpecError(`${where}: softmax is only supported on the last layer`);
    }
    const init = (l.init ?? (activation === 'relu' ? 'he_uniform' : 'glorot_uniform')) as InitName;
    if (!INITS.includes(init)) {
      throw new SpecError(
        `${where}: unknown init ${JSON.stringify(l.init)} (expected ${INITS.join(', ')})`,
      );
    }
    let initScale = 0;
    if (init === 'uniform') {
      if (typeof l.initScale !== 'number' || !(l.initScale > 0) || !Number.isFinite(l.initScale)) {
        throw new SpecError(
          `${where}: init "uniform" needs initScale > 0 (the a of uniform(−a, a))`,
        );
      }
      initScale = l.initScale;
    } else if (l.initScale !== undefined) {
      throw new SpecError(`${where}: initScale only applies to init "uniform"`);
    }
    if (l.bias !== undefined && typeof l.bias !== 'boolean') {
      throw new SpecError(`${where}: bias must be true or false`);
    }
    const bias = l.bias ?? true;
    resolved.push({
      type: 'dense',
      index,
      inputSize: size,
      units: l.units,
      activation,
      init,
      initScale,
      bias,
      parameterCount: size * l.units + (bias ? l.units : 0),
    });
    size = l.units;
  });
  return resolved;
}

/** Builder: `sequential(784).dense(128, 'relu').dense(10, 'softmax').spec('my-net')`. */
export class SequentialBuilder {
  private readonly layers: LayerSpec[] = [];
  constructor(private readonly inputSize: number) {}

  dense(
    units: number,
    activation: Activation = 'linear',
    options: Omit<DenseSpec, 'type' | 'units' | 'activation'> = {},
  ): this {
    this.layers.push({ type: 'dense', units, activation, ...options });
    return this;
  }

  /** The finished spec, validated. */
  spec(name?: string): ModelSpec {
    const spec: ModelSpec = {
      ...(name ? { name } : {}),
      inputSize: this.inputSize,
      layers: [...this.layers],
    };
    resolveSpec(spec);
    return spec;
  }
}

export function sequential(inputSize = 784): SequentialBuilder {
  return new SequentialBuilder(inputSize);
}
