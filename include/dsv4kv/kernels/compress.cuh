// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Token-block compression (SPEC §3) in FP32 with its fused epilogue RMSNorm (weight, eps) ->
//! RoPE (last rope_dim channels) -> Walsh-Hadamard, as device building blocks shared by every
//! kernel that produces compressed rows:
//!   compress_accumulate  the softmax over one row's slots, reading tokens through a token source
//!   compress_row         accumulate -> merge the slot groups -> RMSNorm -> RoPE -> Hadamard
//! and compress_kernel, which stores the rows as FP32 (kernel 1 of the two-kernel write path). The
//! fused write path / append kernel (kernels/append.cuh) quantizes the same compress_row result in
//! the same pass, so the FP32 row either path quantizes has the same bits.
//!
//! Token sources. compress_accumulate asks a source for the kv / gate channels of token t (the
//! position in the row's sequence): prefill_tokens reads row t of the projections; the append
//! kernel's source reads new tokens from the projections and earlier ones from the carried state.
//! The arithmetic never depends on where a token came from.
//!
//! Work split. A row group (kernels/row_group.cuh) of HEAD_DIM/4 threads owns one output row,
//! 4 channels per thread, loading 4 consecutive input channels per access (16 B for FP32, 8 B for
//! BF16; a warp reads 512 B / 256 B contiguous).
//! - CSA (M = 4, overlap): all 2M = 8 slots of a channel sit in one thread, so the softmax is
//!   exactly two-pass (max, then exp / sum) in registers. Row i reads the second half of block i
//!   and the first half of block i-1: every input element is read once by the whole grid.
//!   One row per CTA in prefills, 2 in segments and batches (compress_layout).
//! - HCA (M = 128): one row per cluster of 4 CTAs (d = 512: one slot group of 32 slots per CTA of
//!   256 threads, 2 channels per thread while the group is summed, the next chunk's tokens loaded
//!   while the current one is summed), or per CTA of 256 threads running two slot groups each (the
//!   append kernel's batches). Each group runs an online softmax over chunks of 8 slots (chunk
//!   max, one rescale per chunk), then the groups' (max, sum, weighted sum) are merged in group
//!   order in the row's holder threads (a cluster's rank 0 receives them through distributed
//!   shared memory), which finish the row 4 channels per thread.
//! Softmax: w = exp(z - max) with z = gate + bias (FP32 add), y = sum(w v) / sum(w) (IEEE
//! division); exp is ex2.approx of the scaled difference, or expf in CSA rows of FP32 projections
//! (softmax_exp); CSA row 0 has no previous block: those slots carry z = -inf, weight exactly 0.
//! All reductions run in a fixed order, so the output is deterministic. Every product that meets
//! an addition is written with an explicit rounding intrinsic (__fmul_rn / __fmaf_rn): no FMA
//! contraction left to the compiler, so every kernel that inlines these functions gets the same bits.

#include <cooperative_groups.h>
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

