// SPDX-License-Identifier: Apache-2.0
#pragma once
//! compress_kernel<M, HEAD_DIM, InT, BiasT>: softmax-gated token-block compression (SPEC §3) in
//! FP32, one pass over the input, with an optional fused epilogue on the finished row:
//! RMSNorm (weight, eps) -> RoPE (last rope_dim channels) -> Walsh-Hadamard. FP32 rows out.
//!
//! Work split. A row group (kernels/row_group.cuh) of HEAD_DIM/4 threads owns one output row,
//! 4 channels per thread, loading 4 consecutive input channels per access (16 B for FP32, 8 B for
//! BF16; a warp reads 512 B / 256 B contiguous).
//! - CSA (M = 4, overlap): all 2M = 8 slots of a channel sit in one thread, so the softmax is
//!   exactly two-pass (max, then exp / sum) in registers. Row i reads the second half of block i
//!   and the first half of block i-1: every input element is read once by the whole grid.
//!   2 (d = 512) or 8 (d = 128) rows per 256-thread CTA.
//! - HCA (M = 128): one row per 512-thread CTA; the 128 slots are split over 512 / (d/4) slot
//!   groups. Each group runs an online softmax over chunks of 8 slots (chunk max, one rescale per
//!   chunk), then the groups' (max, sum, weighted sum) are merged through shared memory.
//! Softmax: w = exp(z - max) with z = gate + bias (FP32 add), y = sum(w v) / sum(w) (IEEE
//! division); CSA row 0 has no previous block: those slots carry z = -inf, weight exactly 0.
//! All reductions run in a fixed order, so the output is deterministic.

#include <cuda_bf16.h>

#include <cstdint>
#include <type_traits>

#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/kernels/hadamard.cuh"
#include "dsv4kv/kernels/rope.cuh"
#include "dsv4kv/kernels/row_group.cuh"
#include "dsv4kv/kernels/vector_io.cuh"
#include "dsv4kv/numerics/float_bits.hpp"
#include "dsv4kv/rope_table.hpp"

