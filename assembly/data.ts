/**
 * Batch staging: the dataset's uint8 pixels and labels live in linear memory once; each step
 * gathers the shuffled rows of a batch and normalises them to f32 in place, so nothing but the
 * batch's index list crosses from JavaScript.
 */

/** dst (B, D) f32 = images[indices[b]] (D bytes each) · scale. */
export function gather_normalize_u8(
  dst: usize,
  images: usize,
  indices: usize,
  B: i32,
  D: i32,
  scale: f32,
): void {
  gather_normalize_u8_cols(dst, images, indices, B, D, 0, D, scale);
}

/**
 * dst (B, cols) f32 = bytes col0 … col0 + cols − 1 of images[indices[b]] (D bytes each) · scale:
 * one block of pixel columns of a batch, for a first layer cut into input shards.
 */
export function gather_normalize_u8_cols(
  dst: usize,
  images: usize,
  indices: usize,
  B: i32,
  D: i32,
  col0: i32,
  cols: i32,
  scale: f32,
): void {
  const vscale = f32x4.splat(scale);
  for (let b = 0; b < B; b++) {
    const src = images + <usize>load<i32>(indices + ((<usize>b) << 2)) * <usize>D + <usize>col0;
    const out = dst + <usize>b * ((<usize>cols) << 2);
    let j = 0;
    for (; j + 16 <= cols; j += 16) {
      const bytes = v128.load(src + <usize>j);
      const lo = i16x8.extend_low_i8x16_u(bytes);
      const hi = i16x8.extend_high_i8x16_u(bytes);
      const o = out + ((<usize>j) << 2);
      v128.store(o, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(lo)), vscale));
      v128.store(o + 16, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(lo)), vscale));
      v128.store(o + 32, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_u(hi)), vscale));
      v128.store(o + 48, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_u(hi)), vscale));
    }
    for (; j < cols; j++) {
      store<f32>(out + ((<usize>j) << 2), <f32>load<u8>(src + <usize>j) * scale);
    }
  }
}

/** dst (B) i32 = labels[indices[b]]. */
export function gather_labels(dst: usize, labels: usize, indices: usize, B: i32): void {
  for (let b = 0; b < B; b++) {
    const o = (<usize>b) << 2;
    store<i32>(dst + o, <i32>load<u8>(labels + <usize>load<i32>(indices + o)));
  }
}
