// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Row amax (SPEC §5 step 1) as device building blocks (warp and row-group merges, also used by
//! the fused write path) and as kernel 1 of the two-kernel quantize chain (the seed's
//! compute_amax_gsa_fp32): one warp per FP32 row computes the NaN-aware row amax, writes it to an
//! FP32 scratch buffer for kernel 2, and writes the row's decode scale (NVFP4 g or FP8 s) through
//! a scale policy. No host sync.
//!
//! Scratch encoding: amax for a finite row, NaN for a row holding NaN or ±Inf. Kernel 2 rebuilds
//! the same row_amax from it (unpack_row_amax) and calls the same scale recipe, so both kernels
//! see bit-identical scales (S_enc is not recoverable from g = 1/S_enc bit for bit).

#include <cstdint>

#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/kernels/row_group.cuh"
#include "dsv4kv/kernels/vector_io.cuh"
#include "dsv4kv/numerics/float_bits.hpp"

namespace dsv4kv {
namespace detail {

//! The scratch value for a row: its amax, or NaN when the row is not finite.
DSV4KV_HOST_DEVICE float pack_row_amax(row_amax a) { return a.finite ? a.amax : bits_to_float(0x7FC00000u); }

//! The row_amax a scratch value stands for (a non-finite row has amax 0, finite false).
DSV4KV_HOST_DEVICE row_amax unpack_row_amax(float packed) {
  row_amax a;
  if (is_nan_bits(packed)) {
    a.finite = false;
  } else {
    a.amax = packed;
  }
  return a;
}

//! Merges the row_amax of all 32 lanes (xor butterfly; max is exact, so every lane gets the row's).
__device__ __forceinline__ row_amax warp_merge_amax(row_amax a) {
  a.finite = __all_sync(0xFFFFFFFFu, a.finite) != 0;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    row_amax other;
    other.amax = __shfl_xor_sync(0xFFFFFFFFu, a.amax, offset);
    a.merge(other);
  }
  return a;
}

//! The row_amax of the row held by row group `local_row` (kernels/row_group.cuh) from each
//! thread's partial `a`: warp butterflies, then the warps' results through shared memory (as the
//! packed scratch value, pack_row_amax). Max is exact, so every participating thread gets the
//! row's amax and finiteness, whatever the order. All threads of the CTA call it (it synchronises
//! when a row spans several warps); `participates` is uniform per warp.
template <int HEAD_DIM, int ROWS>
__device__ __forceinline__ row_amax row_merge_amax(row_amax a, int local_row, int quad, bool participates,
                                                   typename row_group<HEAD_DIM, ROWS>::sum_storage& smem) {
  using G = row_group<HEAD_DIM, ROWS>;
  if (participates) a = warp_merge_amax(a);
  if constexpr (G::warps > 1) {
    if (participates && (quad % 32) == 0) smem.partial[local_row][quad / 32] = pack_row_amax(a);
    __syncthreads();
    if (participates) {
#pragma unroll
      for (int w = 0; w < G::warps; ++w) a.merge(unpack_row_amax(smem.partial[local_row][w]));
    }
    __syncthreads();  // smem may be reused right after
  }
  return a;
}

}  // namespace detail

//! Threads per CTA the launchers use for the one-warp-per-row quantize kernels (8 rows per CTA).
inline constexpr int quantize_threads = 256;

//! Arguments of row_amax_kernel. d % 4 == 0 (the quantizers need d % 16 == 0).
struct row_amax_params {
  const float* x = nullptr;      // [rows, d], row stride x_stride, 16-byte aligned
  std::int64_t x_stride = 0;     // elements, % 4 == 0
  std::int64_t rows = 0;
  std::int64_t d = 0;
  float* row_amax = nullptr;     // [rows] scratch out: pack_row_amax of each row
  float* decode_scale = nullptr; // [rows] out: SCALE_FN(row amax) (NVFP4 g, FP8 s)
};

//! One warp per row. SCALE_FN: float(row_amax), the format's decode scale.
//! Grid: ceil(rows / (THREADS/32)) CTAs of THREADS threads.
template <int THREADS, class SCALE_FN>
__global__ void __launch_bounds__(THREADS) row_amax_kernel(const row_amax_params p, const SCALE_FN scale_fn) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (THREADS / 32) + threadIdx.x / 32;
  if (row >= p.rows) return;  // uniform per warp
  const int lane = threadIdx.x % 32;
  const float* x = p.x + row * p.x_stride;  // [d]
  row_amax a;
  for (std::int64_t q = lane; q < p.d / detail::vec_elems; q += 32) {
    const float4 v = detail::load4_stream(x + detail::vec_elems * q);
    a.add(v.x);
    a.add(v.y);
    a.add(v.z);
    a.add(v.w);
  }
  a = detail::warp_merge_amax(a);
  if (lane == 0) {
    p.row_amax[row] = detail::pack_row_amax(a);
    p.decode_scale[row] = scale_fn(a);
  }
}

}  // namespace dsv4kv
