/**
 * Importing weights that another framework saved as safetensors — PyTorch's `state_dict()` through
 * `safetensors.torch.save_file`, or a Keras-style dump — into a model built from a preset or spec.
 * Only weights travel: activations, padding and pooling come from the spec, which must describe the
 * same network as the other framework's forward pass.
 *
 * Pairing. The file's header order is no layer order (the reference writer sorts tensors by dtype,
 * then by name), so names decide. A name splits into a module and a role: `7.weight`, `fc1.bias`,
 * `dense_1/kernel:0`, `layers/dense/vars/0` (Keras 3: vars 0 and 1 are kernel and bias). Modules
 * sort naturally, numbers compared as numbers (`2` < `10`, `dense` < `dense_1` < `dense_10`),
 * weight before bias, and pair in that order with the model's tensors in layer order. A map
 * (mnist-wasm tensor name → file tensor name) pairs names that do not sort in layer order, such as
 * `features.*` before `classifier.*`; the rest still pair by order.
 *
 * Layouts (mnist-wasm: dense (in, out), conv (KH, KW, C, OC), activations NHWC):
 *   torch  Linear.weight (out, in) is transposed; Conv2d.weight (OC, C, KH, KW) is permuted.
 *          PyTorch flattens an NCHW map in (c, h, w) order, so the first Linear after a conv
 *          stack has its input columns reordered to mnist-wasm's (h, w, c).
 *   keras  Dense kernel (in, out), Conv2D kernel (KH, KW, C, OC) and a channels_last Flatten are
 *          mnist-wasm's own layouts: values are copied as stored.
 * F32 is copied; F64 is rounded to the nearest float32; F16 and BF16 widen exactly. Every check
 * (names, counts, dtypes, shapes, finite values) passes before the first value is written, so a
 * failed import leaves the model as it was.
 *
 * The container is parsed by ./safetensors-container.ts. No Node built-ins here (the browser can
 * import too); the CLI lives in ../cli/import.ts.
 */
import type { Model, ParamTensor } from '../nn/model.js';
import { formatShape, type ResolvedLayer, type Shape } from '../nn/spec.js';
import { describeSpec, MODEL_FORMAT, ModelFileError } from './safetensors.js';
import {
  readSafetensors,
  SafetensorsError,
  type SafetensorsFile,
  type SafetensorsTensor,
} from './safetensors-container.js';

export type WeightLayout = 'torch' | 'keras';
export const WEIGHT_LAYOUTS: readonly WeightLayout[] = ['torch', 'keras'];

export interface ImportOptions {
  layout: WeightLayout;
  /** mnist-wasm tensor (`layers.5.weight`) → file tensor name, for names out of layer order. */
  map?: Record<string, string>;
}

/** One pairing: which file tensor became which model tensor, and how. */
export interface ImportedTensor {
  /** The tensor's name, dtype and shape in the file. */
  file: string;
  dtype: string;
  fileShape: number[];
  /** The model tensor written (e.g. `layers.5.weight`) and its shape. */
  tensor: string;
  shape: number[];
  /** e.g. `layers[5] dense 400→120`. */
  layer: string;
  /** What happened to the values, e.g. `F16→F32 (exact); transposed (out, in) → (in, out)`. */
  conversion: string;
  /** Paired through `options.map` rather than by name order. */
  mapped: boolean;
}

export interface ImportReport {
  source: string;
  layout: WeightLayout;
  /** In the model's tensor order. */
  tensors: ImportedTensor[];
  /** One line per dtype conversion that happened. */
  notes: string[];
}

type Role = 'weight' | 'bias';

/** A model parameter tensor waiting for its file tensor. */
interface Slot {
  tensor: ParamTensor;
  layer: ResolvedLayer;
  role: Role;
  /** Dense weights: the (H, W, C) map the layer flattens ((1, 1, n) for a flat input). */
  flattens: Shape;
}

/** A file tensor with its name split into module and role (no role: not a weight or bias). */
interface FileItem {
  tensor: SafetensorsTensor;
  module: string;
  role?: Role;
}

