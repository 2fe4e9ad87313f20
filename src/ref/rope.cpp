// SPDX-License-Identifier: Apache-2.0
#include "dsv4kv/ref/rope.hpp"

#include <cstdint>

#include "dsv4kv/detail/view_checks.hpp"

namespace dsv4kv::ref {
namespace {

status check_table(std::int64_t d, rope_table_view table) {
  if (table.rope_dim <= 0 || table.rope_dim % 2 != 0 || table.rope_dim > d) {
    return status::unsupported_shape;
  }
  if (table.max_pos < 0) return status::invalid_argument;
  if (table.max_pos > 0 && (table.cos == nullptr || table.sin == nullptr)) return status::null_pointer;
  return status::ok;
}

template <class T>
void rotate_row(T* x, std::int64_t d, std::int64_t pos, rope_table_view table) {
  const int half = table.rope_dim / 2;
  T* tail = x + (d - table.rope_dim);
  for (int q = 0; q < half; ++q) {
    const double c = table.cos[pos * half + q];
    const double s = table.sin[pos * half + q];
    const double a = tail[2 * q];
    const double b = tail[2 * q + 1];
    tail[2 * q] = static_cast<T>(a * c - b * s);
    tail[2 * q + 1] = static_cast<T>(a * s + b * c);
  }
}

}  // namespace

template <class T>
status rope(tensor_view<T> rows, span<const std::int32_t> positions, rope_table_view table) {
  DSV4KV_RETURN_IF_ERROR(detail::check_view(rows));
  DSV4KV_RETURN_IF_ERROR(check_table(rows.cols, table));
  if (positions.size != rows.rows) return status::invalid_argument;
  if (rows.rows > 0 && positions.data == nullptr) return status::null_pointer;
  for (std::int64_t r = 0; r < rows.rows; ++r) {
    if (positions[r] < 0 || positions[r] >= table.max_pos) return status::invalid_argument;
  }
  for (std::int64_t r = 0; r < rows.rows; ++r) rotate_row(rows.row(r), rows.cols, positions[r], table);
  return status::ok;
}

template <class T>
status rope_prefill(tensor_view<T> rows, std::int64_t start, int ratio, rope_table_view table) {
  DSV4KV_RETURN_IF_ERROR(detail::check_view(rows));
  DSV4KV_RETURN_IF_ERROR(check_table(rows.cols, table));
  if (ratio < 1 || start < 0) return status::invalid_argument;
  if (rows.rows > 0 && start + (rows.rows - 1) * ratio >= table.max_pos) return status::invalid_argument;
  for (std::int64_t r = 0; r < rows.rows; ++r) rotate_row(rows.row(r), rows.cols, start + r * ratio, table);
  return status::ok;
}

template status rope<float>(tensor_view<float>, span<const std::int32_t>, rope_table_view);
template status rope<double>(tensor_view<double>, span<const std::int32_t>, rope_table_view);
template status rope_prefill<float>(tensor_view<float>, std::int64_t, int, rope_table_view);
template status rope_prefill<double>(tensor_view<double>, std::int64_t, int, rope_table_view);

}  // namespace dsv4kv::ref
