/**
 * `mnist-wasm export`: write a saved model as an ONNX file (see ../io/onnx.ts for the graph's
 * interface). The output is checked for writability before the model is read and written
 * atomically, so a failed export leaves nothing behind.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { checkWritable, loadModel, writeFileAtomic } from '../io/files.js';
import {
  encodeOnnx,
  ONNX_BATCH_DIM,
  ONNX_INPUT,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  ONNX_OUTPUT,
  OnnxExportError,
} from '../io/onnx.js';

export interface ExportOptions {
  /** A .safetensors model written by `train --out`. */
  model: string;
  /** The .onnx file to write. */
  onnx: string;
  /** Print one JSON object instead of the summary line. */
  json?: boolean;
}

export async function exportCommand(o: ExportOptions): Promise<void> {
  if (resolve(o.onnx) === resolve(o.model)) {
    throw new OnnxExportError(
      `--onnx ${o.onnx} is the model file itself; give a different path (e.g. model.onnx)`,
    );
  }
  checkWritable(o.onnx);
  const model = loadModel(o.model);
  const bytes = encodeOnnx(model);
  writeFileAtomic(o.onnx, bytes);
  const softmax = model.layers[model.layers.length - 1]!.activation === 'softmax';
  const input = [ONNX_BATCH_DIM, model.inputSize];
  const output = [ONNX_BATCH_DIM, model.outputSize];
  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        onnx: o.onnx,
        model: model.name,
        bytes: bytes.length,
        opset: ONNX_OPSET,
        irVersion: ONNX_IR_VERSION,
        input: { name: ONNX_INPUT, type: 'float32', shape: input },
        output: { name: ONNX_OUTPUT, type: 'float32', shape: output, probabilities: softmax },
      }) + '\n',
    );
    return;
  }
  process.stdout.write(
    `wrote ${o.onnx}: ${model.name}, ${bytes.length.toLocaleString('en-US')} bytes, ` +
      `ONNX opset ${ONNX_OPSET} (IR ${ONNX_IR_VERSION}), ` +
      `input "${ONNX_INPUT}" float32 [${input.join(', ')}] (pixels / 255), ` +
      `output "${ONNX_OUTPUT}" float32 [${output.join(', ')}]` +
      `${softmax ? ' (probabilities)' : ''}\n`,
  );
}

/** Add the `export` command to the CLI program. */
export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('write a saved model as an ONNX file (runs in ONNX Runtime, Netron, …)')
    .requiredOption('--model <file>', 'model file written by train --out (.safetensors)')
    .requiredOption('--onnx <file>', 'the .onnx file to write')
    .option('--json', 'print one JSON summary on stdout')
    .action(exportCommand);
}
