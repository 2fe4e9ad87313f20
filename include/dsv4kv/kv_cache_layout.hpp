// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Memory layout of one attention layer's compressed KV cache (the seed's KVCache): main KV rows as
//! NVFP4 (d = 512) and, for a CSA layer, its indexer keys as FP8-E4M3 (d = 128), in ONE allocation
//! the engine owns. Plain C++ (constexpr), no CUDA needed: an engine sizes its pools on the host.
//!
//! The allocation (layout.total_bytes bytes, base aligned to kv_cache_alignment):
//!   main_codes          [capacity, main_d/2]   E2M1 pairs
//!   main_block_scales   [capacity, main_d/16]  E4M3, one per 16 elements
//!   main_global_scales  [capacity]             FP32 decode scale g
//!   indexer_codes       [capacity, indexer_d]  E4M3        (absent: indexer_d == 0, an HCA layer)
//!   indexer_scales      [capacity]             FP32 decode scale s
//! in this order, each array starting at a multiple of kv_cache_alignment bytes from the base.
//!
//! Bytes per row against BF16 (kv_cache_bytes_per_row), exactly:
//!   main KV,      d = 512: 256 + 32 + 4 = 292 bytes vs 1024 -> 1024/292 = 256/73 = 3.5068x (3.51x)
//!   indexer keys, d = 128: 128 + 4      = 132 bytes vs  256 ->  256/132 =  64/33 = 1.9394x (1.94x)
//!   a CSA layer (both):                   424 bytes vs 1280 -> 1280/424 = 160/53 = 3.0189x (3.02x)
//! (the seed's "3.5x" and "1.9x" are the first two, truncated). The allocation adds at most
//! kv_cache_alignment - 1 bytes of padding per array, independent of the capacity.

#include <cstdint>

#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/status.hpp"

