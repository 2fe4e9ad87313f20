// SPDX-License-Identifier: Apache-2.0
#pragma once
//! FP8-E4M3 row storage (SPEC §6): views over codes and per-row scales, and the byte sizes.
//!
//! A row of d values is d bytes of E4M3FN codes plus one FP32 decode scale s (x' = float(q) * s).

#include <cstdint>
#include <type_traits>

#include "dsv4kv/config.hpp"

namespace dsv4kv {

//! How the per-row FP8 scale is chosen (SPEC §6).
enum class fp8_scale_mode : int {
  fp32 = 0,  //!< s = amax / 448 exactly as float; the row's largest value maps to ±448
  pow2 = 1,  //!< s = 2^ceil(log2(amax / 448)), a power of two (engine interop)
};

//! Bytes of E4M3 codes per row of width d.
DSV4KV_HOST_DEVICE constexpr std::int64_t fp8_code_bytes_per_row(std::int64_t d) { return d; }
//! All bytes of one stored row: codes + FP32 scale (132 for d = 128).
DSV4KV_HOST_DEVICE constexpr std::int64_t fp8_bytes_per_row(std::int64_t d) {
  return d + static_cast<std::int64_t>(sizeof(float));
}

static_assert(fp8_bytes_per_row(128) == 132);

//! Bytes of each array for `rows` rows of width d.
struct fp8_buffer_sizes {
  std::int64_t codes = 0;   // rows * d
  std::int64_t scales = 0;  // rows * 4
  DSV4KV_HOST_DEVICE constexpr std::int64_t total() const { return codes + scales; }
};

//! Byte sizes of the two FP8 arrays for [rows, d].
DSV4KV_HOST_DEVICE constexpr fp8_buffer_sizes fp8_buffer_bytes(std::int64_t rows, std::int64_t d) {
  return {rows * fp8_code_bytes_per_row(d), rows * static_cast<std::int64_t>(sizeof(float))};
}

//! A view of `rows` FP8 rows of width d. Use the aliases fp8_rows / const_fp8_rows.
template <class Byte, class Float>
struct basic_fp8_rows {
  Byte* codes = nullptr;    // [rows, d] E4M3FN
  Float* scales = nullptr;  // [rows]    FP32 decode scale s
  std::int64_t rows = 0;
  std::int64_t d = 0;

  DSV4KV_HOST_DEVICE Byte* row_codes(std::int64_t r) const { return codes + r * d; }
  DSV4KV_HOST_DEVICE constexpr fp8_buffer_sizes sizes() const { return fp8_buffer_bytes(rows, d); }

  //! The same rows, read-only.
  template <class B = Byte, class = std::enable_if_t<!std::is_const_v<B>>>
  DSV4KV_HOST_DEVICE operator basic_fp8_rows<const B, const Float>() const { return {codes, scales, rows, d}; }
};

using fp8_rows = basic_fp8_rows<std::uint8_t, float>;
using const_fp8_rows = basic_fp8_rows<const std::uint8_t, const float>;

static_assert(std::is_trivially_copyable_v<fp8_rows>);

}  // namespace dsv4kv
