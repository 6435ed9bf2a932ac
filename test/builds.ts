/**
 * The kernel builds the tests run against: baseline SIMD always, relaxed SIMD (FMA) wherever this
 * Node validates it — Node 20 after src/engine/node.ts sets V8's flag, Node 22 and later by
 * default. Kernel suites loop over BUILDS so both builds meet the same references and the same
 * bit-identity checks.
 */
import type { SimdBuild } from '../src/engine/engine.js';
import { relaxedSimdAvailable } from '../src/engine/node.js';

export const BUILDS: readonly SimdBuild[] = relaxedSimdAvailable()
  ? ['baseline', 'relaxed']
  : ['baseline'];

if (!BUILDS.includes('relaxed')) {
  console.warn('relaxed-SIMD kernel tests skipped: this Node does not validate the relaxed build');
}
