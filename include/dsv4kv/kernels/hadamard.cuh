// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Walsh-Hadamard rotation of FP32 rows (indexer keys): y = H_d x * d^-1/2, H Sylvester-ordered
//! (H[i][j] = (-1)^popcount(i & j)), d a power of two held by a row group (kernels/row_group.cuh).
//! Matches ref::hadamard_rotate within FP32 rounding (log2(d) butterfly stages, then one scaling).
//!
//! Butterflies of span h pair channel j (bit h clear) with j + h: (a, b) -> (a + b, a - b).
//! Channel bits 0-1 live inside a thread, bits 2-6 are lane bits (shuffles), bits 7.. are warp
//! bits of the row (one exchange through shared memory).

#include <cstdint>

#include "dsv4kv/kernels/row_group.cuh"
#include "dsv4kv/kernels/vector_io.cuh"

namespace dsv4kv::detail {

//! d^-1/2 rounded to float, for d = 2^k: 2^-k/2 exactly for even k, float(1/sqrt 2) * 2^-(k-1)/2
//! (an exact power-of-two scaling of the correctly rounded 1/sqrt 2) for odd k.
template <int HEAD_DIM>
__host__ __device__ constexpr float hadamard_scale() {
  static_assert(HEAD_DIM > 0 && (HEAD_DIM & (HEAD_DIM - 1)) == 0, "Hadamard needs a power-of-two width");
  int k = 0;
  while ((1 << k) < HEAD_DIM) ++k;
  float s = (k % 2 == 1) ? 0.70710678118654752440f : 1.0f;
  for (int i = 0; i < k / 2; ++i) s *= 0.5f;
  return s;
}

//! Shared storage of row_hadamard: the rows' values, for the cross-warp stages.
template <int HEAD_DIM, int ROWS>
struct hadamard_storage {
  float4 v[ROWS][row_group<HEAD_DIM, ROWS>::threads];
};

//! In-place rotation of the row held by row group `local_row` (this thread's 4 channels in y).
//! All threads of the CTA call it (it synchronises when the row spans several warps).
template <int HEAD_DIM, int ROWS>
__device__ __forceinline__ void row_hadamard(float4& y, int local_row, int quad, bool participates,
                                             hadamard_storage<HEAD_DIM, ROWS>& smem) {
  using G = row_group<HEAD_DIM, ROWS>;
  if (participates) {
    // h = 1, 2: inside the thread.
    float a = y.x, b = y.y, c = y.z, d = y.w;
    float t0 = a + b, t1 = a - b, t2 = c + d, t3 = c - d;
    y = make_float4(t0 + t2, t1 + t3, t0 - t2, t1 - t3);
    // h = 4 .. 64: across lanes; the lane with the bit clear holds the lower channel.
    const int lane = quad % 32;
#pragma unroll
    for (int bit = 1; bit < 32; bit <<= 1) {
      const bool upper = (lane & bit) != 0;
      float4 p;
      p.x = __shfl_xor_sync(0xFFFFFFFFu, y.x, bit);
      p.y = __shfl_xor_sync(0xFFFFFFFFu, y.y, bit);
      p.z = __shfl_xor_sync(0xFFFFFFFFu, y.z, bit);
      p.w = __shfl_xor_sync(0xFFFFFFFFu, y.w, bit);
      y = upper ? make_float4(p.x - y.x, p.y - y.y, p.z - y.z, p.w - y.w)
                : make_float4(y.x + p.x, y.y + p.y, y.z + p.z, y.w + p.w);
    }
  }
  if constexpr (G::warps > 1) {
    // h = 128 .. : the same channel in each warp of the row; every thread redoes the small
    // transform over the warps and keeps its own warp's output.
    if (participates) smem.v[local_row][quad] = y;
    __syncthreads();
    if (participates) {
      float4 x[G::warps];
#pragma unroll
      for (int w = 0; w < G::warps; ++w) x[w] = smem.v[local_row][quad % 32 + 32 * w];
#pragma unroll
      for (int h = 1; h < G::warps; h <<= 1) {
#pragma unroll
        for (int w = 0; w < G::warps; ++w) {
          if ((w & h) == 0) {
            const float4 lo = x[w], hi = x[w + h];
            x[w] = make_float4(lo.x + hi.x, lo.y + hi.y, lo.z + hi.z, lo.w + hi.w);
            x[w + h] = make_float4(lo.x - hi.x, lo.y - hi.y, lo.z - hi.z, lo.w - hi.w);
          }
        }
      }
      const int my_warp = quad / 32;
#pragma unroll
      for (int w = 0; w < G::warps; ++w) {
        if (w == my_warp) y = x[w];
      }
    }
    __syncthreads();  // smem may be reused right after
  }
  constexpr float scale = hadamard_scale<HEAD_DIM>();
  y = make_float4(y.x * scale, y.y * scale, y.z * scale, y.w * scale);
}

}  // namespace dsv4kv::detail

namespace dsv4kv {

//! Parameters of hadamard_kernel: rows [rows, HEAD_DIM] FP32, rotated in place.
struct hadamard_kernel_params {
  float* rows = nullptr;        // [rows, row_stride], 16-byte aligned, row_stride % 4 == 0
  std::int64_t row_stride = 0;  // elements
  std::int64_t rows_count = 0;
};

//! Threads per CTA of hadamard_kernel.
inline constexpr int hadamard_threads = 256;

//! Rows per CTA of hadamard_kernel<HEAD_DIM>.
template <int HEAD_DIM>
inline constexpr int hadamard_rows_per_cta = hadamard_threads / detail::row_group<HEAD_DIM, 1>::threads;

//! Rotates each row in place. Grid: ceil(rows / hadamard_rows_per_cta<HEAD_DIM>) CTAs of
//! hadamard_threads threads.
template <int HEAD_DIM>
__global__ void __launch_bounds__(hadamard_threads) hadamard_kernel(const hadamard_kernel_params p) {
  constexpr int ROWS = hadamard_rows_per_cta<HEAD_DIM>;
  using G = detail::row_group<HEAD_DIM, ROWS>;
  __shared__ detail::hadamard_storage<HEAD_DIM, ROWS> smem;
  const int quad = threadIdx.x % G::threads;
  const int local_row = threadIdx.x / G::threads;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * ROWS + local_row;
  const bool has_row = row < p.rows_count;
  float* x = p.rows + row * p.row_stride + detail::vec_elems * quad;  // [4] of this thread
  float4 y = has_row ? detail::load4(x) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  detail::row_hadamard<HEAD_DIM, ROWS>(y, local_row, quad, true, smem);
  if (has_row) detail::store4(x, y);
}

}  // namespace dsv4kv