namespace dsv4kv {

//! Main KV width of DeepSeek-V4 (CSA and HCA layers), stored as NVFP4.
inline constexpr std::int64_t kv_cache_main_dim = 512;
//! Indexer key width of a DeepSeek-V4 CSA layer, stored as FP8-E4M3.
inline constexpr std::int64_t kv_cache_indexer_dim = 128;
//! Alignment (bytes) of the base and of every array: cudaMalloc's guarantee, a multiple of the
//! 16-byte vector width of every kernel that reads or writes the arrays (write path, dequant).
inline constexpr std::int64_t kv_cache_alignment = 256;
//! Largest capacity in rows: top-k indices are int32 and must reach every row.
inline constexpr std::int64_t kv_cache_max_capacity = 2147483647;
//! Largest row width the layout accepts (keeps every byte count far from int64 overflow).
inline constexpr std::int64_t kv_cache_max_dim = 65536;

//! What one layer's cache holds.
struct kv_cache_shape {
  std::int64_t capacity = 0;                      // rows of each stream, in [0, kv_cache_max_capacity]
  std::int64_t main_d = kv_cache_main_dim;        // NVFP4 row width: a positive multiple of 16
  std::int64_t indexer_d = kv_cache_indexer_dim;  // FP8 row width: a positive multiple of 16, or 0: none
};

//! A CSA layer: main KV (512, NVFP4) and indexer keys (128, FP8), `capacity` rows each.
constexpr kv_cache_shape csa_layer_shape(std::int64_t capacity) {
  return {capacity, kv_cache_main_dim, kv_cache_indexer_dim};
}
//! An HCA layer: main KV (512, NVFP4) only.
constexpr kv_cache_shape hca_layer_shape(std::int64_t capacity) { return {capacity, kv_cache_main_dim, 0}; }

//! ok, or invalid_argument when a field is out of the range kv_cache_shape documents.
[[nodiscard]] constexpr status check_kv_cache_shape(const kv_cache_shape& s) noexcept {
  if (s.capacity < 0 || s.capacity > kv_cache_max_capacity) return status::invalid_argument;
  if (!nvfp4_supports_width(s.main_d) || s.main_d > kv_cache_max_dim) return status::invalid_argument;
  if (s.indexer_d != 0 && (s.indexer_d < 0 || s.indexer_d % 16 != 0 || s.indexer_d > kv_cache_max_dim)) {
    return status::invalid_argument;
  }
  return status::ok;
}

//! Stored and BF16 bytes of one row of each stream (no padding): the memory accounting.
struct kv_cache_row_bytes {
  std::int64_t main = 0;          // NVFP4: d/2 + d/16 + 4 (292 for d = 512)
  std::int64_t main_bf16 = 0;     // the same row as BF16: 2d (1024)
  std::int64_t indexer = 0;       // FP8: d + 4 (132 for d = 128); 0 without an indexer
  std::int64_t indexer_bf16 = 0;  // 2d (256); 0 without an indexer
  constexpr std::int64_t total() const { return main + indexer; }
  constexpr std::int64_t total_bf16() const { return main_bf16 + indexer_bf16; }
};

//! Bytes per row of each stream of `s` (s must pass check_kv_cache_shape).
constexpr kv_cache_row_bytes kv_cache_bytes_per_row(const kv_cache_shape& s) {
  const std::int64_t bf16 = 2;
  return {nvfp4_bytes_per_row(s.main_d), bf16 * s.main_d, s.indexer_d > 0 ? fp8_bytes_per_row(s.indexer_d) : 0,
          bf16 * s.indexer_d};
}

//! How many times smaller than BF16: bf16_bytes / stored_bytes (0 when stored_bytes is 0).
constexpr double compression_ratio(std::int64_t bf16_bytes, std::int64_t stored_bytes) {
  return stored_bytes > 0 ? static_cast<double>(bf16_bytes) / static_cast<double>(stored_bytes) : 0.0;
}

static_assert(kv_cache_bytes_per_row(csa_layer_shape(1)).main == 292);
static_assert(kv_cache_bytes_per_row(csa_layer_shape(1)).main_bf16 == 1024);
static_assert(kv_cache_bytes_per_row(csa_layer_shape(1)).indexer == 132);
static_assert(kv_cache_bytes_per_row(csa_layer_shape(1)).indexer_bf16 == 256);
static_assert(kv_cache_bytes_per_row(hca_layer_shape(1)).total() == 292);

//! One array of the allocation: [offset, offset + bytes) from the base.
struct kv_cache_part {
  std::int64_t offset = 0;
  std::int64_t bytes = 0;
};

//! Where each array of a cache of `shape` lives, and how many bytes to allocate.
struct kv_cache_layout {
  kv_cache_shape shape{};
  kv_cache_part main_codes{};          // [capacity, main_d/2]
  kv_cache_part main_block_scales{};   // [capacity, main_d/16]
  kv_cache_part main_global_scales{};  // [capacity] FP32
  kv_cache_part indexer_codes{};       // [capacity, indexer_d]; 0 bytes without an indexer
  kv_cache_part indexer_scales{};      // [capacity] FP32;       0 bytes without an indexer
  std::int64_t total_bytes = 0;        // bytes to allocate, a multiple of kv_cache_alignment
};

namespace detail {
constexpr std::int64_t round_up_to(std::int64_t x, std::int64_t a) { return (x + a - 1) / a * a; }
}  // namespace detail

//! Computes the layout of `shape` into `out`. invalid_argument (out unchanged) when the shape
//! fails check_kv_cache_shape.
[[nodiscard]] constexpr status make_kv_cache_layout(const kv_cache_shape& shape, kv_cache_layout& out) noexcept {
  DSV4KV_RETURN_IF_ERROR(check_kv_cache_shape(shape));
  kv_cache_layout l{};
  l.shape = shape;
  std::int64_t at = 0;  // next free byte, always a multiple of kv_cache_alignment
  const auto place = [&at](std::int64_t bytes) {
    const kv_cache_part p{at, bytes};
    at = detail::round_up_to(at + bytes, kv_cache_alignment);
    return p;
  };
  const nvfp4_buffer_sizes main = nvfp4_buffer_bytes(shape.capacity, shape.main_d);
  const fp8_buffer_sizes indexer = fp8_buffer_bytes(shape.indexer_d > 0 ? shape.capacity : 0, shape.indexer_d);
  l.main_codes = place(main.codes);
  l.main_block_scales = place(main.block_scales);
  l.main_global_scales = place(main.global_scales);
  l.indexer_codes = place(indexer.codes);
  l.indexer_scales = place(indexer.scales);
  l.total_bytes = at;
  out = l;
  return status::ok;
}

//! True when a and b describe the same layout.
constexpr bool same_layout(const kv_cache_layout& a, const kv_cache_layout& b) {
  const auto same = [](const kv_cache_part& x, const kv_cache_part& y) { return x.offset == y.offset && x.bytes == y.bytes; };
  return a.shape.capacity == b.shape.capacity && a.shape.main_d == b.shape.main_d &&
         a.shape.indexer_d == b.shape.indexer_d && same(a.main_codes, b.main_codes) &&
         same(a.main_block_scales, b.main_block_scales) && same(a.main_global_scales, b.main_global_scales) &&
         same(a.indexer_codes, b.indexer_codes) && same(a.indexer_scales, b.indexer_scales) &&
         a.total_bytes == b.total_bytes;
}

//! The row views of a layout, `capacity` rows each.
struct kv_cache_views {
  nvfp4_rows main{};    // [capacity, main_d]
  fp8_rows indexer{};   // [capacity, indexer_d]; d == 0 and null pointers without an indexer
};

//! The arrays of `layout` inside the allocation at `base` (host or device memory; no access is
//! made). Arrays of 0 bytes get null pointers.
[[nodiscard]] inline kv_cache_views kv_cache_views_at(const kv_cache_layout& layout, void* base) noexcept {
  auto* const b = static_cast<std::uint8_t*>(base);
  const auto at = [b](const kv_cache_part& p) { return p.bytes > 0 && b != nullptr ? b + p.offset : nullptr; };
  kv_cache_views v;
  v.main = {at(layout.main_codes), at(layout.main_block_scales), reinterpret_cast<float*>(at(layout.main_global_scales)),
            layout.shape.capacity, layout.shape.main_d};
  if (layout.shape.indexer_d > 0) {
    v.indexer = {at(layout.indexer_codes), reinterpret_cast<float*>(at(layout.indexer_scales)), layout.shape.capacity,
                 layout.shape.indexer_d};
  }
  return v;
}

}  // namespace dsv4kv
