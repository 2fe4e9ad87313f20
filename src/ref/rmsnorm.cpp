// SPDX-License-Identifier: Apache-2.0
#include "dsv4kv/ref/rmsnorm.hpp"

#include <cmath>

#include "dsv4kv/detail/view_checks.hpp"

namespace dsv4kv::ref {

template <class T>
status rmsnorm(tensor_view<T> rows, const float* weight, double eps) {
  DSV4KV_RETURN_IF_ERROR(detail::check_view(rows));
  if (!(eps >= 0.0)) return status::invalid_argument;
  if (rows.empty()) return status::ok;
  if (weight == nullptr) return status::null_pointer;
  for (std::int64_t r = 0; r < rows.rows; ++r) {
    double sum_sq = 0.0;
    for (std::int64_t j = 0; j < rows.cols; ++j) sum_sq += static_cast<double>(rows(r, j)) * rows(r, j);
    const double inv_rms = 1.0 / std::sqrt(sum_sq / static_cast<double>(rows.cols) + eps);
    for (std::int64_t j = 0; j < rows.cols; ++j) {
      rows(r, j) = static_cast<T>(static_cast<double>(rows(r, j)) * inv_rms * weight[j]);
    }
  }
  return status::ok;
}

template status rmsnorm<float>(tensor_view<float>, const float*, double);
template status rmsnorm<double>(tensor_view<double>, const float*, double);

}  // namespace dsv4kv::ref
