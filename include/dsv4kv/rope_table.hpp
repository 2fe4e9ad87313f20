// SPDX-License-Identifier: Apache-2.0
#pragma once
//! RoPE cos/sin tables (SPEC §4): a view the kernels read, and the DeepSeek-V4 YaRN builder.

#include <cstdint>
#include <vector>

#include "dsv4kv/config.hpp"
#include "dsv4kv/status.hpp"

namespace dsv4kv {

//! FP32 cos and sin tables, each [max_pos, rope_dim/2] row-major: entry (p, q) belongs to the
//! angle p * inv_freq[q]. Host or device memory, owned by the caller.
struct rope_table_view {
  const float* cos = nullptr;  // [max_pos, rope_dim/2]
  const float* sin = nullptr;  // [max_pos, rope_dim/2]
  std::int64_t max_pos = 0;    // positions 0 .. max_pos-1 are valid
  int rope_dim = 0;            // rotated channels (even): the last rope_dim of each row
};

//! YaRN frequency scaling parameters. Defaults are DeepSeek-V4's compressed layers (SPEC §2).
struct yarn_config {
  double theta = 160000.0;              //!< RoPE base
  double factor = 16.0;                 //!< context extension factor (1 disables YaRN)
  double original_max_pos = 65536.0;    //!< pre-extension context length
  double beta_fast = 32.0;              //!< rotations at the high-frequency end of the ramp
  double beta_slow = 1.0;               //!< rotations at the low-frequency end of the ramp
};

//! A host-owned cos/sin table (what rope_table_view points into once copied to the device).
struct rope_table {
  std::vector<float> cos;  // [max_pos, rope_dim/2]
  std::vector<float> sin;  // [max_pos, rope_dim/2]
  std::int64_t max_pos = 0;
  int rope_dim = 0;

  //! A view of this table's host memory.
  [[nodiscard]] rope_table_view view() const { return {cos.data(), sin.data(), max_pos, rope_dim}; }
};

//! inv_freq[q] for q < rope_dim/2: theta^(-2q/rope_dim), blended towards inv_freq / factor by the
//! YaRN ramp between the correction dims of beta_fast and beta_slow (DeepSeek's formula), in double.
[[nodiscard]] std::vector<double> yarn_inv_freq(int rope_dim, const yarn_config& cfg = {});

//! Builds the cos/sin table for positions [0, max_pos): angle = p * inv_freq[q] in double, cos and
//! sin rounded to float, unit magnitude (no mscale). rope_dim must be even and > 0, max_pos >= 0.
[[nodiscard]] status make_yarn_rope_table(std::int64_t max_pos, int rope_dim, rope_table& out,
                                          const yarn_config& cfg = {});

}  // namespace dsv4kv