//! CTA shape of the kernels built on compress_row (compress_kernel, append_kernel) for
//! (M, HEAD_DIM): threads per CTA and, for HCA, CTAs per row (a thread-block cluster).
//! CSA: row groups of HEAD_DIM/4 threads, threads / (HEAD_DIM/4) rows per CTA (the
//! DSV4KV_CTA_THREADS_CSA* macros: segments and batches, 2 rows; prefills: DSV4KV_CSA_PREFILL_ROWS).
//! HCA: one row per cluster of DSV4KV_HCA_CLUSTER CTAs; the row's 128 slots are split over
//! cluster * threads / (HEAD_DIM/4) slot groups (the split fixes the order of the softmax merge,
//! so it is part of the rows' bits; the CTA runs these slot groups with 4 / compress_layout::vec
//! times this many threads). A 4K-token prefill chunk has 32 HCA rows: one CTA per row
//! would keep 32 of the H100's 132 SMs busy, each pulling a 512-KB row through one SM's loads.
//! The DSV4KV_CTA_THREADS_* / DSV4KV_HCA_CLUSTER macros override the shape for A/B benchmarks.
#ifndef DSV4KV_CTA_THREADS_CSA512
#define DSV4KV_CTA_THREADS_CSA512 256
#endif
#ifndef DSV4KV_CTA_THREADS_CSA128
#define DSV4KV_CTA_THREADS_CSA128 64
#endif
#ifndef DSV4KV_CTA_THREADS_HCA512
#define DSV4KV_CTA_THREADS_HCA512 128
#endif
#ifndef DSV4KV_CTA_THREADS_HCA128
#define DSV4KV_CTA_THREADS_HCA128 128
#endif
#ifndef DSV4KV_HCA_CLUSTER
#define DSV4KV_HCA_CLUSTER 4
#endif
//! Threads of the unclustered HCA CTA (the append kernel's batches): the row's slot groups (fixed
//! by the clustered shape above) run in slot_groups * channel_threads / this passes per thread.
//! 256: two CTAs per SM at 128 registers, so a decode step of 256 sequences is one wave.
#ifndef DSV4KV_CTA_THREADS_HCA_UNCLUSTERED
#define DSV4KV_CTA_THREADS_HCA_UNCLUSTERED 256
#endif
//! Channels per thread while a clustered HCA row's slot groups are summed (compress_layout::vec;
//! 2, or 4 for A/B benchmarks: the CTA then has DSV4KV_CTA_THREADS_HCA512 threads, not twice that).
#ifndef DSV4KV_HCA_CLUSTERED_VEC
#define DSV4KV_HCA_CLUSTERED_VEC 2
#endif
//! The softmax weight's exp (softmax_exp, compress_layout::ex2): ex2.approx in every row but CSA
//! rows of FP32 projections, which keep expf (1 / 0; the macros are for A/B benchmarks). Session 7,
//! H200, each form against expf in one run (docs/PERFORMANCE.md): HCA fused prefill FP32 32K 45.7 ->
//! 41.1 us, 128K 149.1 -> 133.5 us (its 16 slot groups' online softmax is a long dependent chain of
//! exps); CSA-512 BF16 32K 72.3 -> 67.7 us, CSA-128 BF16 21.3 -> 20.5 us (rows that issue more than
//! they wait); CSA rows of FP32 projections no faster at 32K and CSA-512's 128K median slower (288
//! -> 316 us), so those keep expf.
#ifndef DSV4KV_SOFTMAX_EX2
#define DSV4KV_SOFTMAX_EX2 1
#endif
#ifndef DSV4KV_SOFTMAX_EX2_CSA_F32
#define DSV4KV_SOFTMAX_EX2_CSA_F32 0
#endif
//! Rows per CTA of CSA prefills (compress_work::prefill): 1, or more for A/B benchmarks. One row
//! per CTA (session 9, docs/PERFORMANCE.md): a CTA retires as soon as its row is quantized instead
//! of when the slower of two rows is, and no row waits at the other's barriers (session 9, H100,
//! fused, against 2: CSA-512 FP32 32K 102.1 -> 99.5 us, 128K 367.0 -> 362.1 us, BF16 32K 74.6 ->
//! 71.5 us; CSA-128 FP32 128K 98.2 -> 96.3 us; docs/PERFORMANCE.md).
#ifndef DSV4KV_CSA_PREFILL_ROWS
#define DSV4KV_CSA_PREFILL_ROWS 1
#endif

//! What one launch of a kernel built on compress_row covers; it picks the kernel's layout
//! (compress_layout). Every layout computes the same bits for a row.
enum class compress_work {
  prefill,  //!< one sequence from position 0, no state (compress_kernel, the fused prefill)
  segment,  //!< one segment of one sequence, with a carried state (a prefill chunk)
  batch,    //!< segments of many sequences (decode steps, mixed batches)
};

template <int M, int HEAD_DIM, compress_work W>
inline constexpr int compress_cta_threads =
    compress_overlaps(M)
        ? (W == compress_work::prefill ? HEAD_DIM / detail::vec_elems * DSV4KV_CSA_PREFILL_ROWS
                                       : (HEAD_DIM == 512 ? DSV4KV_CTA_THREADS_CSA512 : DSV4KV_CTA_THREADS_CSA128))
        : (HEAD_DIM == 512 ? DSV4KV_CTA_THREADS_HCA512 : DSV4KV_CTA_THREADS_HCA128);

