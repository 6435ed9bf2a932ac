/**
 * ONNX export: a model as an ONNX ModelProto (https://onnx.ai) that ONNX Runtime, Netron, and
 * anything else that reads ONNX can run, computing what mnist-wasm's `predict` computes.
 *
 * Graph interface (opset 13, IR version 7):
 *   input   "input"   float32 (batch, inputSize): pixels in (h, w, c) row-major order, each uint8
 *                     value p as the float32 product p · f32(1/255) — exactly the floats `predict`
 *                     and training stage from uint8 images (0 = background, 1 = full ink)
 *   output  "output"  float32 (batch, outputSize): probabilities when the last activation is
 *                     softmax, the raw outputs of the last layer otherwise; a map-shaped output
 *                     is flattened in (h, w, c) order, as `predict` returns it
 * "batch" is a symbolic dimension: any number of samples per run.
 *
 * Layouts: mnist-wasm's activations are NHWC with conv weights (KH, KW, C, OC); ONNX's Conv and
 * pooling are NCHW with weights (OC, C, KH, KW). The exported graph keeps each value in one of two
 * layouts, tracked while the layers are walked:
 *   flat  (batch, n)        the input, dense outputs, anything flattened; n in (h, w, c) order
 *   nchw  (batch, C, H, W)  conv and pooling outputs
 * Entering a conv/pool from flat: Reshape to (batch, H, W, C), Transpose to NCHW. Leaving a map
 * for a dense layer, a flatten, or the graph output: Transpose back to NHWC, then Flatten — so the
 * flat order is mnist-wasm's and dense weights are exported unchanged. (Permuting the first dense
 * layer's rows instead would save one small transpose per map, but then a map reaching the output,
 * a dropout before the dense, or a flatten with no dense after it would each need their own
 * case; one rule for every map → flat transition is easier to trust.)
 * Dense layers are Gemm (weights (in, out) as stored, bias broadcast); conv2d is Conv with
 * symmetric `pads`; pools have no padding and floor rounding, avgPool divides by K·K; dropout
 * is the identity at inference and emits no node.
 *
 * The protobuf schema is a subset of onnx.proto (same messages, fields and field numbers),
 * compiled at load time by protobufjs; nothing here touches the file system (the browser can use
 * it too). Tensors are stored little-endian in `raw_data`.
 */
import protobuf from 'protobufjs';
import type { Model } from '../nn/model.js';
import { describeSpec } from './safetensors.js';
import { ACTIVATIONS, shapeSize, type Activation, type Shape } from '../nn/spec.js';

/** Opset 13 has every operator used here with today's semantics (Softmax over one axis). */
export const ONNX_OPSET = 13;
/** The IR version that introduced opset 13 (ONNX 1.8). */
export const ONNX_IR_VERSION = 7;
export const ONNX_PRODUCER = 'mnist-wasm';
export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'output';
export const ONNX_BATCH_DIM = 'batch';

/** A model that cannot be written as ONNX: says what, where, and what was expected. */
export class OnnxExportError extends Error {
  override name = 'OnnxExportError';
}

// The subset of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto) this exporter writes and its
// tests read; field numbers are the official ones, so any ONNX reader parses the result.
const ONNX_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  optional string name = 1;
  optional string doc_string = 13;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  repeated TensorProto tensors = 10;
  repeated GraphProto graphs = 11;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType {
    UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7;
    STRING = 8; BOOL = 9; FLOAT16 = 10; DOUBLE = 11; UINT32 = 12; UINT64 = 13;
  }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6;
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
  repeated uint64 uint64_data = 11 [packed = true];
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

// keepCase: the messages use onnx.proto's own snake_case field names (ir_version, op_type, …).
const root = protobuf.parse(ONNX_PROTO, { keepCase: true }).root;
const ModelProto = root.lookupType('onnx.ModelProto');

/** TensorProto.DataType values used here. */
export const ONNX_FLOAT = 1;
export const ONNX_INT64 = 7;
/** AttributeProto.AttributeType values used here. */
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

