// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host API of streaming append (SPEC §7) on the GPU: decode steps, chunked prefill and varlen
//! batches of many sequences in one launch, through the fused write path (compress -> RMSNorm ->
//! RoPE -> (Hadamard) -> NVFP4 / FP8) with a per-sequence FP32 compressor state and a paged pool.
//! The model (segments, slot mapping, state layout, exactness, error bits): append_model.hpp.
//! Plain C++: no CUDA compiler needed to include it.
//!
//! CUDA graphs: the call reads cu_seqlens, positions, state slots and the slot mapping from device
//! memory when the kernel runs, so a captured step can be replayed after the caller writes new
//! values into those buffers. What a capture bakes in: the pointers, `segments` and
//! `kv.rows` (total tokens; the grid covers any cu_seqlens with cu[B] <= kv.rows), and the kernel
//! instantiation picked from those two (one segment of at least a block takes the prefill's
//! layout, anything else the batch layout; kernels/append.cuh, append_variant_for).
//!
//! Programmatic dependent launch (append_params::pdl). The kernel is launched with
//! cudaLaunchAttributeProgrammaticStreamSerialization: it may start while the kernel before it on
//! the stream is still running, and waits (griddepcontrol.wait) for that kernel to complete before
//! it reads or writes any memory, so the result is the same whatever came before; only the launch
//! latency overlaps. It also lets the next kernel of the stream start early (if that one was
//! launched with PDL). Worth it for back-to-back launches: decode steps of successive layers,
//! chunks of a prefill. Captured into a graph, it becomes a programmatic edge.
//!
//! Declared segment length (append_params::max_segment_tokens). Without it, each CTA of a batch
//! finds its segment by a prefix sum over the whole batch's metadata, which every CTA reads (at
//! B = 256 that read took 1-1.5 us of a 3-4 us decode step on an H100). When the declared bound
//! lets any segment's rows fit one CTA (append_max_segment_rows(m, max) <= the batch layout's rows
//! per CTA: up to 5 tokens for CSA, 128 for HCA), CTA s works on segment s and reads only its own
//! metadata; a larger bound keeps the prefix sum. Whatever the mapping, a segment longer than
//! declared is not processed (no row written, its state unchanged) and raises
//! append_error_segment_length (append_segment_length_ok, the rule validate_append_metadata
//! reports on host copies). A capture bakes the value in.
//!
//! Metadata errors. What the host can check without a sync (pointers, sizes, alignment, aliasing,
//! counts) returns a status and launches nothing. The metadata values live on the device, where
//! the host cannot read them without a sync: the kernel checks them and raises append_error_*
//! bits into `error_flags` (kernels/append.cuh says which rows are then not written). Engines
//! that hold host copies (they usually build the metadata on the host) call
//! validate_append_metadata (append_model.hpp) on them first: a clear status, and they launch
//! nothing when it fails.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "dsv4kv/append_model.hpp"
#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv {

//! The compressor states of `slots` sequences: device memory [slots, append_state_bytes(m, d)],
//! 16-byte aligned, owned by the caller (one buffer per stream: CSA main KV, HCA main KV, indexer).
struct append_state {
  std::uint8_t* data = nullptr;
  std::int64_t slots = 0;
};

//! One append batch (device pointers unless noted). IN: element type of kv / gate, BIAS: of
//! position_bias; each float (FP32) or std::uint16_t (BF16 bits). m = ratio, c = 1 + (m == 4),
//! d = the pool's row width, B = segments, N = kv.rows (total new tokens).
template <class IN, class BIAS = IN>
struct append_params {
  int ratio = csa_ratio;                        // m: 4 (CSA) or 128 (HCA)
  tensor_view<const IN> kv;                     // [N, c*d] the segments' new tokens, concatenated;
                                                //   row stride % 4 == 0, 4*sizeof(IN)-aligned
  tensor_view<const IN> gate;                   // [N, c*d], same rules
  const BIAS* position_bias = nullptr;          // [m, c*d] contiguous, or nullptr (zeros)
  const float* norm_weight = nullptr;           // [d] FP32, 16-byte aligned, or nullptr (no RMSNorm)
  float eps = 1e-6f;                            // RMSNorm epsilon, finite and >= 0
  rope_table_view rope{};                       // cos/sin [max_pos, rope_dim/2]; the row of block i
                                                //   rotates at i*m (NaN channels past max_pos)
  bool hadamard = false;                        // indexer keys: rotate by H_d * d^-1/2 after RoPE
  std::int64_t segments = 0;                    // B (host value)
  const std::int32_t* cu_seqlens = nullptr;     // [B+1] segment s = new tokens [cu[s], cu[s+1])
  const std::int32_t* positions = nullptr;      // [B] position of segment s's first token
  const std::int32_t* state_slots = nullptr;    // [B] state slot of segment s's sequence, or -1 (no
                                                //   state: only where no row needs one); nullptr: all -1
  const std::int32_t* slot_mapping = nullptr;   // [N] pool row of the row whose block ends at new
                                                //   token k, -1: not written; other entries unread
  append_state state;                           // the states (may be empty when state_slots is null)
  std::uint32_t* error_flags = nullptr;         // [1] OR of append_error_* bits, or nullptr (not
                                                //   cleared by the call)
  bool pdl = false;                             // host value: launch with programmatic dependent
                                                //   launch (sm_90+; see the file comment)
  std::int64_t max_segment_tokens = 0;          // host value: no segment has more new tokens than
                                                //   this (FlashAttention's max_seqlen_q; a decode
                                                //   step: 1), or 0: not declared. See the file comment.
};

//! Main KV: appends the batch and writes every finished row as NVFP4 into `pool` [pool rows, d]
//! through the slot mapping. One launch for the whole batch; never synchronizes; capturable.
//! Supported (m, d): (4, 128), (4, 512), (128, 128), (128, 512). B == 0 or N == 0: nothing launched.
//! Instantiated for IN, BIAS in {float, std::uint16_t}.
template <class IN, class BIAS>
[[nodiscard]] status append_nvfp4(const append_params<IN, BIAS>& p, nvfp4_rows pool, cudaStream_t stream);

//! Indexer keys: as append_nvfp4, FP8 rows with scale `mode`.
template <class IN, class BIAS>
[[nodiscard]] status append_fp8(const append_params<IN, BIAS>& p, fp8_scale_mode mode, fp8_rows pool,
                                cudaStream_t stream);

//! The validation of append_nvfp4 / append_fp8 alone (CUTLASS's can_implement): the status the
//! call returns before it launches; ok when it would launch. Host only: reads no pointed-to memory
//! (the device metadata is the kernel's to check), no CUDA call.
template <class IN, class BIAS>
[[nodiscard]] status can_implement_append_nvfp4(const append_params<IN, BIAS>& p, nvfp4_rows pool) noexcept;
template <class IN, class BIAS>
[[nodiscard]] status can_implement_append_fp8(const append_params<IN, BIAS>& p, fp8_scale_mode mode,
                                              fp8_rows pool) noexcept;

//! Resets the states named by `slots` (device [count], each in [0, state.slots)) for new
//! sequences: their headers become zero, so nothing of the old sequence can be read again (an
//! append at position 0 also starts fresh by itself). ratio, d: the stream the states belong to.
//! count == 0: nothing launched. An out-of-range slot is skipped.
[[nodiscard]] status reset_append_state(append_state state, int ratio, std::int64_t d, const std::int32_t* slots,
                                        std::int64_t count, cudaStream_t stream);

}  // namespace dsv4kv
