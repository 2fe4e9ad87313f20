// SPDX-License-Identifier: Apache-2.0
#pragma once
//! FP8-E4M3 row quantization (SPEC §6), both scale modes, as the same two-kernel chain as NVFP4:
//!   1. row_amax_kernel<fp8_decode_scale> (kernels/row_amax.cuh): amax -> scratch, s -> scales;
//!   2. fp8_quantize_kernel: rebuilds the row scale from the scratch amax with the shared recipe
//!      (formats/fp8_encoding.hpp) and writes the codes.
//! In fp32 mode the encode factor min(448 / amax, FLT_MAX) is not recoverable from s = amax / 448
//! bit for bit, hence the scratch amax. Bytes equal ref::encode_fp8.
//!
//! Kernel 2 layout: one warp per row, a lane encodes 4 consecutive elements (16-byte load,
//! 4-byte code store). That per-lane step (fp8_encode_quad) is also the fused write path's.

#include <cstdint>

#include "dsv4kv/formats/fp8_encoding.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/kernels/row_amax.cuh"
#include "dsv4kv/kernels/vector_io.cuh"
#include "dsv4kv/numerics/convert_hw.cuh"

namespace dsv4kv {
namespace detail {

//! SPEC §6: the E4M3 codes of 4 consecutive elements v of a row (element 4q in the low byte), given
//! the row's amax and its scale in `mode`: zeros for a non-finite or all-zero row.
__device__ __forceinline__ std::uint32_t fp8_encode_quad(float4 v, const row_amax& amax, const fp8_row_scale& scale,
                                                         fp8_scale_mode mode) {
  if (!amax.finite || amax.amax == 0.0f) return 0u;  // codes 0 (scale NaN or 0)
  // Pairs through e4m3x2_encode: the cvt.rn.satfinite.e4m3x2 instruction on sm_89+, the same
  // function as fp8_encode_element (numerics/convert_hw.cuh).
  return static_cast<std::uint32_t>(e4m3x2_encode(fp8_scaled_element(v.x, scale, mode), fp8_scaled_element(v.y, scale, mode))) |
         (static_cast<std::uint32_t>(e4m3x2_encode(fp8_scaled_element(v.z, scale, mode), fp8_scaled_element(v.w, scale, mode)))
          << 16);
}

}  // namespace detail

//! Scale policy of kernel 1 for FP8: the decode scale s of `mode` (NaN for a non-finite row).
struct fp8_decode_scale {
  fp8_scale_mode mode;
  __device__ __forceinline__ float operator()(row_amax a) const { return fp8_row_scale_from_amax(a, mode).decode; }
};

//! Arguments of fp8_quantize_kernel. d % 16 == 0.
struct fp8_quantize_params {
  const float* x = nullptr;         // [rows, d], row stride x_stride, 16-byte aligned
  std::int64_t x_stride = 0;        // elements, % 4 == 0
  std::int64_t rows = 0;
  std::int64_t d = 0;
  fp8_scale_mode mode = fp8_scale_mode::fp32;
  const float* row_amax = nullptr;  // [rows] scratch written by kernel 1
  std::uint8_t* codes = nullptr;    // [rows, d] E4M3, 4-byte aligned
};

//! Kernel 2: one warp per row. Grid: ceil(rows / (THREADS/32)) CTAs of THREADS threads.
template <int THREADS>
__global__ void __launch_bounds__(THREADS) fp8_quantize_kernel(const fp8_quantize_params p) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (THREADS / 32) + threadIdx.x / 32;
  if (row >= p.rows) return;  // uniform per warp
  const int lane = threadIdx.x % 32;
  const row_amax amax = detail::unpack_row_amax(p.row_amax[row]);
  const fp8_row_scale scale = fp8_row_scale_from_amax(amax, p.mode);
  const float* x = p.x + row * p.x_stride;                          // [d]
  std::uint8_t* codes = p.codes + row * fp8_code_bytes_per_row(p.d);  // [d]
  for (std::int64_t q = lane; q < p.d / detail::vec_elems; q += 32) {
    const float4 v = detail::load4_stream(x + detail::vec_elems * q);
    const std::uint32_t packed = detail::fp8_encode_quad(v, amax, scale, p.mode);
    *reinterpret_cast<std::uint32_t*>(codes + detail::vec_elems * q) = packed;
  }
}

}  // namespace dsv4kv