// Plain-object views of the messages (field names as in onnx.proto), for building and reading.
export interface OnnxDimension {
  dim_value?: number;
  dim_param?: string;
}
export interface OnnxValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: OnnxDimension[] } } };
  doc_string?: string;
}
export interface OnnxTensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
  doc_string?: string;
}
export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  ints?: number[];
}
export interface OnnxNode {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: OnnxAttribute[];
  doc_string?: string;
}
export interface OnnxGraph {
  name: string;
  node: OnnxNode[];
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  doc_string?: string;
}
export interface OnnxModel {
  ir_version: number;
  opset_import: { domain?: string; version: number }[];
  producer_name: string;
  producer_version?: string;
  doc_string: string;
  graph: OnnxGraph;
  metadata_props: { key: string; value: string }[];
}

export interface OnnxExportOptions {
  /** Recorded as the model's producer_version (e.g. the package version). */
  producerVersion?: string;
  /** The graph's name; default: the model's name. */
  graphName?: string;
}

const floatAttr = (name: string, f: number): OnnxAttribute => ({ name, type: ATTR_FLOAT, f });
const intAttr = (name: string, i: number): OnnxAttribute => ({ name, type: ATTR_INT, i });
const intsAttr = (name: string, ints: number[]): OnnxAttribute => ({ name, type: ATTR_INTS, ints });

function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTensor {
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return { name, dims, data_type: ONNX_FLOAT, raw_data: raw };
}

function int64Tensor(name: string, values: number[]): OnnxTensor {
  const raw = new Uint8Array(values.length * 8);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return { name, dims: [values.length], data_type: ONNX_INT64, raw_data: raw };
}

function valueInfo(name: string, size: number, doc: string): OnnxValueInfo {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: ONNX_FLOAT,
        shape: { dim: [{ dim_param: ONNX_BATCH_DIM }, { dim_value: size }] },
      },
    },
    doc_string: doc,
  };
}

/** (KH, KW, C, OC) → (OC, C, KH, KW). */
function convWeightToOihw(w: Float32Array, KH: number, KW: number, C: number, OC: number) {
  const out = new Float32Array(w.length);
  for (let kh = 0; kh < KH; kh++)
    for (let kw = 0; kw < KW; kw++)
      for (let c = 0; c < C; c++)
        for (let oc = 0; oc < OC; oc++)
          out[((oc * C + c) * KH + kh) * KW + kw] = w[((kh * KW + kw) * C + c) * OC + oc]!;
  return out;
}

/** ONNX operator and attributes of an element-wise activation (none for linear). */
function activationNode(act: Activation, alpha: number): [string, OnnxAttribute[]] | undefined {
  switch (act) {
    case 'relu':
      return ['Relu', []];
    case 'leaky_relu':
      return ['LeakyRelu', [floatAttr('alpha', alpha)]];
    case 'elu':
      return ['Elu', [floatAttr('alpha', alpha)]];
    case 'sigmoid':
      return ['Sigmoid', []];
    case 'tanh':
      return ['Tanh', []];
    case 'linear':
    case 'softmax': // softmax is applied on the flat output, after the layer walk
      return undefined;
  }
}