//! Thread layout of the kernels built on compress_row for work W. CSA: DSV4KV_CSA_PREFILL_ROWS
//! rows per CTA in prefills; 2 in segments and batches (a segment's first two rows read its
//! carried state, in its first CTA). HCA: the row's threads spread over a cluster of
//! DSV4KV_HCA_CLUSTER CTAs (prefills and segments: a 4K chunk's 32 rows reach 128 SMs), or in
//! batches all in one CTA of DSV4KV_CTA_THREADS_HCA_UNCLUSTERED threads, each running `passes` slot
//! groups one after the other (a cluster launch costs more than it gains: decode steps run one CTA
//! per sequence). The slot groups, and so the bits, are the same in both HCA shapes.
template <int M, int HEAD_DIM, compress_work W = compress_work::prefill, int IN_BYTES = 4>
struct compress_layout {
  static constexpr compress_work work = W;
  static constexpr int in_bytes = IN_BYTES;                                          // of an input element
  static constexpr bool overlap = compress_overlaps(M);
  static constexpr int width = static_cast<int>(compress_input_width(M, HEAD_DIM));  // c*d input columns
  static constexpr int slots = compress_slots(M);                                    // softmax slots per channel
  static constexpr int channel_threads = HEAD_DIM / detail::vec_elems;               // threads per row group
  static constexpr bool clustered = W != compress_work::batch;                        // HCA rows over a cluster
  static constexpr int cluster = overlap || !clustered ? 1 : DSV4KV_HCA_CLUSTER;     // CTAs per row (HCA)
  static constexpr int slot_groups =                                                 // slot split of a row
      overlap ? 1 : compress_cta_threads<M, HEAD_DIM, W> * DSV4KV_HCA_CLUSTER / channel_threads;
  static constexpr int slots_per_group = slots / slot_groups;
  static constexpr int chunk = 8;                                                    // slots per softmax update
  // Channels per thread while a slot group is summed: 2 in clustered HCA rows whose groups have
  // several chunks, with FP32 projections (IN_BYTES: bytes of an input element; twice the warps on
  // the row's latency-bound chain, and the next chunk's loads fit in registers beside the current
  // one's); 4 elsewhere (with BF16 projections 2 channels would be 4-byte loads). Per channel the
  // same arithmetic, so the same bits.
  static constexpr int vec =
      !overlap && clustered && slots_per_group > chunk && IN_BYTES == 4 ? DSV4KV_HCA_CLUSTERED_VEC : 4;
  static constexpr int group_threads = HEAD_DIM / vec;                               // threads summing one slot group
  static constexpr int threads =                                                     // per CTA
      overlap || clustered ? compress_cta_threads<M, HEAD_DIM, W> * (detail::vec_elems / vec)
                           : DSV4KV_CTA_THREADS_HCA_UNCLUSTERED;
  static constexpr int cta_groups = threads / group_threads;                         // row / slot groups per CTA
  static constexpr int passes = overlap ? 1 : slot_groups / (cta_groups * cluster);  // slot groups per thread
  static constexpr int rows_per_cta = overlap ? cta_groups : 1;
  static constexpr bool ex2 =  // softmax_exp: ex2.approx, or expf
      overlap && IN_BYTES == 4 ? DSV4KV_SOFTMAX_EX2_CSA_F32 != 0 : DSV4KV_SOFTMAX_EX2 != 0;
  static_assert(HEAD_DIM % 128 == 0 && cta_groups >= 1 && threads == cta_groups * group_threads,
                "HEAD_DIM is 128 or 512; a CTA holds whole row / slot groups");
  static_assert(vec == 4 || vec == 2, "4 or 2 channels per thread");
  static_assert(overlap || !clustered || passes == 1, "a cluster runs each slot group once");
  static_assert(cluster >= 1 && cluster <= 8 && threads <= 1024, "portable cluster size, CTA size");
  static_assert(overlap || (passes >= 1 && passes * cta_groups * cluster == slot_groups),
                "whole passes over the slot groups");
  // The append kernel reads a segment's carried state only in its first CTA, and for CSA the first
  // two rows of a segment may read it (row i also reads block i - 1).
  static_assert(!overlap || W == compress_work::prefill || rows_per_cta >= 2,
                "CSA: a segment's first two rows share a CTA");
  static_assert(slots % slot_groups == 0 && slots_per_group % chunk == 0, "slots split into whole chunks");
};

