// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host reference of the append model (SPEC §7, append_model.hpp): a batch of segments continues
//! per-sequence states and emits the finished rows through the slot mapping, each row computed in
//! double by the same code as ref::compress / ref::write_path_rows, from the same FP32 slot
//! values, so appending in any chunking gives exactly (bit for bit) the rows of a one-shot prefill.

#include <cstdint>

#include "dsv4kv/append_model.hpp"
#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::ref {

//! The model of one stream (host memory): as write_path_problem without the projections.
struct append_problem {
  int ratio = 4;                          // 4 (CSA) or 128 (HCA)
  std::int64_t d = 0;                     // output width
  const float* position_bias = nullptr;   // [ratio, c*d] or nullptr
  const float* norm_weight = nullptr;     // [d] or nullptr (no RMSNorm)
  double eps = 1e-6;
  rope_table_view rope;                   // rope_dim 0 skips RoPE; the row of block i rotates at i*ratio
  bool hadamard = false;                  // indexer keys: rotate by H_d * d^-1/2 last
};

//! Appends one batch (all host memory).
//! kv, gate: [N, c*d] FP32, the segments' new tokens concatenated (BF16 projections: their exact
//!           FP32 values). m: the metadata (m.total_tokens == N), checked by
//!           validate_append_metadata first: its status on failure, nothing changed.
//! state:    [slots, append_state_bytes(ratio, d)] bytes in the GPU layout (append_model.hpp);
//!           a segment at position p > 0 whose state does not continue at p (header) ->
//!           invalid_argument, nothing changed. Updated like the GPU's (same bytes).
//! rows:     [pool rows, d]: each emitted row with pool slot >= 0 is written there; the others
//!           keep their values. written: [pool rows] or nullptr; set to 1 where a row was written.
//! RoPE positions must lie inside the table (else invalid_argument, possibly after some rows).
template <class Out>
[[nodiscard]] status append(const append_problem& p, tensor_view<const float> kv, tensor_view<const float> gate,
                            const append_metadata& m, span<std::uint8_t> state, tensor_view<Out> rows,
                            std::uint8_t* written = nullptr);

}  // namespace dsv4kv::ref
