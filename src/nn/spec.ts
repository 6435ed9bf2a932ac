/**
 * Model specs: a plain, JSON-able description of a Sequential network, its validation and shape
 * inference, and a small builder. Nothing here touches WebAssembly; `Model` turns a resolved spec
 * into an arena layout and kernel calls.
 *
 * Tensor conventions (NHWC activations, row-major):
 *   activations  (B, H, W, C); a flat vector of n features is (B, 1, 1, n)
 *   dense        weight (in, out) — Keras's kernel layout, the transpose of PyTorch's Linear.weight
 *   conv2d       weight (KH, KW, C, OC) — Keras/TensorFlow's HWIO layout
 *   biases       (out) / (OC)
 * Flattening an (H, W, C) map is free: NHWC memory is already the (H·W·C) vector, in (h, w, c) order.
 */

export type Activation = 'relu' | 'leaky_relu' | 'elu' | 'sigmoid' | 'tanh' | 'linear' | 'softmax';
export const ACTIVATIONS: readonly Activation[] = [
  'relu',
  'leaky_relu',
  'elu',
  'sigmoid',
  'tanh',
  'linear',
  'softmax',
];
/** Hidden-layer activations (everything but the fused softmax output). */
export const HIDDEN_ACTIVATIONS: readonly Activation[] = [
  'relu',
  'leaky_relu',
  'elu',
  'sigmoid',
  'tanh',
  'linear',
];
/** Default α: 0.01 for LeakyReLU (PyTorch; Keras uses 0.3), 1.0 for ELU (both). */
export const DEFAULT_ALPHA: Readonly<Partial<Record<Activation, number>>> = {
  leaky_relu: 0.01,
  elu: 1,
};

/** Weight initialisers; biases always start at zero. */
export type InitName = 'glorot_uniform' | 'he_uniform' | 'uniform';
export const INITS: readonly InitName[] = ['glorot_uniform', 'he_uniform', 'uniform'];

interface WithActivation {
  /** Default 'linear'. 'softmax' is only valid on the last layer (fused with cross-entropy). */
  activation?: Activation;
  /** Slope (LeakyReLU) or saturation (ELU) α ≥ 0; defaults in DEFAULT_ALPHA. */
  alpha?: number;
  /** Default: 'he_uniform' before a ReLU-family activation, 'glorot_uniform' otherwise. */
  init?: InitName;
  /** Half-width a of uniform(−a, a) when init is 'uniform'. */
  initScale?: number;
  /** Default true. */
  bias?: boolean;
}

export interface DenseSpec extends WithActivation {
  type: 'dense';
  units: number;
}

export interface Conv2dSpec extends WithActivation {
  type: 'conv2d';
  filters: number;
  /** Square kernel side. */
  kernelSize: number;
  /** Default 1. */
  stride?: number;
  /** Zero padding on every side, default 0. */
  padding?: number;
}

export interface Pool2dSpec {
  type: 'maxPool2d' | 'avgPool2d';
  /** Square window side, default 2. */
  poolSize?: number;
  /** Default: poolSize. */
  stride?: number;
}

export interface DropoutSpec {
  type: 'dropout';
  /** Probability of zeroing an activation during training, in [0, 1). */
  rate: number;
}

export interface FlattenSpec {
  type: 'flatten';
}

export type LayerSpec = DenseSpec | Conv2dSpec | Pool2dSpec | DropoutSpec | FlattenSpec;
export type LayerType = LayerSpec['type'];
export const LAYER_TYPES: readonly LayerType[] = [
  'dense',
  'conv2d',
  'maxPool2d',
  'avgPool2d',
  'dropout',
  'flatten',
];

export interface ModelSpec {
  /** Optional display name (a preset's name, or the spec file's). */
  name?: string;
  /** Input features per sample for flat models: 784 for 28×28 MNIST. */
  inputSize?: number;
  /** [height, width, channels] for image models, e.g. [28, 28, 1]. Give this or inputSize. */
  inputShape?: [number, number, number];
  layers: LayerSpec[];
}

/** (H, W, C) of one sample; flat vectors are (1, 1, n). */
export interface Shape {
  h: number;
  w: number;
  c: number;
}