//! Resident CTAs per SM a kernel of layout L is compiled for (__launch_bounds__'s second
//! argument; it caps the registers at 65536 / (threads * this)): CSA 24 warps per SM (<= 80
//! registers: the row is latency-bound with fewer loads in flight); HCA 16 warps per SM (128
//! registers), with 0 (no minimum) for a 512-thread CTA, which fits once per SM anyway (an
//! explicit 1 makes ptxas spill). The append kernel's prefill instantiation uses the same figure.
//! DSV4KV_CSA_WARPS_PER_SM (A/B benchmarks): 32 (64 registers) spills 24-56 B per thread and
//! made the FP32 CSA prefills 6-13 % slower on the H200 (BF16 ones 3-8 % faster; session 8).
//! CSA prefills of BF16 projections: DSV4KV_CSA_PREFILL_WARPS_PER_SM_BF16, 32 (64 registers, 24 B
//! of spills per thread): they issue more (the conversions) and wait less, and run 5 % faster with
//! more warps (session 9, H100: CSA-512 BF16 32K 71.3 -> 67.6 us, CSA-128 BF16 32K 22.4 -> 21.2 us).
#ifndef DSV4KV_CSA_WARPS_PER_SM
#define DSV4KV_CSA_WARPS_PER_SM 24
#endif
#ifndef DSV4KV_CSA_PREFILL_WARPS_PER_SM_BF16
#define DSV4KV_CSA_PREFILL_WARPS_PER_SM_BF16 32
#endif
template <class L>
inline constexpr int compress_min_ctas =
    L::overlap ? (L::work == compress_work::prefill && L::in_bytes == 2 ? DSV4KV_CSA_PREFILL_WARPS_PER_SM_BF16
                                                                        : DSV4KV_CSA_WARPS_PER_SM) *
                     32 / L::threads
               : (L::threads >= 512 ? 0 : 512 / L::threads);

//! The epilogue arguments and bias of compress_row (device pointers, shared by all its kernels).
template <class BiasT>
struct compress_row_params {
  const BiasT* position_bias = nullptr;  // [M, c*d] contiguous, or nullptr (zeros)
  const float* norm_weight = nullptr;    // [d], or nullptr (no RMSNorm)
  float eps = 1e-6f;                     // RMSNorm epsilon
  rope_table_view rope;                  // cos/sin [max_pos, rope_dim/2]; rope_dim 0: no RoPE
  bool hadamard = false;                 // rotate by H_d * d^-1/2 after RoPE
};

//! Token source of one prefill: token t is row t of kv / gate (read once: streaming loads).
template <class InT>
struct prefill_tokens {
  static constexpr int element_bytes = static_cast<int>(sizeof(InT));
  const InT* kv = nullptr;      // [T, c*d], row stride kv_stride
  std::int64_t kv_stride = 0;   // elements, % 4 == 0
  const InT* gate = nullptr;    // [T, c*d], row stride gate_stride
  std::int64_t gate_stride = 0; // elements, % 4 == 0

  //! kv (v) and gate (z) channels [col, col + N) of token t (N = 4 or 2).
  template <int N = detail::vec_elems>
  __device__ __forceinline__ void load(std::int64_t t, int col, detail::vecf<N>& v, detail::vecf<N>& z) const {
    v = detail::loadn_stream<N>(kv + t * kv_stride + col);
    z = detail::loadn_stream<N>(gate + t * gate_stride + col);
  }

  //! L2 hint for a later load(t, col).
  __device__ __forceinline__ void prefetch(std::int64_t t, int col) const {
    detail::prefetch_l2(kv + t * kv_stride + col);
    detail::prefetch_l2(gate + t * gate_stride + col);
  }
};

//! Arguments of compress_kernel (device pointers; shapes with n = rows, c = 1 + (M == 4)).
template <class InT, class BiasT>
struct compress_kernel_params {
  prefill_tokens<InT> tokens;                 // kv / gate [n*M (+ tail), c*d]
  compress_row_params<BiasT> row;             // bias, norm, RoPE table, Hadamard
  std::int64_t start_position = 0;            // row i rotates at start_position + i*M ...
  const std::int32_t* positions = nullptr;    // ... or at positions[i] ([n]) when non-null
  float* out = nullptr;                       // [n, d], row stride out_stride
  std::int64_t out_stride = 0;                // elements, % 4 == 0
  std::int64_t rows = 0;                      // n
};

