// SPDX-License-Identifier: Apache-2.0
#pragma once
//! FP32 GPT-J interleaved RoPE on the last rope_dim channels of a row (SPEC §4), as a device
//! building block (used by the compress epilogue) and as an in-place kernel over FP32 rows.
//!
//! For pair q < rope_dim/2: (a, b) = (x[d-rope_dim+2q], x[d-rope_dim+2q+1]) ->
//! (a cos - b sin, a sin + b cos), cos/sin = table entry (pos, q). Each result is one fused
//! multiply-add of a rounded product (fma(a, cos, -(b sin)), fma(a, sin, b cos)), written out so
//! that every kernel using rope_rotate4 gives the same bits whatever the compiler contracts.
//! A position outside [0, max_pos) turns the rotated channels into NaN (never a wild read).

#include <cstdint>

#include "dsv4kv/kernels/vector_io.cuh"
#include "dsv4kv/numerics/float_bits.hpp"
#include "dsv4kv/rope_table.hpp"

namespace dsv4kv::detail {

//! Rotates the pairs (v.x, v.y) and (v.z, v.w) by the angles with cosines c.x, c.y and sines s.x, s.y.
__device__ __forceinline__ float4 rope_rotate4(float4 v, float2 c, float2 s) {
  return make_float4(__fmaf_rn(v.x, c.x, -__fmul_rn(v.y, s.x)), __fmaf_rn(v.x, s.x, __fmul_rn(v.y, c.x)),
                     __fmaf_rn(v.z, c.y, -__fmul_rn(v.w, s.y)), __fmaf_rn(v.z, s.y, __fmul_rn(v.w, c.y)));
}

//! The table entries that rotate 4 channels at one position (rope_load4), applied by rope_apply4:
//! split so that a kernel can issue the loads early and rotate later.
struct rope_coefs {
  float2 c, s;         // cosines, sines of the two pairs
  bool valid = false;  // the position is inside the table (otherwise the channels become NaN)
};

//! The entries for the 4 channels that start `offset` channels into the rope region (offset % 4
//! == 0) at position `pos`. Table rows are read as float2 (8-byte aligned cos/sin, rope_dim % 4 == 0).
__device__ __forceinline__ rope_coefs rope_load4(const rope_table_view& table, std::int64_t pos, int offset) {
  rope_coefs r;
  r.valid = pos >= 0 && pos < table.max_pos;
  if (r.valid) {
    const std::int64_t entry = pos * (table.rope_dim / 2) + offset / 2;  // (pos, q) with q = offset / 2
    r.c = __ldg(reinterpret_cast<const float2*>(table.cos + entry));
    r.s = __ldg(reinterpret_cast<const float2*>(table.sin + entry));
  }
  return r;
}

//! Rotates 4 channels v by entries r (NaN when the position was outside the table).
__device__ __forceinline__ float4 rope_apply4(float4 v, const rope_coefs& r) {
  if (!r.valid) {
    const float nan = bits_to_float(0x7FC00000u);
    return make_float4(nan, nan, nan, nan);
  }
  return rope_rotate4(v, r.c, r.s);
}

//! Rotates the 4 channels v that start `offset` channels into the rope region at position `pos`.
__device__ __forceinline__ float4 rope_apply4(float4 v, const rope_table_view& table, std::int64_t pos, int offset) {
  return rope_apply4(v, rope_load4(table, pos, offset));
}

//! Position of compressed row `row`: positions[row] when a per-row array is given, otherwise the
//! prefill position start + row * ratio (the first token of the row's block).
__device__ __forceinline__ std::int64_t rope_row_position(const std::int32_t* positions, std::int64_t start,
                                                          int ratio, std::int64_t row) {
  return positions != nullptr ? static_cast<std::int64_t>(__ldg(positions + row)) : start + row * ratio;
}

}  // namespace dsv4kv::detail

namespace dsv4kv {

//! Parameters of rope_kernel: FP32 rows [rows, d] rotated in place.
struct rope_kernel_params {
  float* rows = nullptr;                    // [rows, row_stride], 16-byte aligned, row_stride % 4 == 0
  std::int64_t row_stride = 0;              // elements
  std::int64_t rows_count = 0;
  std::int64_t d = 0;                       // channels per row; the rope region starts at d - rope_dim
  rope_table_view table;                    // device cos/sin [max_pos, rope_dim/2], rope_dim % 4 == 0
  std::int64_t start_position = 0;          // row i at start_position + i * ratio ...
  int ratio = 1;
  const std::int32_t* positions = nullptr;  // ... or at positions[i] ([rows], device) when non-null
};

//! One thread per 4 rotated channels of a row. Grid: ceil(rows * rope_dim/4 / THREADS) CTAs of
//! THREADS threads.
template <int THREADS>
__global__ void __launch_bounds__(THREADS) rope_kernel(const rope_kernel_params p) {
  const std::int64_t quads = p.table.rope_dim / detail::vec_elems;  // per row
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * THREADS + threadIdx.x;
  if (i >= p.rows_count * quads) return;
  const std::int64_t row = i / quads;
  const int offset = static_cast<int>(i - row * quads) * detail::vec_elems;
  float* x = p.rows + row * p.row_stride + (p.d - p.table.rope_dim) + offset;  // [4]
  const std::int64_t pos = detail::rope_row_position(p.positions, p.start_position, p.ratio, row);
  detail::store4(x, detail::rope_apply4(detail::load4(x), p.table, pos, offset));
}

}  // namespace dsv4kv
