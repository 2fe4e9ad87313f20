// SPDX-License-Identifier: Apache-2.0
#include "dsv4kv/ref/hadamard.hpp"

#include <cmath>
#include <vector>

#include "dsv4kv/detail/view_checks.hpp"

namespace dsv4kv::ref {

template <class T>
status hadamard_rotate(tensor_view<T> rows) {
  DSV4KV_RETURN_IF_ERROR(detail::check_view(rows));
  const std::int64_t d = rows.cols;
  if (d < 1 || (d & (d - 1)) != 0) return status::unsupported_shape;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> y(static_cast<std::size_t>(d));
  for (std::int64_t r = 0; r < rows.rows; ++r) {
    for (std::int64_t j = 0; j < d; ++j) y[j] = rows(r, j);
    // Fast Walsh-Hadamard transform: butterflies of growing span give the Sylvester ordering.
    for (std::int64_t h = 1; h < d; h *= 2) {
      for (std::int64_t i = 0; i < d; i += 2 * h) {
        for (std::int64_t j = i; j < i + h; ++j) {
          const double a = y[j], b = y[j + h];
          y[j] = a + b;
          y[j + h] = a - b;
        }
      }
    }
    for (std::int64_t j = 0; j < d; ++j) rows(r, j) = static_cast<T>(y[j] * scale);
  }
  return status::ok;
}

template status hadamard_rotate<float>(tensor_view<float>);
template status hadamard_rotate<double>(tensor_view<double>);

}  // namespace dsv4kv::ref