namespace detail {

//! Shared memory of compress_kernel<M, HEAD_DIM>.
template <int M, int HEAD_DIM, compress_work W = compress_work::prefill>
struct compress_storage {
  using L = compress_layout<M, HEAD_DIM, W>;
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

//! Softmax state of one thread's N channels over the slots seen so far: weights are
//! exp(z - m), s = sum of weights, a = sum of weight * value.
template <int N>
struct softmax_state {
  float m[N], s[N], a[N];
};

//! Where a thread of a compress CTA works: it sums channels col .. col + vec - 1 of slot group
//! `group` of row group local_row; `holder` threads (the first channel_threads of group 0, whole
//! warps) finish the row, channels 4*quad .. 4*quad+3 each.
struct compress_thread {
  int quad, col, group, local_row;
  bool holder;
};

//! This CTA's rank in its row's cluster (HCA; 0 without clusters). Grids of the compress layout
//! are one-dimensional with clusters of L::cluster consecutive CTAs, so the rank is blockIdx.x % cluster.
template <class L>
__device__ __forceinline__ int cluster_rank() {
  return L::cluster > 1 ? static_cast<int>(blockIdx.x % L::cluster) : 0;
}

//! The index of this CTA's cluster (the CTA itself without clusters): the unit that owns rows.
template <class L>
__device__ __forceinline__ std::int64_t cluster_index() {
  return static_cast<std::int64_t>(blockIdx.x) / L::cluster;
}

//! Split cluster barrier (sm_90): arrive without ordering memory, then wait. All threads of every
//! CTA of the cluster call both, in this order, once per barrier phase.
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
#else
  __trap();  // clusters need sm_90
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.aligned;" ::: "memory");
#else
  __trap();
#endif
}

//! The compress_thread of thread `tid` of a compress_layout<M, HEAD_DIM, W, IN_BYTES> CTA of cluster rank `rank`.
template <int M, int HEAD_DIM, compress_work W, int IN_BYTES>
__device__ __forceinline__ compress_thread compress_thread_of(int tid, int rank) {
  using L = compress_layout<M, HEAD_DIM, W, IN_BYTES>;
  compress_thread t;
  t.quad = tid % L::channel_threads;
  t.col = L::vec * (tid % L::group_threads);
  t.group = L::overlap ? 0 : rank * L::cta_groups + (tid / L::group_threads) % L::cta_groups;
  t.local_row = L::overlap ? tid / L::channel_threads : 0;
  t.holder = t.group == 0 && tid % L::group_threads < L::channel_threads;
  return t;
}

//! Slot group of pass `pass` of a thread whose first slot group is `group`.
template <class L>
__device__ __forceinline__ int pass_group(int group, int pass) {
  return group + pass * L::cta_groups * L::cluster;
}

//! Loads chunk k of slot group `group` of the row of block `block` (the block's index in its
//! sequence: block 0 has no previous block), channels col0 .. col0 + L::vec - 1: the scores
//! z = gate + bias (FP32 add) and the values v of its L::chunk slots. Tokens come from `tokens`
//! (see prefill_tokens) by their position in the sequence.
template <class L, int M, int HEAD_DIM, class TOKENS, class BiasT>
__device__ __forceinline__ void compress_load_chunk(const TOKENS& tokens, const BiasT* position_bias, std::int64_t block,
                                                    int col0, int group, int k, float (&z)[L::chunk][L::vec],
                                                    float (&v)[L::chunk][L::vec]) {
  constexpr int N = L::vec;
#pragma unroll
  for (int j = 0; j < L::chunk; ++j) {
    const int slot = group * L::slots_per_group + k * L::chunk + j;
    // CSA: slots < M come from the previous block's first-half channels, slots >= M from the
    // current block's second half. HCA: slot u is token u of the current block.
    const bool previous = L::overlap && slot < M;
    const int u = (L::overlap && slot >= M) ? slot - M : slot;  // bias row
    const int col = ((L::overlap && !previous) ? HEAD_DIM : 0) + col0;
    vecf<N> zz, vv;
    if (previous && block == 0) {  // absent slot: weight exactly 0
#pragma unroll
      for (int c = 0; c < N; ++c) {
        component(zz, c) = bits_to_float(0xFF800000u);
        component(vv, c) = 0.0f;
      }
    } else {
      tokens.template load<N>((previous ? block - 1 : block) * M + u, col, vv, zz);
      if (position_bias != nullptr) {
        vecf<N> b = loadn_cached<N>(position_bias + u * L::width + col);
#pragma unroll
        for (int c = 0; c < N; ++c) component(zz, c) = component(zz, c) + component(b, c);
      }
    }
#pragma unroll
    for (int c = 0; c < N; ++c) {
      z[j][c] = component(zz, c);
      v[j][c] = component(vv, c);
    }
  }
}

//! The softmax weight exp(x - m) of a score x under the running max m. EX2 (compress_layout::ex2):
//! 2^((x - m) * log2(e)), the FP32 difference as expf takes it, one multiply and one ex2.approx.ftz
//! (3 SASS instructions; x = m gives exactly 1, an absent slot's -inf exactly 0, a weight under
//! 2^-126 0); otherwise expf(x - m) (~9 instructions). Different bits, both within SPEC §9's 1e-5 of
//! the double reference (the benchmarks check it before they time; benchmarks/softmax_exp_error_model.py).
template <bool EX2>
__device__ __forceinline__ float softmax_exp(float x, float m) {
  if constexpr (EX2) {
    constexpr float log2e = 1.44269504088896340736f;
    const float e = __fmul_rn(__fsub_rn(x, m), log2e);
    float w;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(w) : "f"(e));
    return w;
  } else {
    return expf(x - m);
  }
}

