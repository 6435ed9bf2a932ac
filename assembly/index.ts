/**
 * mnist-wasm kernels: every export the host calls. Pointers are byte offsets into linear memory,
 * owned and laid out by the host; nothing here allocates.
 */
export * from './gemm';
export * from './dense';
export * from './conv2d';
export * from './pool';
export * from './activations';
export * from './loss';
export * from './optim';
export * from './data';
export * from './peak';
export { chunk_units, claim_slot_bytes, pin_to_slot } from './claim';
export { simd_relaxed, simd_madd_probe } from './simd';

/** First byte after static data: the host's arena starts here. */
export function heap_base(): usize {
  return __heap_base;
}
