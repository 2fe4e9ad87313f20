// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Staging of CSA rows' token slots in shared memory, for the fused prefill's persistent loop
//! (append_kernel's prefill variant, kernels/append.cuh): while a CTA finishes row k (merge,
//! RMSNorm, RoPE, Hadamard, amax, quantize, store), row k + 1's 2M slots of kv / gate are already
//! on their way by cp.async, so every CTA keeps its next bytes in flight through its epilogue
//! without the registers a prefetch into registers would take (the prefill runs at 80 registers
//! per thread, 24 warps per SM).
//!
//! Each thread stages exactly the elements compress_row will ask it for (its 4 channels of each
//! of its row's slots, compress_slot_source), in the input's own type, and reads back only its
//! own copies: no barrier between a copy and its use. Read back, they are widened exactly like a
//! direct load (BF16 -> FP32), so compress_row computes the same bits from a staged row.
//!
//! Shared memory: InT [2 (kv, gate)][2M slots][threads][4], csa_row_stage::bytes (CSA-512 FP32:
//! 64 KB per CTA of 256 threads; CSA-128 FP32: 16 KB per CTA of 64 threads).

#include <cstddef>
#include <cstdint>

#include "dsv4kv/kernels/async_copy.cuh"
#include "dsv4kv/kernels/compress.cuh"
#include "dsv4kv/kernels/vector_io.cuh"

namespace dsv4kv::detail {

//! 4 staged elements as FP32 (BF16 widened exactly, as loadn_stream does).
__device__ __forceinline__ float4 staged4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 staged4(const __nv_bfloat16* p) { return widen_bf16(*reinterpret_cast<const uint2*>(p)); }

//! The stage of one CSA CTA (compress_layout<M, HEAD_DIM>, rows_per_cta row groups) for inputs
//! of type InT.
template <int M, int HEAD_DIM, class InT>
struct csa_row_stage {
  using L = compress_layout<M, HEAD_DIM, true, static_cast<int>(sizeof(InT))>;
  static_assert(L::overlap && L::vec == vec_elems && L::slots == 2 * M, "CSA rows: 2M slots, 4 channels per thread");
  static constexpr int slots = L::slots;
  static constexpr int threads = L::threads;
  static constexpr int copy_bytes = vec4_bytes<InT>;                                            // per slot and array
  static constexpr std::size_t bytes = std::size_t{2} * slots * threads * vec_elems * sizeof(InT);  // per CTA

  //! This thread's (tid) 4 elements of array a (0: kv, 1: gate) of slot `slot`.
  __device__ __forceinline__ static InT* at(InT* stage, int a, int slot, int tid) {
    return stage + (static_cast<std::ptrdiff_t>(a * slots + slot) * threads + tid) * vec_elems;
  }

  //! Issues (does not commit) the copies of this thread's channels col0 .. col0 + 3 of every
  //! present slot of the row of block `block`, from the projections `in`.
  __device__ __forceinline__ static void issue(const prefill_tokens<InT>& in, std::int64_t block, int col0, InT* stage,
                                               int tid) {
#pragma unroll
    for (int slot = 0; slot < slots; ++slot) {
      const slot_source src = compress_slot_source<L, M, HEAD_DIM>(block, slot, col0);
      if (!src.present) continue;
      cp_async<copy_bytes>(at(stage, 0, slot, tid), in.kv + src.token * in.kv_stride + src.col);
      cp_async<copy_bytes>(at(stage, 1, slot, tid), in.gate + src.token * in.gate_stride + src.col);
    }
  }
};

//! Token source of one staged CSA row: this thread's copies in the stage. compress_row calls
//! after_reads once its last token is read (the fold is done): the source then issues the copies
//! of the CTA's next row into the same stage, so they fly during the epilogue (merge, RMSNorm,
//! RoPE, Hadamard, amax, quantize, store) and the next row's wait.
template <int M, int HEAD_DIM, class InT>
struct staged_row_tokens {
  using S = csa_row_stage<M, HEAD_DIM, InT>;
  static constexpr int element_bytes = static_cast<int>(sizeof(InT));
  InT* stage = nullptr;                      // [2][2M][threads][4] (dynamic shared memory)
  int tid = 0;                               // this thread's index in the CTA
  const prefill_tokens<InT>* input = nullptr;
  std::int64_t next_block = -1;              // the row to stage next (this row group's), -1: none
  int col = 0;                               // this thread's first channel

  template <int N = vec_elems>
  __device__ __forceinline__ void load(std::int64_t, int, vecf<N>& v, vecf<N>& z, int slot) const {
    static_assert(N == vec_elems, "CSA rows sum 4 channels per thread");
    v = staged4(S::at(stage, 0, slot, tid));
    z = staged4(S::at(stage, 1, slot, tid));
  }

  __device__ __forceinline__ void after_reads() const {
    __syncwarp();  // this thread's reads of the stage are ordered before the copies that overwrite it
    if (next_block >= 0) S::issue(*input, next_block, col, stage, tid);
    cp_async_commit();
  }
};

}  // namespace dsv4kv::detail