const LIST_LIMIT = 12;
const FLOAT32_MAX = 3.4028234663852886e38;
/** The dtypes that convert to float32: F32 as is, F64 rounded to nearest, F16 and BF16 exactly. */
const FLOAT_DTYPES: readonly string[] = ['F32', 'F64', 'F16', 'BF16'];

/** IEEE 754 binary16 → number, exactly (every half is a float32). */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

/** A float tensor's values (file order) as a fresh Float32Array; see FLOAT_DTYPES. */
function toFloat32(t: SafetensorsTensor): Float32Array {
  // An aligned copy: file offsets need not be multiples of 8, and a Node Buffer's slice() is a view.
  const raw = new Uint8Array(t.bytes.length);
  raw.set(t.bytes);
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(raw.buffer);
    case 'F64':
      return Float32Array.from(new Float64Array(raw.buffer)); // round to nearest, ties to even
    case 'F16':
      return Float32Array.from(new Uint16Array(raw.buffer), halfToNumber);
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const halves = new Uint16Array(raw.buffer);
      const bits = new Uint32Array(halves.length);
      for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      throw new Error(`toFloat32: ${t.dtype} is not a float dtype`); // filtered out before
  }
}

/** Compare names naturally: runs of digits as numbers, everything else by code unit. */
export function naturalCompare(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i]!;
    const y = rb[i]!;
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) {
      // Compare digit runs without Number(): leading zeros stripped, then length, then digits.
      const xs = x.replace(/^0+(?=\d)/, '');
      const ys = y.replace(/^0+(?=\d)/, '');
      if (xs.length !== ys.length) return xs.length - ys.length;
      if (xs !== ys) return xs < ys ? -1 : 1;
      continue;
    }
    return x < y ? -1 : 1;
  }
  if (ra.length !== rb.length) return ra.length - rb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `7.weight` → (7, weight); `dense_1/kernel:0` → (dense_1, weight); `x/vars/1` → (x, bias). */
function splitName(name: string): { module: string; role?: Role } {
  const base = name.replace(/:\d+$/, ''); // TensorFlow's variable suffix
  const named = /^(.*)[./](weight|kernel|bias)$/.exec(base);
  if (named) return { module: named[1]!, role: named[2] === 'bias' ? 'bias' : 'weight' };
  const numbered = /^(.*)[./]vars[./]([01])$/.exec(base);
  if (numbered) return { module: numbered[1]!, role: numbered[2] === '0' ? 'weight' : 'bias' };
  return { module: base };
}

/** `layers[5] dense 400→120`, `layers[0] conv2d 5×5 1→6`. */
function describeLayer(l: ResolvedLayer): string {
  const io = `${l.inShape.h * l.inShape.w * l.inShape.c}→${l.outShape.c}`;
  return l.type === 'conv2d'
    ? `layers[${l.index}] conv2d ${l.kernelSize}×${l.kernelSize} ${l.inShape.c}→${l.outShape.c}`
    : `layers[${l.index}] ${l.type} ${io}`;
}

/** The map a dense layer flattens: back through flatten and dropout layers to a feature map. */
function flattenedMap(layers: readonly ResolvedLayer[], layer: ResolvedLayer): Shape {
  let shape = layer.inShape;
  for (let k = layer.index - 1; k >= 0; k--) {
    const before = layers[k]!;
    if (before.type !== 'flatten' && before.type !== 'dropout') break;
    shape = before.inShape;
  }
  return shape;
}

/** The slot's shape as the file's framework stores it. */
function fileShapeOf(slot: Slot, layout: WeightLayout): number[] {
  const s = slot.tensor.shape;
  if (layout === 'keras' || slot.role === 'bias') return [...s];
  return slot.layer.type === 'dense' ? [s[1]!, s[0]!] : [s[3]!, s[2]!, s[0]!, s[1]!];
}