export const shapeSize = (s: Shape): number => s.h * s.w * s.c;
export const formatShape = (s: Shape): string =>
  s.h === 1 && s.w === 1 ? `(${s.c})` : `(${s.h}, ${s.w}, ${s.c})`;

/** A parameter tensor a layer owns, before it is placed in memory. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** 'zeros' for biases. */
  init: InitName | 'zeros';
  initScale: number;
  fanIn: number;
  fanOut: number;
}

/** A layer after validation and shape inference. */
export interface ResolvedLayer {
  index: number;
  type: LayerType;
  inShape: Shape;
  outShape: Shape;
  /** 'linear' for layers without one. */
  activation: Activation;
  alpha: number;
  /** dense / conv2d */
  bias: boolean;
  kernelSize: number;
  stride: number;
  padding: number;
  /** dropout */
  rate: number;
  params: ParamSpec[];
  parameterCount: number;
}

export class SpecError extends Error {
  override name = 'SpecError';
}

function isPositiveInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

const COMMON_KEYS = ['type'];
const ACT_KEYS = ['activation', 'alpha', 'init', 'initScale', 'bias'];
const KEYS: Record<LayerType, string[]> = {
  dense: [...COMMON_KEYS, 'units', ...ACT_KEYS],
  conv2d: [...COMMON_KEYS, 'filters', 'kernelSize', 'stride', 'padding', ...ACT_KEYS],
  maxPool2d: [...COMMON_KEYS, 'poolSize', 'stride'],
  avgPool2d: [...COMMON_KEYS, 'poolSize', 'stride'],
  dropout: [...COMMON_KEYS, 'rate'],
  flatten: [...COMMON_KEYS],
};

function inputShapeOf(s: Partial<ModelSpec>): Shape {
  if (s.inputShape !== undefined && s.inputSize !== undefined) {
    throw new SpecError('model spec: give either inputSize or inputShape, not both');
  }
  if (s.inputShape !== undefined) {
    const v = s.inputShape;
    if (!Array.isArray(v) || v.length !== 3 || !v.every(isPositiveInt)) {
      throw new SpecError(
        `model spec: inputShape must be [height, width, channels] of positive integers, got ${JSON.stringify(v)}`,
      );
    }
    return { h: v[0], w: v[1], c: v[2] };
  }
  if (!isPositiveInt(s.inputSize)) {
    throw new SpecError(
      `model spec: inputSize must be a positive integer (or give inputShape), got ${JSON.stringify(s.inputSize)}`,
    );
  }
  return { h: 1, w: 1, c: s.inputSize };
}

/** Activation fields shared by dense and conv2d. */
function resolveActivation(l: Record<string, unknown>, where: string, isLast: boolean) {
  const activation = (l.activation ?? 'linear') as Activation;
  if (!ACTIVATIONS.includes(activation)) {
    throw new SpecError(
      `${where}: unknown activation ${JSON.stringify(l.activation)} (expected ${ACTIVATIONS.join(', ')})`,
    );
  }
  if (activation === 'softmax' && !isLast)
    throw new SpecError(`${where}: softmax is only supported on the last layer`);
  let alpha = DEFAULT_ALPHA[activation] ?? 0;
  if (l.alpha !== undefined) {
    if (activation !== 'leaky_relu' && activation !== 'elu') {
      throw new SpecError(`${where}: alpha only applies to leaky_relu and elu, not ${activation}`);
    }
    if (typeof l.alpha !== 'number' || !Number.isFinite(l.alpha) || l.alpha < 0) {
      throw new SpecError(
        `${where}: alpha must be a number ≥ 0 for ${activation}, got ${JSON.stringify(l.alpha)}`,
      );
    }
    alpha = l.alpha;
  }
  const reluFamily = activation === 'relu' || activation === 'leaky_relu' || activation === 'elu';
  const init = (l.init ?? (reluFamily ? 'he_uniform' : 'glorot_uniform')) as InitName;
  if (!INITS.includes(init)) {
    throw new SpecError(
      `${where}: unknown init ${JSON.stringify(l.init)} (expected ${INITS.join(', ')})`,
    );
  }
  let initScale = 0;
  if (init === 'uniform') {
    if (typeof l.initScale !== 'number' || !(l.initScale > 0) || !Number.isFinite(l.initScale)) {
      throw new SpecError(`${where}: init "uniform" needs initScale > 0 (the a of uniform(−a, a))`);
    }
    initScale = l.initScale;
  } else if (l.initScale !== undefined) {
    throw new SpecError(`${where}: initScale only applies to init "uniform"`);
  }
  if (l.bias !== undefined && typeof l.bias !== 'boolean')
    throw new SpecError(`${where}: bias must be true or false`);
  return { activation, alpha, init, initScale, bias: l.bias ?? true };
}

