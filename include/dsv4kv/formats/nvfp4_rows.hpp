// SPDX-License-Identifier: Apache-2.0
#pragma once
//! NVFP4 row storage (SPEC §5): views over the three arrays and the byte sizes to allocate.
//!
//! A row of d values (d a multiple of 16) is d/2 bytes of packed E2M1 codes (element 2k in the
//! low nibble), d/16 bytes of E4M3 block scales (one per 16 elements) and one FP32 decode scale.

#include <cstdint>
#include <type_traits>

#include "dsv4kv/config.hpp"

namespace dsv4kv {

//! Elements that share one E4M3 block scale.
inline constexpr int nvfp4_block_size = 16;

//! Bytes of packed E2M1 codes per row of width d.
DSV4KV_HOST_DEVICE constexpr std::int64_t nvfp4_code_bytes_per_row(std::int64_t d) { return d / 2; }
//! Bytes of E4M3 block scales per row of width d.
DSV4KV_HOST_DEVICE constexpr std::int64_t nvfp4_scale_bytes_per_row(std::int64_t d) { return d / nvfp4_block_size; }
//! All bytes of one stored row: codes + block scales + FP32 global scale (292 for d = 512).
DSV4KV_HOST_DEVICE constexpr std::int64_t nvfp4_bytes_per_row(std::int64_t d) {
  return nvfp4_code_bytes_per_row(d) + nvfp4_scale_bytes_per_row(d) + static_cast<std::int64_t>(sizeof(float));
}
//! True when rows of width d can be stored as NVFP4.
DSV4KV_HOST_DEVICE constexpr bool nvfp4_supports_width(std::int64_t d) { return d > 0 && d % nvfp4_block_size == 0; }

static_assert(nvfp4_bytes_per_row(512) == 292 && nvfp4_bytes_per_row(128) == 76);

//! Bytes of each array for `rows` rows of width d (what an engine allocates).
struct nvfp4_buffer_sizes {
  std::int64_t codes = 0;          // rows * d/2
  std::int64_t block_scales = 0;   // rows * d/16
  std::int64_t global_scales = 0;  // rows * 4
  DSV4KV_HOST_DEVICE constexpr std::int64_t total() const { return codes + block_scales + global_scales; }
};

//! Byte sizes of the three NVFP4 arrays for [rows, d].
DSV4KV_HOST_DEVICE constexpr nvfp4_buffer_sizes nvfp4_buffer_bytes(std::int64_t rows, std::int64_t d) {
  return {rows * nvfp4_code_bytes_per_row(d), rows * nvfp4_scale_bytes_per_row(d),
          rows * static_cast<std::int64_t>(sizeof(float))};
}

//! A view of `rows` NVFP4 rows of width d in three dense arrays. Byte = uint8_t or const uint8_t,
//! Float = float or const float. Use the aliases nvfp4_rows / const_nvfp4_rows.
template <class Byte, class Float>
struct basic_nvfp4_rows {
  Byte* codes = nullptr;           // [rows, d/2]  E2M1 pairs, element 2k in the low nibble
  Byte* block_scales = nullptr;    // [rows, d/16] E4M3FN
  Float* global_scales = nullptr;  // [rows]       FP32 decode scale g
  std::int64_t rows = 0;
  std::int64_t d = 0;              // elements per row, a multiple of 16

  DSV4KV_HOST_DEVICE Byte* row_codes(std::int64_t r) const { return codes + r * (d / 2); }
  DSV4KV_HOST_DEVICE Byte* row_block_scales(std::int64_t r) const { return block_scales + r * (d / nvfp4_block_size); }
  DSV4KV_HOST_DEVICE constexpr nvfp4_buffer_sizes sizes() const { return nvfp4_buffer_bytes(rows, d); }

  //! The same rows, read-only.
  template <class B = Byte, class = std::enable_if_t<!std::is_const_v<B>>>
  DSV4KV_HOST_DEVICE operator basic_nvfp4_rows<const B, const Float>() const {
    return {codes, block_scales, global_scales, rows, d};
  }
};

using nvfp4_rows = basic_nvfp4_rows<std::uint8_t, float>;
using const_nvfp4_rows = basic_nvfp4_rows<const std::uint8_t, const float>;

static_assert(std::is_trivially_copyable_v<nvfp4_rows>);

}  // namespace dsv4kv
