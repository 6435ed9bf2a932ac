#!/usr/bin/env node
/** Entry point of the `mnist-wasm` command (see ./program.ts). */
import { main } from './program.js';

process.exitCode = await main(process.argv.slice(2));
