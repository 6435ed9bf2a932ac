/**
 * Making models: from a preset name, a spec object, or a spec JSON file.
 */
import { readFileSync } from 'node:fs';
import type { Engine } from '../engine/engine.js';
import { createEngine } from '../engine/node.js';
import { Model } from './model.js';
import { preset, presetNames } from './presets.js';
import { SpecError, type ModelSpec } from './spec.js';

/** A new model with weights drawn from `seed`, on its own engine unless one is given. */
export function createModel(
  spec: ModelSpec | string,
  options: { seed?: number; engine?: Engine } = {},
): Model {
  const resolved = typeof spec === 'string' ? specFromName(spec) : spec;
  return new Model(resolved, options.engine ?? createEngine(), options.seed ?? 1);
}

/** A preset name, or the path of a JSON spec file. */
export function specFromName(nameOrPath: string): ModelSpec {
  const p = preset(nameOrPath);
  if (p) return p;
  if (!nameOrPath.endsWith('.json')) {
    throw new SpecError(
      `unknown model "${nameOrPath}": expected a preset (${presetNames().join(', ')}) or a spec .json file`,
    );
  }
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch {
    throw new SpecError(`model spec file ${nameOrPath} cannot be read (does it exist?)`);
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw new SpecError(`model spec file ${nameOrPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof spec === 'object' && spec !== null && !('name' in spec)) {
    (spec as ModelSpec).name = nameOrPath.replace(/^.*[\\/]/, '').replace(/\.json$/, '');
  }
  return spec as ModelSpec;
}