//! Folds one chunk (scores z, values v) into the online softmax state st; `first`: st is empty.
template <class L>
__device__ __forceinline__ void compress_fold_chunk(softmax_state<L::vec>& st, const float (&z)[L::chunk][L::vec],
                                                    const float (&v)[L::chunk][L::vec], bool first) {
#pragma unroll
  for (int c = 0; c < L::vec; ++c) {
    float chunk_max = z[0][c];
#pragma unroll
    for (int j = 1; j < L::chunk; ++j) chunk_max = fmaxf(chunk_max, z[j][c]);
    if (first) {
      st.m[c] = chunk_max;
      st.s[c] = 0.0f;
      st.a[c] = 0.0f;
    } else {  // rescale what was summed under the old max
      const float m_new = fmaxf(st.m[c], chunk_max);
      const float f = softmax_exp<L::ex2>(st.m[c], m_new);
      st.s[c] = __fmul_rn(st.s[c], f);
      st.a[c] = __fmul_rn(st.a[c], f);
      st.m[c] = m_new;
    }
#pragma unroll
    for (int j = 0; j < L::chunk; ++j) {
      const float w = softmax_exp<L::ex2>(z[j][c], st.m[c]);
      st.s[c] = __fadd_rn(st.s[c], w);
      st.a[c] = __fmaf_rn(w, v[j][c], st.a[c]);
    }
  }
}

//! Runs the softmax over the slots of slot group `group` (channels col .. col + L::vec - 1) of
//! the row of block `block`, chunk by chunk in slot order. With 2 channels per thread the next
//! chunk's tokens are loaded before the current chunk is folded (two chunks of loads in flight
//! fit the registers); the arithmetic is the same either way.
template <int M, int HEAD_DIM, compress_work W, class TOKENS, class BiasT>
__device__ __forceinline__ softmax_state<compress_layout<M, HEAD_DIM, W, TOKENS::element_bytes>::vec>
compress_accumulate(const TOKENS& tokens, const BiasT* position_bias, std::int64_t block, int col, int group) {
  using L = compress_layout<M, HEAD_DIM, W, TOKENS::element_bytes>;
  constexpr int CHUNKS = L::slots_per_group / L::chunk;
  constexpr bool AHEAD = L::vec < vec_elems && CHUNKS > 1;  // load chunk k + 1 before folding chunk k
  softmax_state<L::vec> st;
  float z[AHEAD ? 2 : 1][L::chunk][L::vec], v[AHEAD ? 2 : 1][L::chunk][L::vec];  // scores and values
  if constexpr (AHEAD) compress_load_chunk<L, M, HEAD_DIM>(tokens, position_bias, block, col, group, 0, z[0], v[0]);
#pragma unroll
  for (int k = 0; k < CHUNKS; ++k) {
    const int b = AHEAD ? k % 2 : 0;  // the buffer of chunk k
    if constexpr (AHEAD) {
      if (k + 1 < CHUNKS) {
        compress_load_chunk<L, M, HEAD_DIM>(tokens, position_bias, block, col, group, k + 1, z[1 - b], v[1 - b]);
      }
    } else {
      compress_load_chunk<L, M, HEAD_DIM>(tokens, position_bias, block, col, group, k, z[0], v[0]);
    }
    compress_fold_chunk<L>(st, z[b], v[b], k == 0);
  }
  return st;
}