namespace dsv4kv {

//! Thread layout of compress_kernel<M, HEAD_DIM>.
template <int M, int HEAD_DIM>
struct compress_layout {
  static constexpr bool overlap = compress_overlaps(M);
  static constexpr int width = static_cast<int>(compress_input_width(M, HEAD_DIM));  // c*d input columns
  static constexpr int slots = compress_slots(M);                                    // softmax slots per channel
  static constexpr int channel_threads = HEAD_DIM / detail::vec_elems;               // threads per row group
  static constexpr int slot_groups = overlap ? 1 : 512 / channel_threads;            // slot split (HCA)
  static constexpr int slots_per_group = slots / slot_groups;
  static constexpr int chunk = 8;                                                    // slots per softmax update
  static constexpr int rows_per_cta = overlap ? 256 / channel_threads : 1;
  static constexpr int threads = rows_per_cta * slot_groups * channel_threads;
  static_assert(HEAD_DIM % 128 == 0 && 512 % channel_threads == 0, "HEAD_DIM is 128 or 512");
  static_assert(slots % slot_groups == 0 && slots_per_group % chunk == 0, "slots split into whole chunks");
};

//! Arguments of compress_kernel (device pointers; shapes with n = rows, c = 1 + (M == 4)).
template <class InT, class BiasT>
struct compress_kernel_params {
  const InT* kv = nullptr;                    // [n*M (+ tail), c*d], row stride kv_stride
  std::int64_t kv_stride = 0;                 // elements, % 4 == 0
  const InT* gate = nullptr;                  // [n*M (+ tail), c*d], row stride gate_stride
  std::int64_t gate_stride = 0;               // elements, % 4 == 0
  const BiasT* position_bias = nullptr;       // [M, c*d] contiguous, or nullptr (zeros)
  const float* norm_weight = nullptr;         // [d], or nullptr (no RMSNorm)
  float eps = 1e-6f;                          // RMSNorm epsilon
  rope_table_view rope;                       // cos/sin [max_pos, rope_dim/2]; rope_dim 0: no RoPE
  std::int64_t start_position = 0;            // row i at start_position + i*M ...
  const std::int32_t* positions = nullptr;    // ... or at positions[i] ([n]) when non-null
  bool hadamard = false;                      // rotate by H_d * d^-1/2 after RoPE
  float* out = nullptr;                       // [n, d], row stride out_stride
  std::int64_t out_stride = 0;                // elements, % 4 == 0
  std::int64_t rows = 0;                      // n
};

namespace detail {

//! Shared memory of compress_kernel<M, HEAD_DIM>.
template <int M, int HEAD_DIM>
struct compress_storage {
  using L = compress_layout<M, HEAD_DIM>;
  struct partials {  // per slot group: running max, sum of weights, weighted sum
    float4 m[L::rows_per_cta][L::slot_groups][L::channel_threads];
    float4 s[L::rows_per_cta][L::slot_groups][L::channel_threads];
    float4 a[L::rows_per_cta][L::slot_groups][L::channel_threads];
  };
  struct no_partials {};
  std::conditional_t<(L::slot_groups > 1), partials, no_partials> part;
  typename row_group<HEAD_DIM, L::rows_per_cta>::sum_storage sum;
  hadamard_storage<HEAD_DIM, L::rows_per_cta> hadamard;
};

//! Softmax state of one thread's 4 channels over the slots seen so far: weights are
//! exp(z - m), s = sum of weights, a = sum of weight * value.
struct softmax_state {
  float m[vec_elems], s[vec_elems], a[vec_elems];
};

//! Runs the softmax over this thread's slots (group `group` of row `row`, channels 4*quad..+3).
template <int M, int HEAD_DIM, class InT, class BiasT>
__device__ __forceinline__ softmax_state compress_accumulate(const compress_kernel_params<InT, BiasT>& p,
                                                             std::int64_t row, int quad, int group) {
  using L = compress_layout<M, HEAD_DIM>;
  softmax_state st;
#pragma unroll
  for (int k = 0; k < L::slots_per_group / L::chunk; ++k) {
    float z[L::chunk][vec_elems], v[L::chunk][vec_elems];  // scores and values of this chunk
#pragma unroll
    for (int j = 0; j < L::chunk; ++j) {
      const int slot = group * L::slots_per_group + k * L::chunk + j;
      // CSA: slots < M come from the previous block's first-half channels, slots >= M from the
      // current block's second half. HCA: slot u is token u of the current block.
      const bool previous = L::overlap && slot < M;
      const int u = (L::overlap && slot >= M) ? slot - M : slot;  // bias row
      const int col = ((L::overlap && !previous) ? HEAD_DIM : 0) + vec_elems * quad;
      float4 zz, vv;
      if (previous && row == 0) {  // absent slot: weight exactly 0
        const float ninf = bits_to_float(0xFF800000u);
        zz = make_float4(ninf, ninf, ninf, ninf);
        vv = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      } else {
        const std::int64_t token = (previous ? row - 1 : row) * M + u;
        vv = load4_stream(p.kv + token * p.kv_stride + col);
        zz = load4_stream(p.gate + token * p.gate_stride + col);
        if (p.position_bias != nullptr) {
          const float4 b = load4_cached(p.position_bias + u * L::width + col);
          zz = make_float4(zz.x + b.x, zz.y + b.y, zz.z + b.z, zz.w + b.w);
        }
      }
#pragma unroll
      for (int c = 0; c < vec_elems; ++c) {
        z[j][c] = component(zz, c);
        v[j][c] = component(vv, c);
      }
    }
#pragma unroll
    for (int c = 0; c < vec_elems; ++c) {
      float chunk_max = z[0][c];
#pragma unroll
      for (int j = 1; j < L::chunk; ++j) chunk_max = fmaxf(chunk_max, z[j][c]);
      if (k == 0) {
        st.m[c] = chunk_max;
        st.s[c] = 0.0f;
        st.a[c] = 0.0f;
      } else {  // rescale what was summed under the old max
        const float m_new = fmaxf(st.m[c], chunk_max);
        const float f = expf(st.m[c] - m_new);
        st.s[c] *= f;
        st.a[c] *= f;
        st.m[c] = m_new;
      }
#pragma unroll
      for (int j = 0; j < L::chunk; ++j) {
        const float w = expf(z[j][c] - st.m[c]);
        st.s[c] += w;
        st.a[c] = __fmaf_rn(w, v[j][c], st.a[c]);
      }
    }
  }
  return st;
}

}  // namespace detail

//! One compressed row per row group; grid: ceil(n / compress_layout::rows_per_cta) CTAs of
//! compress_layout::threads threads. The epilogue stages run when their argument is present
//! (norm_weight, rope.rope_dim, hadamard), in the order of SPEC §2.
template <int M, int HEAD_DIM, class InT, class BiasT>
__global__ void __launch_bounds__(compress_layout<M, HEAD_DIM>::threads)
    compress_kernel(const compress_kernel_params<InT, BiasT> p) {
  using L = compress_layout<M, HEAD_DIM>;
  constexpr int ROWS = L::rows_per_cta;
  __shared__ detail::compress_storage<M, HEAD_DIM> smem;

  const int quad = threadIdx.x % L::channel_threads;
  const int group = (threadIdx.x / L::channel_threads) % L::slot_groups;
  const int local_row = threadIdx.x / (L::channel_threads * L::slot_groups);
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * ROWS + local_row;
  const bool has_row = row < p.rows;  // uniform per row group
  const bool holder = group == 0;     // the warps that finish the row (uniform per warp)

  detail::softmax_state st{};
  if (has_row) st = detail::compress_accumulate<M, HEAD_DIM>(p, row, quad, group);

  float4 y = make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // this thread's 4 output channels
  if constexpr (L::slot_groups == 1) {
    if (has_row) y = make_float4(st.a[0] / st.s[0], st.a[1] / st.s[1], st.a[2] / st.s[2], st.a[3] / st.s[3]);
  } else {
    // Merge the slot groups: rescale each group's sums to the common max, add in group order.
    smem.part.m[local_row][group][quad] = make_float4(st.m[0], st.m[1], st.m[2], st.m[3]);
    smem.part.s[local_row][group][quad] = make_float4(st.s[0], st.s[1], st.s[2], st.s[3]);
    smem.part.a[local_row][group][quad] = make_float4(st.a[0], st.a[1], st.a[2], st.a[3]);
    __syncthreads();
    if (holder && has_row) {
      float4 m = smem.part.m[local_row][0][quad];  // the channels' max over all groups
      for (int g = 1; g < L::slot_groups; ++g) {
        const float4 gm = smem.part.m[local_row][g][quad];
        m = make_float4(fmaxf(m.x, gm.x), fmaxf(m.y, gm.y), fmaxf(m.z, gm.z), fmaxf(m.w, gm.w));
      }
      float s[detail::vec_elems] = {}, a[detail::vec_elems] = {};
      for (int g = 0; g < L::slot_groups; ++g) {
        float4 gm = smem.part.m[local_row][g][quad];
        float4 gs = smem.part.s[local_row][g][quad];
        float4 ga = smem.part.a[local_row][g][quad];
#pragma unroll
        for (int c = 0; c < detail::vec_elems; ++c) {
          const float f = expf(detail::component(gm, c) - detail::component(m, c));
          s[c] = __fmaf_rn(detail::component(gs, c), f, s[c]);
          a[c] = __fmaf_rn(detail::component(ga, c), f, a[c]);
        }
      }
      y = make_float4(a[0] / s[0], a[1] / s[1], a[2] / s[2], a[3] / s[3]);
    }
  }

  // RMSNorm: y * rsqrt(mean(y^2) + eps) * w, the mean over the whole row (a row-group sum).
  if (p.norm_weight != nullptr) {
    const float sq = y.x * y.x + y.y * y.y + y.z * y.z + y.w * y.w;
    const float total = detail::row_sum<HEAD_DIM, ROWS>(sq, local_row, quad, holder, smem.sum);
    if (holder) {
      const float inv_rms = 1.0f / sqrtf(total * (1.0f / HEAD_DIM) + p.eps);
      const float4 w = detail::load4_cached(p.norm_weight + detail::vec_elems * quad);
      y = make_float4(y.x * inv_rms * w.x, y.y * inv_rms * w.y, y.z * inv_rms * w.z, y.w * inv_rms * w.w);
    }
  }
  // RoPE on the last rope_dim channels (rope_dim % 4 == 0: a thread's 4 channels are all in or out).
  if (p.rope.rope_dim != 0 && holder && has_row) {
    const int offset = detail::vec_elems * quad - (HEAD_DIM - p.rope.rope_dim);
    if (offset >= 0) {
      const std::int64_t pos = detail::rope_row_position(p.positions, p.start_position, M, row);
      y = detail::rope_apply4(y, p.rope, pos, offset);
    }
  }
  if (p.hadamard) detail::row_hadamard<HEAD_DIM, ROWS>(y, local_row, quad, holder, smem.hadamard);

  if (holder && has_row) detail::store4(p.out + row * p.out_stride + detail::vec_elems * quad, y);
}

}  // namespace dsv4kv
