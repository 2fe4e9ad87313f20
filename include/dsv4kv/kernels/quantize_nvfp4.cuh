// SPDX-License-Identifier: Apache-2.0
#pragma once
//! NVFP4 row quantization (SPEC §5) as two kernels, the seed's pattern:
//!   1. row_amax_kernel<nvfp4_decode_scale> (kernels/row_amax.cuh): amax -> scratch, g -> global_scales;
//!   2. nvfp4_quantize_kernel: reads the scratch amax, rebuilds (S_enc, g) with the shared recipe,
//!      and writes codes and block scales.
//! Every step is a call into formats/nvfp4_encoding.hpp (the E2M1 pairs through
//! numerics/convert_hw.cuh: the cvt instruction on sm_100a), so the bytes equal ref::encode_nvfp4.
//!
//! Kernel 2 layout: one warp per row; a lane quantizes 4 consecutive elements (one 16-byte load,
//! one 2-byte code store); the 4 lanes of a 16-element block share its max by two shuffles.
//! That per-lane step (nvfp4_encode_quad) is also the fused write path's (kernels/append.cuh).

#include <cstdint>

#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/kernels/row_amax.cuh"
#include "dsv4kv/kernels/vector_io.cuh"
#include "dsv4kv/numerics/convert_hw.cuh"

namespace dsv4kv {
namespace detail {

//! NVFP4 codes of 4 consecutive elements 4q .. 4q+3 of a row and their block's scale.
struct nvfp4_quad {
  std::uint16_t codes = 0;        // elements 4q, 4q+1 in the first byte, low nibble first
  std::uint8_t block_scale = 0;   // E4M3 scale of the 16-element block holding them
};

//! SPEC §5 steps 4-6 for the 4 elements v held by this lane, where the 4 consecutive lanes with
//! the same lane / 4 hold one 16-element block. amax, scale: the whole row's (steps 1-3). All 32
//! lanes of the warp call it (shuffles). A non-finite row gets codes and block scale 0 (step 2).
__device__ __forceinline__ nvfp4_quad nvfp4_encode_quad(float4 v, const row_amax& amax, const nvfp4_row_scale& scale) {
  // Step 4: the block's max |x| (4 lanes of 4 elements).
  row_amax block;
  block.add(v.x);
  block.add(v.y);
  block.add(v.z);
  block.add(v.w);
#pragma unroll
  for (int offset = 1; offset < nvfp4_block_size / vec_elems; offset <<= 1) {
    row_amax other;
    other.amax = __shfl_xor_sync(0xFFFFFFFFu, block.amax, offset);
    block.merge(other);
  }
  nvfp4_quad e;
  if (amax.finite) {  // a non-finite row keeps codes and block scales 0 (step 2)
    e.block_scale = nvfp4_block_scale(block.amax, scale.encode);
    const float mul = nvfp4_block_multiplier(e.block_scale, scale.decode);  // step 5
    // Step 6: codes of x * mul, elements 4q, 4q+1 in the first byte (low nibble first).
    e.codes = static_cast<std::uint16_t>(e2m1x2_encode(v.x * mul, v.y * mul) |
                                         (static_cast<std::uint16_t>(e2m1x2_encode(v.z * mul, v.w * mul)) << 8));
  }
  return e;
}

//! Stores quad q (elements 4q .. 4q+3) of a row: its 2 code bytes, and the block scale from the
//! block's first quad. codes_row: [d/2], 2-byte aligned; scales_row: [d/16].
__device__ __forceinline__ void nvfp4_store_quad(std::uint8_t* codes_row, std::uint8_t* scales_row, std::int64_t q,
                                                 const nvfp4_quad& e) {
  *reinterpret_cast<std::uint16_t*>(codes_row + 2 * q) = e.codes;
  if (q % (nvfp4_block_size / vec_elems) == 0) scales_row[q / (nvfp4_block_size / vec_elems)] = e.block_scale;
}

}  // namespace detail

//! Scale policy of kernel 1 for NVFP4: the decode scale g (NaN for a non-finite row).
struct nvfp4_decode_scale {
  __device__ __forceinline__ float operator()(row_amax a) const { return nvfp4_row_scale_from_amax(a).decode; }
};

//! Arguments of nvfp4_quantize_kernel. d % 16 == 0.
struct nvfp4_quantize_params {
  const float* x = nullptr;            // [rows, d], row stride x_stride, 16-byte aligned
  std::int64_t x_stride = 0;           // elements, % 4 == 0
  std::int64_t rows = 0;
  std::int64_t d = 0;
  const float* row_amax = nullptr;     // [rows] scratch written by kernel 1
  std::uint8_t* codes = nullptr;       // [rows, d/2]  E2M1 pairs, 2-byte aligned
  std::uint8_t* block_scales = nullptr;  // [rows, d/16] E4M3
};

//! Kernel 2: one warp per row. Grid: ceil(rows / (THREADS/32)) CTAs of THREADS threads.
template <int THREADS>
__global__ void __launch_bounds__(THREADS) nvfp4_quantize_kernel(const nvfp4_quantize_params p) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (THREADS / 32) + threadIdx.x / 32;
  if (row >= p.rows) return;  // uniform per warp
  const int lane = threadIdx.x % 32;
  const row_amax amax = detail::unpack_row_amax(p.row_amax[row]);
  const nvfp4_row_scale scale = nvfp4_row_scale_from_amax(amax);
  const float* x = p.x + row * p.x_stride;                                       // [d]
  std::uint8_t* codes = p.codes + row * nvfp4_code_bytes_per_row(p.d);           // [d/2]
  std::uint8_t* block_scales = p.block_scales + row * nvfp4_scale_bytes_per_row(p.d);  // [d/16]
  const std::int64_t quads = p.d / detail::vec_elems;
  // The loop runs whole warps (shuffles); d % 16 == 0 keeps each 4-lane block all in or all out.
  for (std::int64_t base = 0; base < quads; base += 32) {
    const std::int64_t q = base + lane;
    const bool active = q < quads;
    const float4 v = active ? detail::load4_stream(x + detail::vec_elems * q) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const detail::nvfp4_quad e = detail::nvfp4_encode_quad(v, amax, scale);
    if (active) detail::nvfp4_store_quad(codes, block_scales, q, e);
  }
}

}  // namespace dsv4kv