//! One compressed row, SPEC §3 then the epilogue stages `p` enables (§2 order): returns this
//! thread's 4 channels (4*quad ..) of the row of block `block`, meaningful in holder threads of a
//! row group with has_row. rope_pos: the row's RoPE position (read when RoPE is on and has_row).
//! All threads of the CTA call it (it synchronises); has_row is uniform per row group.
template <int M, int HEAD_DIM, compress_work W, class TOKENS, class BiasT>
__device__ __forceinline__ float4 compress_row(const TOKENS& tokens, const compress_row_params<BiasT>& p,
                                               std::int64_t block, std::int64_t rope_pos, bool has_row,
                                               const compress_thread& t,
                                               compress_storage<M, HEAD_DIM, W>& smem) {
  using L = compress_layout<M, HEAD_DIM, W, TOKENS::element_bytes>;  // t was made for this layout
  constexpr int ROWS = L::rows_per_cta;
  const int quad = t.quad, local_row = t.local_row;

  // A CTA may write another CTA's shared memory only once that CTA runs: every CTA arrives on the
  // cluster barrier now and waits on it before its remote stores, so the wait overlaps the loads.
  if constexpr (L::cluster > 1) cluster_arrive_relaxed();
  softmax_state<L::vec> st{};  // of the first pass's slot group, t.group
  if (has_row) st = compress_accumulate<M, HEAD_DIM, W>(tokens, p.position_bias, block, t.col, t.group);

  // The epilogue's small operands (norm weight, RoPE entries), loaded now: their latency overlaps
  // the slot-group merge and the row sum's barrier instead of adding a round trip per stage.
  float4 norm_w = make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // this thread's 4 norm weights
  if (p.norm_weight != nullptr && t.holder) norm_w = load4_cached(p.norm_weight + vec_elems * quad);
  const int rope_offset = vec_elems * quad - (HEAD_DIM - p.rope.rope_dim);  // >= 0: channels in the rope region
  const bool rope_here = p.rope.rope_dim != 0 && t.holder && has_row && rope_offset >= 0;
  rope_coefs rope{};
  if (rope_here) rope = rope_load4(p.rope, rope_pos, rope_offset);

  float4 y = make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // this thread's 4 output channels
  if constexpr (L::slot_groups == 1) {
    static_assert(L::vec == vec_elems, "one slot group: the summing thread finishes its 4 channels");
    if (has_row) y = make_float4(st.a[0] / st.s[0], st.a[1] / st.s[1], st.a[2] / st.s[2], st.a[3] / st.s[3]);
  } else {
    // Merge the slot groups: rescale each group's sums to the common max, add in group order.
    // With a cluster, every CTA writes its groups' partials into the row's holder CTA (rank 0)
    // through distributed shared memory; after the cluster barrier rank 0 merges them all. The
    // barrier also ends every CTA's reads of the tokens (the append kernel's state writes rely on it).
    typename compress_storage<M, HEAD_DIM, W>::partials* part = &smem.part;
    if constexpr (L::cluster > 1) {
      cluster_wait();  // every CTA of the cluster runs (the arrive above)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      part = cooperative_groups::this_cluster().map_shared_rank(&smem.part, 0);
#endif
    }
    const auto store_partials = [&](int g) {  // slot group g's (max, sum, weighted sum) of this thread's channels
      using V = vecf<L::vec>;
      V m, sum, a;
#pragma unroll
      for (int c = 0; c < L::vec; ++c) {
        component(m, c) = st.m[c];
        component(sum, c) = st.s[c];
        component(a, c) = st.a[c];
      }
      reinterpret_cast<V*>(&part->m[local_row][g][0])[t.col / L::vec] = m;
      reinterpret_cast<V*>(&part->s[local_row][g][0])[t.col / L::vec] = sum;
      reinterpret_cast<V*>(&part->a[local_row][g][0])[t.col / L::vec] = a;
    };
    store_partials(t.group);
    // The later passes' slot groups (unclustered HCA), each stored as soon as it is summed.
#pragma unroll 1
    for (int pass = 1; pass < L::passes; ++pass) {
      const int g = pass_group<L>(t.group, pass);
      if (has_row) st = compress_accumulate<M, HEAD_DIM, W>(tokens, p.position_bias, block, t.col, g);
      store_partials(g);
    }
    if constexpr (L::cluster > 1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      cooperative_groups::this_cluster().sync();
#else
      __trap();  // clusters need sm_90
#endif
    } else {
      __syncthreads();
    }
    if (t.holder && has_row) {
      float4 m = smem.part.m[local_row][0][quad];  // the channels' max over all groups
      for (int g = 1; g < L::slot_groups; ++g) {
        const float4 gm = smem.part.m[local_row][g][quad];
        m = make_float4(fmaxf(m.x, gm.x), fmaxf(m.y, gm.y), fmaxf(m.z, gm.z), fmaxf(m.w, gm.w));
      }
      float s[vec_elems] = {}, a[vec_elems] = {};
      for (int g = 0; g < L::slot_groups; ++g) {
        float4 gm = smem.part.m[local_row][g][quad];
        float4 gs = smem.part.s[local_row][g][quad];
        float4 ga = smem.part.a[local_row][g][quad];
#pragma unroll
        for (int c = 0; c < vec_elems; ++c) {
          const float f = softmax_exp<L::ex2>(component(gm, c), component(m, c));
          s[c] = __fmaf_rn(component(gs, c), f, s[c]);
          a[c] = __fmaf_rn(component(ga, c), f, a[c]);
        }
      }
      y = make_float4(a[0] / s[0], a[1] / s[1], a[2] / s[2], a[3] / s[3]);
    }
  }

  // RMSNorm: y * rsqrt(mean(y^2) + eps) * w, the mean over the whole row (a row-group sum).
  if (p.norm_weight != nullptr) {
    const float sq = __fmaf_rn(y.w, y.w, __fmaf_rn(y.z, y.z, __fmaf_rn(y.y, y.y, __fmul_rn(y.x, y.x))));
    const float total = row_sum<HEAD_DIM, ROWS>(sq, local_row, quad, t.holder, smem.sum);
    if (t.holder) {
      const float inv_rms = 1.0f / sqrtf(__fmaf_rn(total, 1.0f / HEAD_DIM, p.eps));
      y = make_float4(y.x * inv_rms * norm_w.x, y.y * inv_rms * norm_w.y, y.z * inv_rms * norm_w.z,
                      y.w * inv_rms * norm_w.w);
    }
  }
  // RoPE on the last rope_dim channels (rope_dim % 4 == 0: a thread's 4 channels are all in or out).
  if (rope_here) y = rope_apply4(y, rope);
  if (p.hadamard) row_hadamard<HEAD_DIM, ROWS>(y, local_row, quad, t.holder, smem.hadamard);
  return y;
}

}  // namespace detail

