// SPDX-License-Identifier: Apache-2.0
// Host API of the standalone Walsh-Hadamard stage (include/dsv4kv/hadamard.hpp): validation, the
// d dispatch switch and the launch of hadamard_kernel (include/dsv4kv/kernels/hadamard.cuh).
#include <cstdint>
#include <type_traits>

#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/hadamard.hpp"
#include "dsv4kv/kernels/hadamard.cuh"
#include "dsv4kv/kernels/vector_io.cuh"

namespace dsv4kv {
namespace {

// The one dispatch switch of the Hadamard stage: runtime d -> f(d) as a compile-time constant.
template <class F>
status dispatch_hadamard_width(std::int64_t d, F&& f) {
  if (d == 128) return f(std::integral_constant<int, 128>{});
  if (d == 512) return f(std::integral_constant<int, 512>{});
  return status::unsupported_shape;
}

// The validation of hadamard_rotate(): status::ok exactly when it launches (or has no rows).
status check_hadamard_rotate(tensor_view<float> rows) {
  DSV4KV_RETURN_IF_ERROR(detail::check_view(rows));
  DSV4KV_RETURN_IF_ERROR(dispatch_hadamard_width(rows.cols, [](auto) { return status::ok; }));
  if (!detail::is_aligned(rows.data, 16) || rows.row_stride % detail::vec_elems != 0) return status::misaligned;
  return status::ok;
}

}  // namespace

status can_implement_hadamard_rotate(tensor_view<float> rows) noexcept { return check_hadamard_rotate(rows); }

status hadamard_rotate(tensor_view<float> rows, cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(check_hadamard_rotate(rows));
  if (rows.rows == 0) return status::ok;
  hadamard_kernel_params k;
  k.rows = rows.data;
  k.row_stride = rows.row_stride;
  k.rows_count = rows.rows;
  return dispatch_hadamard_width(rows.cols, [&](auto d) {
    constexpr int HEAD_DIM = decltype(d)::value;
    constexpr int per_cta = hadamard_rows_per_cta<HEAD_DIM>;
    hadamard_kernel<HEAD_DIM><<<static_cast<unsigned>((rows.rows + per_cta - 1) / per_cta), hadamard_threads, 0,
                                stream>>>(k);
    return last_launch_status();
  });
}

}  // namespace dsv4kv