function positiveField(
  l: Record<string, unknown>,
  key: string,
  where: string,
  fallback?: number,
): number {
  const v = l[key] ?? fallback;
  if (!isPositiveInt(v))
    throw new SpecError(
      `${where}: ${key} must be a positive integer, got ${JSON.stringify(l[key])}`,
    );
  return v;
}

/** Validate a spec (e.g. parsed from a user's JSON file) and infer every layer's shapes. */
export function resolveSpec(spec: unknown): ResolvedLayer[] {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new SpecError('model spec must be an object like { "inputSize": 784, "layers": [...] }');
  }
  const s = spec as Partial<ModelSpec> & Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!['name', 'inputSize', 'inputShape', 'layers'].includes(key)) {
      throw new SpecError(
        `model spec: unknown field "${key}" (expected name, inputSize or inputShape, layers)`,
      );
    }
  }
  let shape = inputShapeOf(s);
  if (!Array.isArray(s.layers) || s.layers.length === 0)
    throw new SpecError('model spec: layers must be a non-empty array');
  const layers = s.layers as unknown[];
  const resolved: ResolvedLayer[] = [];
  layers.forEach((layer, index) => {
    const where = `model spec: layers[${index}]`;
    if (typeof layer !== 'object' || layer === null)
      throw new SpecError(`${where} must be an object`);
    const l = layer as Record<string, unknown>;
    const type = l.type as LayerType;
    if (!LAYER_TYPES.includes(type)) {
      throw new SpecError(
        `${where}: unknown layer type ${JSON.stringify(l.type)} (expected ${LAYER_TYPES.join(', ')})`,
      );
    }
    const where2 = `${where} (${type})`;
    for (const key of Object.keys(l)) {
      if (!KEYS[type].includes(key))
        throw new SpecError(
          `${where2}: unknown field "${key}" (expected ${KEYS[type].join(', ')})`,
        );
    }
    const isLast = index === layers.length - 1;
    const base: ResolvedLayer = {
      index,
      type,
      inShape: shape,
      outShape: shape,
      activation: 'linear',
      alpha: 0,
      bias: false,
      kernelSize: 0,
      stride: 1,
      padding: 0,
      rate: 0,
      params: [],
      parameterCount: 0,
    };
    let r: ResolvedLayer;
    switch (type) {
      case 'dense': {
        const units = positiveField(l, 'units', where2);
        const act = resolveActivation(l, where2, isLast);
        const fanIn = shapeSize(shape);
        r = { ...base, ...act, outShape: { h: 1, w: 1, c: units } };
        r.params = [
          {
            name: `layers.${index}.weight`,
            shape: [fanIn, units],
            init: act.init,
            initScale: act.initScale,
            fanIn,
            fanOut: units,
          },
        ];
        break;
      }
      case 'conv2d': {
        const filters = positiveField(l, 'filters', where2);
        const k = positiveField(l, 'kernelSize', where2);
        const stride = positiveField(l, 'stride', where2, 1);
        const padding = l.padding ?? 0;
        if (typeof padding !== 'number' || !Number.isInteger(padding) || padding < 0) {
          throw new SpecError(
            `${where2}: padding must be an integer ≥ 0, got ${JSON.stringify(l.padding)}`,
          );
        }
        const act = resolveActivation(l, where2, isLast);
        const oh = Math.floor((shape.h + 2 * padding - k) / stride) + 1;
        const ow = Math.floor((shape.w + 2 * padding - k) / stride) + 1;
        if (oh < 1 || ow < 1) {
          throw new SpecError(
            `${where2}: a ${k}×${k} kernel with padding ${padding} does not fit the ${shape.h}×${shape.w} input ` +
              `${formatShape(shape)}; use a smaller kernel, more padding, or fewer pooling layers before it`,
          );
        }
        const fanIn = k * k * shape.c;
        r = {
          ...base,
          ...act,
          kernelSize: k,
          stride,
          padding,
          outShape: { h: oh, w: ow, c: filters },
        };
        r.params = [
          {
            name: `layers.${index}.weight`,
            shape: [k, k, shape.c, filters],
            init: act.init,
            initScale: act.initScale,
            fanIn,
            fanOut: k * k * filters,
          },
        ];
        break;
      }
      case 'maxPool2d':
      case 'avgPool2d': {
        const k = positiveField(l, 'poolSize', where2, 2);
        const stride = positiveField(l, 'stride', where2, k);
        const oh = Math.floor((shape.h - k) / stride) + 1;
        const ow = Math.floor((shape.w - k) / stride) + 1;
        if (shape.h < k || shape.w < k) {
          throw new SpecError(
            `${where2}: a ${k}×${k} pooling window does not fit the ${shape.h}×${shape.w} input ${formatShape(shape)}`,
          );
        }
        r = { ...base, kernelSize: k, stride, outShape: { h: oh, w: ow, c: shape.c } };
        break;
      }
      case 'dropout': {
        const rate = l.rate;
        if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) {
          throw new SpecError(
            `${where2}: rate must be a number in [0, 1), got ${JSON.stringify(rate)}`,
          );
        }
        r = { ...base, rate };
        break;
      }
      case 'flatten':
        r = { ...base, outShape: { h: 1, w: 1, c: shapeSize(shape) } };
        break;
    }
    if (r.bias && (type === 'dense' || type === 'conv2d')) {
      const n = r.outShape.c;
      r.params.push({
        name: `layers.${index}.bias`,
        shape: [n],
        init: 'zeros',
        initScale: 0,
        fanIn: 0,
        fanOut: 0,
      });
    }
    r.parameterCount = r.params.reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0);
    resolved.push(r);
    shape = r.outShape;
  });
  return resolved;
}

