// SPDX-License-Identifier: Apache-2.0
#pragma once
//! The append model of SPEC §7, shared by the GPU API (append.hpp), its kernel (kernels/append.cuh)
//! and the host reference (ref/append.hpp): the per-sequence compressor state layout, the batch
//! metadata rules with their error bits, and the host-side metadata validator. Plain C++.
//!
//! Append. A batch is B segments; segment s is the new tokens [cu_seqlens[s], cu_seqlens[s+1]) of
//! the concatenated projections, at sequence positions [p, p + L) with p = positions[s]. It emits
//! the rows of the blocks that end inside [p, p + L): blocks floor(p/m) .. floor((p+L)/m) - 1, row
//! of block i rotated at position i*m, each with the value a one-shot prefill of [0, p + L) gives
//! (SPEC §3). The tokens before p that those rows need come from the sequence's state.
//!
//! Slot mapping (per token, like vLLM's): the row of the block that ends at new token k (global
//! token index, its position = m-1 mod m) goes to pool row slot_mapping[k]; -1 skips the write.
//! Entries of tokens that end no block are never read.
//!
//! State slot (append_state_bytes(ratio, d) bytes, 16-byte aligned; all zero = empty):
//!   [0, 16)   header: int64 next_position (where the sequence's next append starts),
//!             uint32 tag (append_state_tag(ratio, d)), uint32 0
//!   [16, ..)  kv ring [R, c*d] FP32, then gate ring [R, c*d] FP32. Token q of the sequence, when
//!             kept, sits in ring row append_state_ring_row(ratio, q), as the FP32 value the
//!             compressor reads (BF16 projections widen exactly, so nothing is rounded).
//!   R = 2m for CSA (the previous block and the unfinished block: the next row needs both), m - 1
//!   for HCA (the unfinished block; a block's last token always completes its row there and then).
//! After an append that ends at position e, the ring holds tokens [append_state_first_kept(m, e), e).
//!
//! Exactness. Each row is recomputed from exactly the slot values (raw FP32 kv and gate) of its
//! block, in the same order, by the same code as a one-shot prefill; only where a token is read
//! from (projections or ring) differs. So token-by-token, chunked and one-shot give identical bytes.
//!
//! Starting a sequence: an append at position 0 never reads its state (there is nothing before
//! position 0), so it starts fresh whatever the slot held. An append at p > 0 reads the state only
//! when its header says next_position == p and the tag matches; otherwise the rows that need the
//! state are not written and append_error_state_mismatch is raised (see append.hpp), so a state
//! can never leak into another sequence.

#include <cstdint>

#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/config.hpp"
#include "dsv4kv/status.hpp"

