/**
 * Node loader: compiles build/mnist-wasm.wasm once per process and hands out engines.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Engine, type EngineOptions } from './engine.js';

let compiled: WebAssembly.Module | undefined;

/** The wasm file, found from src/engine (tests) or dist/src/engine (the built package). */
export function wasmPath(): string {
  for (const rel of ['../../build/mnist-wasm.wasm', '../../../build/mnist-wasm.wasm']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(
    'build/mnist-wasm.wasm not found: run `npm run build` (npm install runs it) to compile assembly/',
  );
}

export function wasmModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(readFileSync(wasmPath()));
  return compiled;
}

/** A fresh engine (own instance, own memory), optionally with a memory limit. */
export function createEngine(options: EngineOptions = {}): Engine {
  return Engine.fromModule(wasmModule(), options);
}