/** How the framework names that layout, for messages. */
function layoutWords(slot: Slot, layout: WeightLayout): string {
  if (slot.role === 'bias') return 'a bias is (out)';
  if (layout === 'torch') {
    return slot.layer.type === 'dense'
      ? 'Linear.weight is (out, in)'
      : 'Conv2d.weight is (out_channels, in_channels, kH, kW)';
  }
  return slot.layer.type === 'dense'
    ? 'a Dense kernel is (in, out)'
    : 'a Conv2D kernel is (kH, kW, in_channels, out_channels)';
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);
const showShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** `"a" [2, 3], "b" [4], … and 7 more`. */
function listTensors(items: readonly SafetensorsTensor[]): string {
  const shown = items.slice(0, LIST_LIMIT).map((t) => `"${t.name}" ${showShape(t.shape)}`);
  if (items.length > LIST_LIMIT) shown.push(`… and ${items.length - LIST_LIMIT} more`);
  return shown.join(', ');
}

/**
 * dweight (H·W·C, OUT), rows in (h, w, c) order ← tweight (OUT, C·H·W), columns in PyTorch's
 * (c, h, w) flatten order. With H = W = 1 (a flat input) or C = 1 this is a plain transpose.
 */
function denseWeightFromTorch(
  dweight: Float32Array,
  tweight: Float32Array,
  H: number,
  W: number,
  C: number,
  OUT: number,
): void {
  const IN = H * W * C;
  for (let o = 0; o < OUT; o++) {
    for (let c = 0; c < C; c++) {
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          dweight[((h * W + w) * C + c) * OUT + o] = tweight[o * IN + (c * H + h) * W + w]!;
        }
      }
    }
  }
}

/** cweight (KH, KW, C, OC) ← tweight (OC, C, KH, KW). */
function convWeightFromTorch(
  cweight: Float32Array,
  tweight: Float32Array,
  KH: number,
  KW: number,
  C: number,
  OC: number,
): void {
  for (let oc = 0; oc < OC; oc++) {
    for (let c = 0; c < C; c++) {
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++) {
          cweight[((kh * KW + kw) * C + c) * OC + oc] =
            tweight[((oc * C + c) * KH + kh) * KW + kw]!;
        }
      }
    }
  }
}

/** The slot's values in mnist-wasm's layout, and a few words on what was done. */
function toModelLayout(
  slot: Slot,
  layout: WeightLayout,
  values: Float32Array,
): { values: Float32Array; how: string } {
  if (layout === 'keras' || slot.role === 'bias') return { values, how: 'as stored' };
  const out = new Float32Array(values.length);
  const s = slot.tensor.shape;
  if (slot.layer.type === 'conv2d') {
    convWeightFromTorch(out, values, s[0]!, s[1]!, s[2]!, s[3]!);
    return { values: out, how: '(OC, C, KH, KW) → (KH, KW, C, OC)' };
  }
  const m = slot.flattens;
  denseWeightFromTorch(out, values, m.h, m.w, m.c, s[1]!);
  const reordered = m.h * m.w > 1 && m.c > 1;
  return {
    values: out,
    how:
      'transposed (out, in) → (in, out)' +
      (reordered
        ? `, inputs reordered from PyTorch's (c, h, w) flatten to (h, w, c) of the ${formatShape(m)} map`
        : ''),
  };
}

type Pairs = Map<Slot, { tensor: SafetensorsTensor; mapped: boolean }>;

/**
 * Every slot's file tensor: the map's pairs first, then the rest in natural name order (weight
 * before bias per module) against the slots in layer order. Fails listing every model tensor left
 * without a file tensor and every file tensor left over.
 */