namespace dsv4kv {

//! Header of a state slot.
struct append_state_header {
  std::int64_t next_position;  // position the sequence's next append starts at
  std::uint32_t tag;           // append_state_tag(ratio, d) once written; 0 after a reset
  std::uint32_t reserved;      // 0
};
static_assert(sizeof(append_state_header) == 16);

//! Bytes of the state header (the rings start right after it, 16-byte aligned).
inline constexpr std::int64_t append_state_header_bytes = 16;
//! Alignment of a state buffer and of every state slot (bytes).
inline constexpr std::int64_t append_state_alignment = 16;

//! Ring rows R of a state: 2m for CSA, m - 1 for HCA.
DSV4KV_HOST_DEVICE constexpr int append_state_ring_tokens(int ratio) {
  return compress_overlaps(ratio) ? 2 * ratio : ratio - 1;
}

//! Ring row of kept token q (q >= 0): q mod 2m for CSA, q mod m for HCA (never m - 1 when kept).
DSV4KV_HOST_DEVICE constexpr std::int64_t append_state_ring_row(int ratio, std::int64_t q) {
  return compress_overlaps(ratio) ? q % (2 * ratio) : q % ratio;
}

//! First token a state keeps after an append that ends at position `end`: the start of the
//! unfinished block, minus one block for CSA (its previous block), never below 0.
DSV4KV_HOST_DEVICE constexpr std::int64_t append_state_first_kept(int ratio, std::int64_t end) {
  const std::int64_t block_start = end / ratio * ratio;
  const std::int64_t first = compress_overlaps(ratio) ? block_start - ratio : block_start;
  return first > 0 ? first : 0;
}

//! First token (position) the row of block b reads: the previous block's first for CSA (block 0
//! has none), the block's own for HCA.
DSV4KV_HOST_DEVICE constexpr std::int64_t append_row_first_token(int ratio, std::int64_t block) {
  return compress_overlaps(ratio) ? (block > 0 ? (block - 1) * ratio : 0) : block * ratio;
}

//! The most rows a segment of at most `max_tokens` >= 0 new tokens emits, at any position: blocks
//! ending inside it, floor((m - 1 + max_tokens) / m) (one for a decode token), computed without
//! overflow for any max_tokens.
DSV4KV_HOST_DEVICE constexpr std::int64_t append_max_segment_rows(int ratio, std::int64_t max_tokens) {
  return max_tokens / ratio + (max_tokens % ratio + ratio - 1) / ratio;
}

//! Rows a segment of `length` tokens at `position` emits: the blocks that end inside it.
DSV4KV_HOST_DEVICE constexpr std::int64_t append_row_count(int ratio, std::int64_t position, std::int64_t length) {
  return (position + length) / ratio - position / ratio;
}

//! True when some row of the segment reads a token before `position` (from the state): only its
//! first row, and for CSA the second, can.
DSV4KV_HOST_DEVICE constexpr bool append_segment_needs_state(int ratio, std::int64_t position, std::int64_t length) {
  return append_row_count(ratio, position, length) > 0 && append_row_first_token(ratio, position / ratio) < position;
}

//! Bytes of one state slot for ratio m and output width d: header + kv and gate rings
//! (CSA-512: 65552, CSA-128: 16400, HCA-512: 520208, HCA-128: 130064). 0 for d <= 0.
DSV4KV_HOST_DEVICE constexpr std::int64_t append_state_bytes(int ratio, std::int64_t d) {
  return d <= 0 || ratio <= 0 ? 0
                              : append_state_header_bytes + 2 * append_state_ring_tokens(ratio) *
                                                                compress_input_width(ratio, d) *
                                                                static_cast<std::int64_t>(sizeof(float));
}

//! The tag a written state carries: identifies (ratio, d), so a state of another stream is refused.
DSV4KV_HOST_DEVICE constexpr std::uint32_t append_state_tag(int ratio, std::int64_t d) {
  return 0xD5000000u | (static_cast<std::uint32_t>(ratio & 0xFFF) << 12) | static_cast<std::uint32_t>((d / 16) & 0xFFF);
}

static_assert(append_state_bytes(4, 512) == 65552 && append_state_bytes(128, 512) == 520208);

//! The most work units (CTAs of ROWS rows) a batch of N tokens in B segments can need, with
//! q = M * ROWS >= 2 tokens per unit (the append kernel's grid for small batches,
//! kernels/append.cuh). Segment s needs max(1, ceil(rows / ROWS)) <= floor(L_s / q) + 1 units
//! when L_s > 0, none when empty; the largest sum of floor(L_s / q) + 1 over at most B non-empty
//! segments of total N takes K = min(B, N) singletons, then q - 1 more tokens per extra unit in
//! each, then q per unit (exact: tests/host/test_ref_append.cpp checks it by brute force). A
//! decode step (N = B): B units.
DSV4KV_HOST_DEVICE constexpr std::int64_t append_scan_units(std::int64_t n, std::int64_t b, std::int64_t q) {
  const std::int64_t k = n < b ? n : b;  // K
  const std::int64_t e = n - k;           // tokens beyond one per segment
  if (k == 0) return 0;
  if (e < k * (q - 1)) return k + e / (q - 1);
  return 2 * k + (e - k * (q - 1)) / q;
}

//! The most work units (CTAs of ROWS rows, q = M * ROWS tokens per unit) one segment of a batch of
//! N tokens can need when its units are counted from floor(cu[0] / q) (the append kernel's single
//! segment, kernels/append.cuh): floor(b / q) + max(1, ceil(rows / ROWS)) <= ceil(N / q) for any
//! b = cu[0], length L >= 1 with b + L <= N and position (rows <= ceil(L / M));
//! tests/host/test_ref_append.cpp checks it by brute force. A 4K-token HCA chunk: 32 units.
DSV4KV_HOST_DEVICE constexpr std::int64_t append_single_units(std::int64_t n, std::int64_t q) {
  return (n + q - 1) / q;
}

//! Error bits of append metadata, raised by the kernel into append_params::error_flags (device) or
//! reported by validate_append_metadata (host).
inline constexpr std::uint32_t append_error_cu_seqlens = 1u << 0;      //!< cu_seqlens not non-decreasing within [0, total_tokens]
inline constexpr std::uint32_t append_error_position = 1u << 1;        //!< a negative position, or position + length > 2^31 - 1
inline constexpr std::uint32_t append_error_state_slot = 1u << 2;      //!< a state slot outside [-1, slots), or -1 where a row needs the state
inline constexpr std::uint32_t append_error_state_mismatch = 1u << 3;  //!< the state does not continue at the segment's position (device only)
inline constexpr std::uint32_t append_error_pool_slot = 1u << 4;       //!< a row's pool slot outside [-1, pool rows)
inline constexpr std::uint32_t append_error_duplicate_state = 1u << 5; //!< two non-empty segments share a state slot (host only)
inline constexpr std::uint32_t append_error_duplicate_pool = 1u << 6;  //!< two rows share a pool slot (host only)
inline constexpr std::uint32_t append_error_segment_length = 1u << 7; //!< a segment longer than the declared max_segment_tokens

//! The rules on one segment's own metadata that the kernel and validate_append_metadata share.
//! Bounds begin = cu[s], end = cu[s+1]: in order within [0, total_tokens] (else
//! append_error_cu_seqlens). Position of a non-empty segment of `length` tokens: non-negative,
//! position + length <= 2^31 - 1 (else append_error_position).
DSV4KV_HOST_DEVICE constexpr bool append_segment_bounds_ok(std::int64_t begin, std::int64_t end,
                                                           std::int64_t total_tokens) {
  return begin >= 0 && end >= begin && end <= total_tokens;
}
DSV4KV_HOST_DEVICE constexpr bool append_segment_position_ok(std::int64_t position, std::int64_t length) {
  return position >= 0 && position + length <= 0x7FFFFFFFll;
}
//! Length of a non-empty segment against a declared max_segment_tokens (0: none declared): at most
//! that many tokens (else append_error_segment_length).
DSV4KV_HOST_DEVICE constexpr bool append_segment_length_ok(std::int64_t length, std::int64_t max_segment_tokens) {
  return max_segment_tokens <= 0 || length <= max_segment_tokens;
}

//! Host copies of an append batch's metadata (the arrays the GPU call reads from device memory).
struct append_metadata {
  std::int64_t segments = 0;                  // B
  std::int64_t total_tokens = 0;              // rows of the projections
  const std::int32_t* cu_seqlens = nullptr;   // [B+1]
  const std::int32_t* positions = nullptr;    // [B]
  const std::int32_t* state_slots = nullptr;  // [B], or nullptr: no segment keeps a state
  const std::int32_t* slot_mapping = nullptr; // [total_tokens]
  std::int64_t max_segment_tokens = 0;        // the call's append_params::max_segment_tokens (0: none declared)
};

//! What validate_append_metadata found: the first offending segment (-1 when none) and the OR of
//! the error bits over the whole batch.
struct append_metadata_report {
  std::int64_t segment = -1;
  std::uint32_t errors = 0;
};

//! Checks host copies of an append batch's metadata against every rule the kernel checks on the
//! device (cu_seqlens, positions, segment lengths, state slots, pool slots) plus those only the host can check
//! (duplicate state slots among non-empty segments, duplicate pool slots among written rows):
//! status::ok, or invalid_argument with `report` (optional) saying where and what. A state slot
//! -1 is accepted only for a segment that needs no state (its rows read no token before its
//! position). Does not read the device state (the header check is the kernel's).
//! state_slot_count: slots of the state buffer; pool_rows: rows of the output pool. Allocates
//! host memory for the duplicate checks in proportion to the batch (segments and rows written),
//! not to the state buffer or the pool (this is a host utility, never called by the GPU API).
[[nodiscard]] status validate_append_metadata(const append_metadata& m, int ratio, std::int64_t state_slot_count,
                                              std::int64_t pool_rows, append_metadata_report* report = nullptr);

}  // namespace dsv4kv
