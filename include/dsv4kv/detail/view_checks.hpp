// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Argument checks shared by the host reference and the host API (validation before any launch).

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::detail {

//! A view is well formed when its extents are non-negative, its stride covers a row, and its
//! pointer is non-null whenever it holds elements.
template <class T>
[[nodiscard]] constexpr status check_view(const tensor_view<T>& v) noexcept {
  if (v.rows < 0 || v.cols < 0 || v.row_stride < v.cols) return status::invalid_argument;
  if (v.rows > 0 && v.cols > 0 && v.data == nullptr) return status::null_pointer;
  return status::ok;
}

//! check_view() plus the exact extents [rows, cols].
template <class T>
[[nodiscard]] constexpr status check_view(const tensor_view<T>& v, std::int64_t rows, std::int64_t cols) noexcept {
  DSV4KV_RETURN_IF_ERROR(check_view(v));
  return (v.rows == rows && v.cols == cols) ? status::ok : status::invalid_argument;
}

}  // namespace dsv4kv::detail

namespace dsv4kv::detail {

//! True when `p` is a multiple of `bytes` (a power of two); null counts as aligned.
[[nodiscard]] inline bool is_aligned(const void* p, std::size_t bytes) noexcept {
  return (reinterpret_cast<std::uintptr_t>(p) & (bytes - 1)) == 0;
}

//! True when the byte ranges [a, a + a_bytes) and [b, b + b_bytes) share a byte.
//! Empty ranges never overlap.
[[nodiscard]] inline bool ranges_overlap(const void* a, std::int64_t a_bytes, const void* b,
                                         std::int64_t b_bytes) noexcept {
  if (a_bytes <= 0 || b_bytes <= 0 || a == nullptr || b == nullptr) return false;
  const auto a0 = reinterpret_cast<std::uintptr_t>(a), b0 = reinterpret_cast<std::uintptr_t>(b);
  return a0 < b0 + static_cast<std::uintptr_t>(b_bytes) && b0 < a0 + static_cast<std::uintptr_t>(a_bytes);
}

//! Bytes a view spans from its first to one past its last element.
template <class T>
[[nodiscard]] constexpr std::int64_t extent_bytes(const tensor_view<T>& v) noexcept {
  return v.extent_elements() * static_cast<std::int64_t>(sizeof(T));
}

//! Bytes [data, data + bytes) an argument reads or writes (empty when bytes <= 0 or data null).
struct byte_range {
  const void* data = nullptr;
  std::int64_t bytes = 0;
};

//! The bytes a view spans.
template <class T>
[[nodiscard]] byte_range range_of(const tensor_view<T>& v) noexcept {
  return {v.data, extent_bytes(v)};
}

//! True when `r` shares a byte with any range of `others` (any iterable of byte_range).
template <class Ranges>
[[nodiscard]] bool overlaps_any(byte_range r, const Ranges& others) noexcept {
  for (const byte_range& o : others) {
    if (ranges_overlap(r.data, r.bytes, o.data, o.bytes)) return true;
  }
  return false;
}
[[nodiscard]] inline bool overlaps_any(byte_range r, std::initializer_list<byte_range> others) noexcept {
  return overlaps_any<std::initializer_list<byte_range>>(r, others);
}

//! True when no two of `ranges` share a byte.
[[nodiscard]] inline bool pairwise_disjoint(std::initializer_list<byte_range> ranges) noexcept {
  for (auto a = ranges.begin(); a != ranges.end(); ++a) {
    for (auto b = a + 1; b != ranges.end(); ++b) {
      if (ranges_overlap(a->data, a->bytes, b->data, b->bytes)) return false;
    }
  }
  return true;
}

//! The three arrays of NVFP4 rows: codes, block scales, global scales.
template <class B, class F>
[[nodiscard]] std::array<byte_range, 3> nvfp4_ranges(const basic_nvfp4_rows<B, F>& r) noexcept {
  const nvfp4_buffer_sizes s = r.sizes();
  return {{{r.codes, s.codes}, {r.block_scales, s.block_scales}, {r.global_scales, s.global_scales}}};
}

//! The two arrays of FP8 rows: codes, scales.
template <class B, class F>
[[nodiscard]] std::array<byte_range, 2> fp8_ranges(const basic_fp8_rows<B, F>& r) noexcept {
  const fp8_buffer_sizes s = r.sizes();
  return {{{r.codes, s.codes}, {r.scales, s.scales}}};
}

}  // namespace dsv4kv::detail
