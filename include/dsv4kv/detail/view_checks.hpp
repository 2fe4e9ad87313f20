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

//! Largest number of bytes one array of a call may span: 2^50 (1 PiB), beyond any GPU's memory.
//! Validation rejects larger arrays with invalid_argument, so no size, extent or end address it
//! computes can overflow int64 or wrap the address space.
inline constexpr std::int64_t max_array_bytes = std::int64_t{1} << 50;

//! True when `count` elements of `elem_bytes` bytes each fit max_array_bytes (false if negative).
[[nodiscard]] constexpr bool fits_array(std::int64_t count, std::int64_t elem_bytes) noexcept {
  return count >= 0 && elem_bytes >= 0 && (elem_bytes == 0 || count <= max_array_bytes / elem_bytes);
}

//! True when [data, data + bytes) can exist: 0 <= bytes <= max_array_bytes and the end does not
//! wrap past the top of the address space.
[[nodiscard]] inline bool addressable(const void* data, std::int64_t bytes) noexcept {
  if (bytes < 0 || bytes > max_array_bytes) return false;
  return reinterpret_cast<std::uintptr_t>(data) <= UINTPTR_MAX - static_cast<std::uintptr_t>(bytes);
}

//! Elements of a view [rows, cols] with `row_stride` from its first to one past its last element,
//! or -1 when its bytes would exceed max_array_bytes. Requires rows, cols >= 0, row_stride >= cols.
template <class T>
[[nodiscard]] constexpr std::int64_t bounded_extent_elements(std::int64_t rows, std::int64_t cols,
                                                             std::int64_t row_stride) noexcept {
  if (rows == 0 || cols == 0) return 0;
  constexpr std::int64_t limit = max_array_bytes / static_cast<std::int64_t>(sizeof(T));
  if (cols > limit || rows - 1 > (limit - cols) / row_stride) return -1;
  return (rows - 1) * row_stride + cols;
}

//! A view is well formed when its extents are non-negative, its stride covers a row, its bytes fit
//! max_array_bytes without wrapping the address space (else invalid_argument), and its pointer is
//! non-null whenever it holds elements (else null_pointer).
template <class T>
[[nodiscard]] status check_view(const tensor_view<T>& v) noexcept {
  if (v.rows < 0 || v.cols < 0 || v.row_stride < v.cols) return status::invalid_argument;
  const std::int64_t extent = bounded_extent_elements<T>(v.rows, v.cols, v.row_stride);
  if (extent < 0) return status::invalid_argument;
  if (extent > 0 && v.data == nullptr) return status::null_pointer;
  if (!addressable(v.data, extent * static_cast<std::int64_t>(sizeof(T)))) return status::invalid_argument;
  return status::ok;
}

//! check_view() plus the exact extents [rows, cols].
template <class T>
[[nodiscard]] status check_view(const tensor_view<T>& v, std::int64_t rows, std::int64_t cols) noexcept {
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

//! The arrays of `rows` NVFP4 rows of width d can exist: rows, d >= 0 and each array addressable
//! (else invalid_argument). Width rules and null pointers are the caller's to check.
template <class B, class F>
[[nodiscard]] status check_storage(const basic_nvfp4_rows<B, F>& r) noexcept {
  if (r.rows < 0 || r.d < 0 || !fits_array(r.rows, nvfp4_code_bytes_per_row(r.d)) ||
      !fits_array(r.rows, static_cast<std::int64_t>(sizeof(float)))) {
    return status::invalid_argument;
  }
  for (const byte_range& a : nvfp4_ranges(r)) {
    if (!addressable(a.data, a.bytes)) return status::invalid_argument;
  }
  return status::ok;
}

//! The arrays of `rows` FP8 rows of width d can exist (see check_storage of NVFP4 rows).
template <class B, class F>
[[nodiscard]] status check_storage(const basic_fp8_rows<B, F>& r) noexcept {
  if (r.rows < 0 || r.d < 0 || !fits_array(r.rows, fp8_code_bytes_per_row(r.d)) ||
      !fits_array(r.rows, static_cast<std::int64_t>(sizeof(float)))) {
    return status::invalid_argument;
  }
  for (const byte_range& a : fp8_ranges(r)) {
    if (!addressable(a.data, a.bytes)) return status::invalid_argument;
  }
  return status::ok;
}

}  // namespace dsv4kv::detail
