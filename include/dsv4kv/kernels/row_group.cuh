// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Row groups: one FP32 row of HEAD_DIM values held by HEAD_DIM/4 consecutive threads of a CTA,
//! 4 consecutive channels per thread (thread `quad` holds channels 4*quad .. 4*quad+3), ROWS row
//! groups per CTA. Row-wide reductions over such a row, deterministic (fixed order) and identical
//! in every thread of the row.
//!
//! Every function here that takes shared storage contains __syncthreads(): all threads of the CTA
//! call it, also those whose row is past the end; `participates` (uniform per warp) says which
//! warps hold data.

#include "dsv4kv/kernels/vector_io.cuh"

namespace dsv4kv::detail {

//! Geometry of a row group for rows of HEAD_DIM channels, ROWS row groups per CTA.
template <int HEAD_DIM, int ROWS>
struct row_group {
  static constexpr int threads = HEAD_DIM / vec_elems;  // threads holding one row
  static constexpr int warps = threads / 32;            // warps holding one row
  static_assert(HEAD_DIM % (32 * vec_elems) == 0, "a row group is made of whole warps");

  //! Shared storage of row_sum (one partial per warp of each row).
  struct sum_storage {
    float partial[ROWS][warps];
  };
};

//! Sum over the 32 lanes by an xor butterfly; every lane ends with the same bits (each step adds
//! the same two values, and float addition is commutative).
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, offset);
  return v;
}

//! Sum of `v` over the threads of row group `local_row`: warp butterflies, then the warps' sums in
//! warp order. Returns the same bits in every participating thread of the row; 0 elsewhere.
//! quad: this thread's index in its row (0 .. HEAD_DIM/4 - 1).
template <int HEAD_DIM, int ROWS>
__device__ __forceinline__ float row_sum(float v, int local_row, int quad, bool participates,
                                         typename row_group<HEAD_DIM, ROWS>::sum_storage& smem) {
  using G = row_group<HEAD_DIM, ROWS>;
  const float warp_total = participates ? warp_sum(v) : 0.0f;
  if constexpr (G::warps == 1) {
    return warp_total;
  } else {
    if (participates && (quad % 32) == 0) smem.partial[local_row][quad / 32] = warp_total;
    __syncthreads();
    float total = 0.0f;
    if (participates) {
      total = smem.partial[local_row][0];
#pragma unroll
      for (int w = 1; w < G::warps; ++w) total += smem.partial[local_row][w];
    }
    __syncthreads();  // smem may be reused right after
    return total;
  }
}

}  // namespace dsv4kv::detail
