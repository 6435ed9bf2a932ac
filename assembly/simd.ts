/**
 * The one place where the two builds differ. The same sources compile twice (asconfig.json):
 *   baseline  --enable simd                 madd = f32x4.mul, then f32x4.add (two roundings)
 *   relaxed   --enable simd,relaxed-simd    madd = f32x4.relaxed_madd
 * ASC_FEATURE_RELAXED_SIMD is a compile-time constant, so each build holds only its own branch.
 *
 * relaxed_madd is allowed by the spec to be fused (one rounding) or unfused (two) depending on
 * the hardware; V8 fuses it (vfmadd) on x64 CPUs with FMA3 and on arm64. So the relaxed build's
 * results are deterministic per build *and CPU family*: Node and Chromium on the same FMA-capable
 * machine give the same bits (the browser bit-identity test checks exactly that), while a CPU
 * without FMA would round like the baseline build instead. The baseline build rounds the same
 * everywhere.
 *
 * asconfig.json disables AssemblyScript's warning AS112 (a v128 in an exported signature): `madd`
 * has to be exported to be shared by gemm.ts, conv2d.ts and peak.ts, and AS warns for every
 * exported v128 function, module-internal or not. It is not a wasm export: index.ts re-exports
 * only simd_relaxed and simd_madd_probe, which take and return plain numbers.
 */

/** a·b + c, per lane: fused in the relaxed build, mul then add in the baseline build. */
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * The 128 bytes where the optimizer steps pin their splats: static memory until the host points
 * it at its thread's own cache lines (claim.ts: pin_to_slot, once per engine), and, while a
 * thread runs its part of a shared step, that thread's lines (the `_shared` twins set it around
 * their chunks). Until 2026-11-23 every thread stored its splats at the same static address, so
 * each chunk began with the cores writing the same line; and the static area lies in an active
 * data segment, which every helper's instantiation writes zeros over again. A wasm global: each
 * thread's instance has its own.
 */
let pinArea: usize = 0;

/** Where pin() slots go now (see pinArea). */
export function pin_area(): usize {
  return pinArea ? pinArea : memory.data(128, 16);
}

/** Pin to `at` (128 bytes, or 0: the static area) from now on. */
export function use_pin_area(at: usize): void {
  pinArea = at;
}

/**
 * `v`, stored at `slot` and loaded back: a vector V8 keeps in a register through the loop that
 * follows. V8 11.3 (Node 20) schedules an f32x4.splat of a loop-invariant scalar next to its
 * uses, so a splat made before a loop ran as one vbroadcastss per use per iteration inside it
 * (adam_step: 8 per 4 floats, competing with its adds for the shuffle/add ports); a load stays
 * where it is. `slot`: 16 bytes of pin_area().
 */
export function pin(slot: usize, v: v128): v128 {
  v128.store(slot, v);
  return v128.load(slot);
}

/** 1 when this module was compiled with relaxed SIMD (FMA), 0 for the baseline build. */
export function simd_relaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

/**
 * Lane 0 of madd(a, b, c) for runtime values: the host calls it with operands whose fused and
 * unfused results differ to learn whether this engine's relaxed_madd fuses (Engine.fusedMadd).
 */
export function simd_madd_probe(a: f32, b: f32, c: f32): f32 {
  return f32x4.extract_lane(madd(f32x4.splat(a), f32x4.splat(b), f32x4.splat(c)), 0);
}