function pairTensors(
  slots: readonly Slot[],
  file: SafetensorsFile,
  map: Record<string, string> | undefined,
  architecture: string,
  fail: (what: string) => never,
): Pairs {
  const pairs: Pairs = new Map();
  const tensors = [...file.tensors.values()];
  const mappedFile = new Map<string, string>();
  if (map !== undefined && (typeof map !== 'object' || map === null || Array.isArray(map))) {
    fail(
      `map must be an object of mnist-wasm tensor name → file tensor name, got ${JSON.stringify(map)}`,
    );
  }
  for (const [modelName, fileName] of Object.entries(map ?? {})) {
    const slot = slots.find((s) => s.tensor.name === modelName);
    if (!slot) {
      fail(
        `map: "${modelName}" is not a parameter tensor of ${architecture} ` +
          `(it has ${slots.map((s) => s.tensor.name).join(', ')})`,
      );
    }
    if (typeof fileName !== 'string') {
      fail(
        `map: "${modelName}" must name a file tensor (a string), got ${JSON.stringify(fileName)}`,
      );
    }
    const tensor = file.tensors.get(fileName);
    if (!tensor) {
      fail(
        `map: "${modelName}" → "${fileName}", which is not in the file (it holds ${listTensors(tensors)})`,
      );
    }
    if (mappedFile.has(fileName)) {
      fail(`map: "${fileName}" is given for both ${mappedFile.get(fileName)} and ${modelName}`);
    }
    mappedFile.set(fileName, modelName);
    pairs.set(slot!, { tensor: tensor!, mapped: true });
  }
  const openSlots = slots.filter((s) => !pairs.has(s));
  const items: FileItem[] = tensors
    .filter((t) => !mappedFile.has(t.name))
    .map((tensor) => ({ tensor, ...splitName(tensor.name) }));
  const named = items
    .filter((f) => f.role !== undefined)
    .sort(
      (a, b) =>
        naturalCompare(a.module, b.module) ||
        (a.role === b.role ? 0 : a.role === 'weight' ? -1 : 1) ||
        naturalCompare(a.tensor.name, b.tensor.name),
    );
  const unmatched = items.filter((f) => f.role === undefined).map((f) => f.tensor);
  const missing: string[] = [];
  let i = 0;
  let j = 0;
  while (i < openSlots.length && j < named.length) {
    const slot = openSlots[i]!;
    const item = named[j]!;
    if (slot.role === item.role) {
      pairs.set(slot, { tensor: item.tensor, mapped: false });
      i++;
      j++;
    } else if (slot.role === 'bias') {
      // The layer has a bias; the file's module ended without one.
      const previous = named[j - 1];
      missing.push(
        `${slot.tensor.name} (the bias of ${describeLayer(slot.layer)}` +
          (previous ? `; module "${previous.module}" in the file has none)` : ')'),
      );
      i++;
    } else {
      // A bias in the file for a layer built without one (bias: false), or a module without weight.
      unmatched.push(item.tensor);
      j++;
    }
  }
  for (; i < openSlots.length; i++) {
    const slot = openSlots[i]!;
    missing.push(`${slot.tensor.name} (the ${slot.role} of ${describeLayer(slot.layer)})`);
  }
  for (; j < named.length; j++) unmatched.push(named[j]!.tensor);
  if (missing.length > 0 || unmatched.length > 0) {
    const parts = [
      `${tensors.length} tensors in the file for ${slots.length} parameter tensors in ${architecture}`,
    ];
    if (missing.length > 0) parts.push(`no tensor in the file for ${missing.join(', ')}`);
    if (unmatched.length > 0)
      parts.push(`tensors in the file that match no parameter: ${listTensors(unmatched)}`);
    fail(
      `${parts.join('; ')}. Tensors pair in natural name order (weight before bias per module); ` +
        `give a map (mnist-wasm tensor → file tensor) for names that do not sort in layer order`,
    );
  }
  return pairs;
}

/**
 * Read a foreign safetensors file into `model`'s parameters (see the file header for the rules).
 * Throws a ModelFileError naming `source`, and then leaves the model untouched. On success the
 * model's metadata records the source and layout.
 */
