// SPDX-License-Identifier: Apache-2.0
#pragma once
//! tensor_view<T>: a 2-D row-major view with a row stride. Trivially copyable, usable in kernels.

#include <cstdint>
#include <type_traits>

#include "dsv4kv/config.hpp"
#include "dsv4kv/views/span.hpp"

namespace dsv4kv {

//! Rows of `cols` elements; row r starts at `data + r * row_stride` (row_stride >= cols, in
//! elements, not bytes). Rows may be a slice of a larger buffer.
template <class T>
struct tensor_view {
  T* data = nullptr;            // [rows, row_stride]
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;  // elements between consecutive rows

  DSV4KV_HOST_DEVICE T* row(std::int64_t r) const { return data + r * row_stride; }
  DSV4KV_HOST_DEVICE T& operator()(std::int64_t r, std::int64_t c) const { return data[r * row_stride + c]; }
  DSV4KV_HOST_DEVICE span<T> row_span(std::int64_t r) const { return {row(r), cols}; }
  DSV4KV_HOST_DEVICE bool empty() const { return rows == 0 || cols == 0; }
  DSV4KV_HOST_DEVICE bool is_contiguous() const { return row_stride == cols; }
  //! Elements covered from the first to one past the last element (0 when empty).
  DSV4KV_HOST_DEVICE std::int64_t extent_elements() const {
    return empty() ? 0 : (rows - 1) * row_stride + cols;
  }

  //! The same elements, read-only.
  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  DSV4KV_HOST_DEVICE operator tensor_view<const U>() const { return {data, rows, cols, row_stride}; }
};

//! A contiguous [rows, cols] view.
template <class T>
DSV4KV_HOST_DEVICE tensor_view<T> make_tensor_view(T* data, std::int64_t rows, std::int64_t cols) {
  return {data, rows, cols, cols};
}

static_assert(std::is_trivially_copyable_v<tensor_view<float>>);

}  // namespace dsv4kv