/** Builder: `sequential(784).dense(128, 'relu').dense(10, 'softmax').spec('my-net')`. */
export class SequentialBuilder {
  private readonly layers: LayerSpec[] = [];
  constructor(private readonly input: number | [number, number, number]) {}

  dense(
    units: number,
    activation: Activation = 'linear',
    options: Omit<DenseSpec, 'type' | 'units' | 'activation'> = {},
  ): this {
    this.layers.push({ type: 'dense', units, activation, ...options });
    return this;
  }

  conv2d(
    filters: number,
    kernelSize: number,
    activation: Activation = 'linear',
    options: Omit<Conv2dSpec, 'type' | 'filters' | 'kernelSize' | 'activation'> = {},
  ): this {
    this.layers.push({ type: 'conv2d', filters, kernelSize, activation, ...options });
    return this;
  }

  maxPool2d(poolSize = 2, stride?: number): this {
    this.layers.push({ type: 'maxPool2d', poolSize, ...(stride !== undefined ? { stride } : {}) });
    return this;
  }

  avgPool2d(poolSize = 2, stride?: number): this {
    this.layers.push({ type: 'avgPool2d', poolSize, ...(stride !== undefined ? { stride } : {}) });
    return this;
  }

  dropout(rate: number): this {
    this.layers.push({ type: 'dropout', rate });
    return this;
  }

  flatten(): this {
    this.layers.push({ type: 'flatten' });
    return this;
  }

  /** The finished spec, validated. */
  spec(name?: string): ModelSpec {
    const input =
      typeof this.input === 'number' ? { inputSize: this.input } : { inputShape: this.input };
    const spec: ModelSpec = { ...(name ? { name } : {}), ...input, layers: [...this.layers] };
    resolveSpec(spec);
    return spec;
  }
}

/** Start a spec: a number of input features, or an [height, width, channels] image shape. */
export function sequential(input: number | [number, number, number] = 784): SequentialBuilder {
  return new SequentialBuilder(input);
}
