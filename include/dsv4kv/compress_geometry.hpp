// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Geometry of token-block compression (SPEC §2-3): ratio m, overlap, input width, row count.

#include <cstdint>

#include "dsv4kv/config.hpp"

namespace dsv4kv {

//! Ratio of the CSA streams (4-token blocks, overlapping with the previous block).
inline constexpr int csa_ratio = 4;
//! Ratio of the HCA stream (128-token blocks, no overlap).
inline constexpr int hca_ratio = 128;

//! SPEC §3: o = (m == 4). CSA blocks also weigh the previous block's tokens.
DSV4KV_HOST_DEVICE constexpr bool compress_overlaps(int ratio) { return ratio == csa_ratio; }
//! c = 1 + o: projection columns per output channel.
DSV4KV_HOST_DEVICE constexpr int compress_coefficient(int ratio) { return compress_overlaps(ratio) ? 2 : 1; }
//! Width of kv_proj / gate_proj / position_bias rows: c * d.
DSV4KV_HOST_DEVICE constexpr std::int64_t compress_input_width(int ratio, std::int64_t d) {
  return compress_coefficient(ratio) * d;
}
//! Softmax slots per output channel: 2m for CSA, m for HCA.
DSV4KV_HOST_DEVICE constexpr int compress_slots(int ratio) { return compress_coefficient(ratio) * ratio; }
//! Rows a prefill of `tokens` tokens from position 0 emits: floor(T / m) (0 for T < m).
DSV4KV_HOST_DEVICE constexpr std::int64_t compressed_row_count(std::int64_t tokens, int ratio) {
  return tokens / ratio;
}

}  // namespace dsv4kv