//! One compressed row per row group, stored as FP32; grid: ceil(n / compress_layout::rows_per_cta)
//! clusters of compress_layout::cluster CTAs of compress_layout::threads threads. The epilogue
//! stages run when their argument is present (norm_weight, rope.rope_dim, hadamard), in the order
//! of SPEC §2.
template <int M, int HEAD_DIM, class InT, class BiasT>
__global__ void __launch_bounds__(compress_layout<M, HEAD_DIM, compress_work::prefill, sizeof(InT)>::threads,
                                  compress_min_ctas<compress_layout<M, HEAD_DIM, compress_work::prefill, sizeof(InT)>>)
    compress_kernel(const compress_kernel_params<InT, BiasT> p) {
  constexpr compress_work W = compress_work::prefill;
  using L = compress_layout<M, HEAD_DIM, W, sizeof(InT)>;
  __shared__ detail::compress_storage<M, HEAD_DIM, W> smem;
  const detail::compress_thread t =
      detail::compress_thread_of<M, HEAD_DIM, W, sizeof(InT)>(threadIdx.x, detail::cluster_rank<L>());
  const std::int64_t row = detail::cluster_index<L>() * L::rows_per_cta + t.local_row;
  const bool has_row = row < p.rows;  // uniform per row group
  const std::int64_t rope_pos =
      (p.row.rope.rope_dim != 0 && has_row) ? detail::rope_row_position(p.positions, p.start_position, M, row) : 0;
  const float4 y = detail::compress_row<M, HEAD_DIM, W>(p.tokens, p.row, row, rope_pos, has_row, t, smem);
  if (t.holder && has_row) detail::store4(p.out + row * p.out_stride + detail::vec_elems * t.quad, y);
}

}  // namespace dsv4kv