/** A model's ONNX graph, as plain objects (encodeOnnx serialises it). */
export function onnxModelOf(model: Model, options: OnnxExportOptions = {}): OnnxModel {
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  /** Add a float initializer; returns its name. */
  const weight = (name: string, dims: number[], values: Float32Array): string => {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) {
        throw new OnnxExportError(
          `cannot export ${model.name}: parameter ${name} holds ${values[i]} at index ${i}; ` +
            `expected finite weights (did training diverge?)`,
        );
      }
    }
    initializers.push(floatTensor(name, dims, values));
    return name;
  };
  /** Add an int64 initializer (a Reshape target shape); returns its name. */
  const shapeConstant = (name: string, values: number[]): string => {
    initializers.push(int64Tensor(name, values));
    return name;
  };
  /** Add a node with one output, named like the node; returns the output's name. */
  const emit = (
    name: string,
    opType: string,
    inputs: string[],
    attribute: OnnxAttribute[] = [],
  ): string => {
    nodes.push({ name, op_type: opType, input: inputs, output: [name], attribute });
    return name;
  };

  let x = ONNX_INPUT;
  let layout: 'flat' | 'nchw' = 'flat';
  /** Bring x, a value of `shape`, into NCHW. */
  const toNchw = (shape: Shape, where: string): void => {
    if (layout === 'nchw') return;
    // A 0 in a Reshape target copies that input dimension (opset 13 has no allowzero), so the
    // batch passes through, an empty batch included.
    if (shape.h === 1 && shape.w === 1) {
      // (batch, C) and (batch, C, 1, 1) hold the same floats in the same order.
      const target = shapeConstant(`${where}.nchw_shape`, [0, shape.c, 1, 1]);
      x = emit(`${where}.to_nchw`, 'Reshape', [x, target]);
    } else {
      const target = shapeConstant(`${where}.nhwc_shape`, [0, shape.h, shape.w, shape.c]);
      x = emit(`${where}.to_nhwc`, 'Reshape', [x, target]);
      x = emit(`${where}.to_nchw`, 'Transpose', [x], [intsAttr('perm', [0, 3, 1, 2])]);
    }
    layout = 'nchw';
  };
  /** Bring x, a value of `shape`, into flat (batch, H·W·C) in mnist-wasm's (h, w, c) order. */
  const toFlat = (shape: Shape, where: string): void => {
    if (layout === 'flat') return;
    if (shape.h !== 1 || shape.w !== 1)
      x = emit(`${where}.to_nhwc`, 'Transpose', [x], [intsAttr('perm', [0, 2, 3, 1])]);
    x = emit(`${where}.flatten`, 'Flatten', [x], [intAttr('axis', 1)]);
    layout = 'flat';
  };

  for (const l of model.layers) {
    const where = `layers.${l.index}`;
    const describe = `layers[${l.index}] (${l.type})`;
    if (!ACTIVATIONS.includes(l.activation)) {
      throw new OnnxExportError(
        `cannot export ${model.name}: ${describe} has activation "${l.activation}"; ` +
          `expected one of ${ACTIVATIONS.join(', ')}`,
      );
    }
    if (l.activation === 'softmax' && l.index !== model.layers.length - 1) {
      throw new OnnxExportError(
        `cannot export ${model.name}: ${describe} uses softmax, which is only supported on the last layer`,
      );
    }
    const biasOf = (n: number): string[] =>
      l.bias ? [weight(`${where}.bias`, [n], model.tensorView(`${where}.bias`))] : [];
    switch (l.type) {
      case 'dense': {
        toFlat(l.inShape, where);
        const K = shapeSize(l.inShape);
        const N = l.outShape.c;
        const w = weight(`${where}.weight`, [K, N], model.tensorView(`${where}.weight`));
        x = emit(`${where}.gemm`, 'Gemm', [x, w, ...biasOf(N)]);
        break;
      }
      case 'conv2d': {
        toNchw(l.inShape, where);
        const k = l.kernelSize;
        const C = l.inShape.c;
        const OC = l.outShape.c;
        const oihw = convWeightToOihw(model.tensorView(`${where}.weight`), k, k, C, OC);
        const w = weight(`${where}.weight`, [OC, C, k, k], oihw);
        x = emit(
          `${where}.conv`,
          'Conv',
          [x, w, ...biasOf(OC)],
          [
            intsAttr('kernel_shape', [k, k]),
            intsAttr('strides', [l.stride, l.stride]),
            intsAttr('pads', [l.padding, l.padding, l.padding, l.padding]),
            intsAttr('dilations', [1, 1]),
            intAttr('group', 1),
          ],
        );
        break;
      }
      case 'maxPool2d':
      case 'avgPool2d': {
        toNchw(l.inShape, where);
        const k = l.kernelSize;
        const attrs = [
          intsAttr('kernel_shape', [k, k]),
          intsAttr('strides', [l.stride, l.stride]),
          intsAttr('pads', [0, 0, 0, 0]),
          intAttr('ceil_mode', 0),
        ];
        if (l.type === 'avgPool2d') attrs.push(intAttr('count_include_pad', 0));
        const op = l.type === 'maxPool2d' ? 'MaxPool' : 'AveragePool';
        x = emit(`${where}.${l.type === 'maxPool2d' ? 'max_pool' : 'avg_pool'}`, op, [x], attrs);
        break;
      }
      case 'dropout':
        // Inverted dropout scales at training time, so inference is the identity: no node.
        break;
      case 'flatten':
        toFlat(l.inShape, where);
        break;
      default:
        throw new OnnxExportError(
          `cannot export ${model.name}: ${describe} is not a layer type the ONNX exporter knows; ` +
            `expected dense, conv2d, maxPool2d, avgPool2d, dropout or flatten`,
        );
    }
    const act = activationNode(l.activation, l.alpha);
    if (act) x = emit(`${where}.${l.activation}`, act[0], [x], act[1]);
  }

  const last = model.layers[model.layers.length - 1]!;
  toFlat(last.outShape, 'output');
  const softmax = last.activation === 'softmax';
  if (softmax) x = emit(`layers.${last.index}.softmax`, 'Softmax', [x], [intAttr('axis', 1)]);
  // The graph output is the last node's output, renamed; a model of only dropout/flatten layers
  // on a flat input has no node yet and gets an Identity.
  if (x === ONNX_INPUT) emit(ONNX_OUTPUT, 'Identity', [x]);
  const final = nodes[nodes.length - 1]!;
  final.output = [ONNX_OUTPUT];

  const inputDoc =
    `float32 (batch, ${model.inputSize}): ${shapeText(model.inputShape)} pixels in (h, w, c) ` +
    `row-major order, each uint8 pixel p given as the float32 product p · f32(1/255), as ` +
    `mnist-wasm's predict scales them`;
  const outputDoc = softmax
    ? `float32 (batch, ${model.outputSize}): class probabilities (softmax)`
    : `float32 (batch, ${model.outputSize}): the last layer's ${last.activation} outputs`;
  const description =
    `mnist-wasm model ${model.name} (${describeSpec(model.spec)}), ` +
    `${model.parameterCount.toLocaleString('en-US')} parameters. Input "${ONNX_INPUT}": ${inputDoc}. ` +
    `Output "${ONNX_OUTPUT}": ${outputDoc}. Spec: ${JSON.stringify(model.spec)}`;

  return {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: ONNX_PRODUCER,
    ...(options.producerVersion ? { producer_version: options.producerVersion } : {}),
    doc_string: description,
    graph: {
      name: options.graphName ?? model.name,
      node: nodes,
      initializer: initializers,
      input: [valueInfo(ONNX_INPUT, model.inputSize, inputDoc)],
      output: [valueInfo(ONNX_OUTPUT, model.outputSize, outputDoc)],
      doc_string: description,
    },
    metadata_props: [
      { key: 'mnist-wasm.spec', value: JSON.stringify(model.spec) },
      { key: 'mnist-wasm.training', value: JSON.stringify(model.metadata) },
    ],
  };
}

function shapeText(s: Shape): string {
  return s.h === 1 && s.w === 1 ? `${s.c}` : `${s.h}×${s.w}×${s.c}`;
}

/** Serialise `model` as an ONNX ModelProto (the bytes of a .onnx file). */
export function encodeOnnx(model: Model, options: OnnxExportOptions = {}): Uint8Array {
  const message = onnxModelOf(model, options);
  const problem = ModelProto.verify(message);
  if (problem) throw new Error(`internal error: the ONNX message does not verify: ${problem}`);
  return ModelProto.encode(ModelProto.fromObject(message)).finish();
}

/** Parse ONNX bytes with the same schema (int64 fields as numbers); `source` names them in errors. */
export function decodeOnnx(bytes: Uint8Array, source = 'ONNX bytes'): OnnxModel {
  let message;
  try {
    message = ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${source}: not an ONNX ModelProto (${(e as Error).message})`);
  }
  return ModelProto.toObject(message, { longs: Number, arrays: true }) as OnnxModel;
}