export function importForeignWeights(
  model: Model,
  bytes: Uint8Array,
  source: string,
  options: ImportOptions,
): ImportReport {
  const fail = (what: string): never => {
    throw new ModelFileError(`${source}: ${what}`);
  };
  const { layout } = options;
  if (!WEIGHT_LAYOUTS.includes(layout)) {
    fail(`unknown layout ${JSON.stringify(layout)} (expected ${WEIGHT_LAYOUTS.join(' or ')})`);
  }
  let file: SafetensorsFile;
  try {
    file = readSafetensors(bytes, source);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ModelFileError(e.message);
    throw e;
  }
  if (file.metadata.format === MODEL_FORMAT) {
    fail('this is an mnist-wasm model file already: load it (loadModel, --model FILE) instead');
  }
  const architecture = `${model.name} (${describeSpec(model.spec)})`;
  const tensors = [...file.tensors.values()];

  const integers = tensors.filter((t) => !FLOAT_DTYPES.includes(t.dtype));
  if (integers.length > 0) {
    fail(
      `${integers.map((t) => `tensor "${t.name}" has dtype ${t.dtype}`).join(', ')}; only ` +
        `floating-point tensors (${FLOAT_DTYPES.join(', ')}) can be imported as weights ` +
        `(integer tensors such as BatchNorm's num_batches_tracked have no counterpart in mnist-wasm)`,
    );
  }

  const slots: Slot[] = [];
  for (const layer of model.layers) {
    for (const p of layer.params) {
      slots.push({
        tensor: model.tensor(p.name),
        layer,
        role: p.name.endsWith('.bias') ? 'bias' : 'weight',
        flattens: layer.type === 'dense' ? flattenedMap(model.layers, layer) : layer.inShape,
      });
    }
  }

  const pairs = pairTensors(slots, file, options.map, architecture, fail);

  const wrong: string[] = [];
  for (const slot of slots) {
    const { tensor } = pairs.get(slot)!;
    const expected = fileShapeOf(slot, layout);
    if (sameShape(tensor.shape, expected)) continue;
    const other = fileShapeOf(slot, layout === 'torch' ? 'keras' : 'torch');
    wrong.push(
      `"${tensor.name}" is ${showShape(tensor.shape)} but ${slot.tensor.name} of ` +
        `${describeLayer(slot.layer)} needs ${showShape(expected)} (${layoutWords(slot, layout)})` +
        (sameShape(tensor.shape, other) && !sameShape(other, expected)
          ? ` — ${showShape(other)} is the ${layout === 'torch' ? 'keras' : 'torch'} layout`
          : ''),
    );
  }
  if (wrong.length > 0) {
    fail(
      `tensor shapes do not fit ${architecture} in the ${layout} layout: ${wrong.join('; ')}. ` +
        `Is the file for another architecture, or do its names not sort in layer order (then give a map)?`,
    );
  }

  const converted: { slot: Slot; values: Float32Array }[] = [];
  const report: ImportedTensor[] = [];
  const dtypes = new Set<string>();
  for (const slot of slots) {
    const { tensor, mapped } = pairs.get(slot)!;
    const values = toFloat32(tensor);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const where = `tensor "${tensor.name}" (for ${slot.tensor.name}) holds`;
      const stored =
        tensor.dtype === 'F64'
          ? new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset).getFloat64(8 * bad, true)
          : values[bad]!;
      fail(
        Number.isFinite(stored)
          ? `${where} ${stored} at index ${bad}, beyond float32's range (±${FLOAT32_MAX.toPrecision(3)})`
          : `${where} a non-finite value (${stored}) at index ${bad}`,
      );
    }
    const { values: laid, how } = toModelLayout(slot, layout, values);
    dtypes.add(tensor.dtype);
    converted.push({ slot, values: laid });
    const cast =
      tensor.dtype === 'F32'
        ? ''
        : `${tensor.dtype}→F32 (${tensor.dtype === 'F64' ? 'rounded' : 'exact'}); `;
    report.push({
      file: tensor.name,
      dtype: tensor.dtype,
      fileShape: [...tensor.shape],
      tensor: slot.tensor.name,
      shape: [...slot.tensor.shape],
      layer: describeLayer(slot.layer),
      conversion: cast + how,
      mapped,
    });
  }

  // Everything checked: now write.
  const params = model.parameters();
  for (const { slot, values } of converted) params.set(values, slot.tensor.offset);
  model.metadata = { seed: model.seed, importedFrom: source, importLayout: layout };
  const notes: string[] = [];
  if (dtypes.has('F64')) notes.push('F64 values were rounded to the nearest float32');
  if (dtypes.has('F16')) notes.push('F16 values were widened to float32 exactly');
  if (dtypes.has('BF16')) notes.push('BF16 values were widened to float32 exactly');
  return { source, layout, tensors: report, notes };
}
