// SPDX-License-Identifier: Apache-2.0
// Host API of the standalone RoPE stage (include/dsv4kv/rope.hpp): validation and launch of
// rope_kernel (include/dsv4kv/kernels/rope.cuh).
#include <cstdint>

#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/kernels/rope.cuh"
#include "dsv4kv/kernels/vector_io.cuh"
#include "dsv4kv/rope.hpp"
#include "stages.hpp"

namespace dsv4kv {
namespace {

// The validation of rope(): status::ok exactly when rope() launches (or has no rows to rotate).
status check_rope(tensor_view<float> rows, const rope_params& p) {
  DSV4KV_RETURN_IF_ERROR(detail::check_view(rows));
  const rope_table_view& t = p.table;
  if (t.rope_dim <= 0 || t.rope_dim % detail::vec_elems != 0 || t.rope_dim > rows.cols) return status::unsupported_shape;
  if (t.max_pos < 0 || p.ratio < 1) return status::invalid_argument;
  const std::int64_t table_row_bytes = (t.rope_dim / 2) * static_cast<std::int64_t>(sizeof(float));
  if (!detail::fits_array(t.max_pos, table_row_bytes)) return status::invalid_argument;
  if (t.cos == nullptr || t.sin == nullptr) return status::null_pointer;
  if (p.positions == nullptr) {
    if (p.start_position < 0) return status::invalid_argument;
    // Last row's position start + (rows - 1) * ratio < max_pos, without overflow.
    if (rows.rows > 0 &&
        (p.start_position >= t.max_pos || rows.rows - 1 > (t.max_pos - 1 - p.start_position) / p.ratio)) {
      return status::invalid_argument;
    }
  }
  const std::int64_t table_bytes = t.max_pos * table_row_bytes;
  const std::int64_t position_bytes = p.positions ? rows.rows * static_cast<std::int64_t>(sizeof(std::int32_t)) : 0;
  if (!detail::addressable(t.cos, table_bytes) || !detail::addressable(t.sin, table_bytes) ||
      !detail::addressable(p.positions, position_bytes)) {
    return status::invalid_argument;
  }
  // The rotated channels [d - rope_dim, d) are read as float4: d % 4 == 0 keeps them 16-byte aligned.
  if (!detail::is_aligned(rows.data, 16) || rows.row_stride % detail::vec_elems != 0 ||
      rows.cols % detail::vec_elems != 0 || !detail::is_aligned(t.cos, 8) || !detail::is_aligned(t.sin, 8) ||
      !detail::is_aligned(p.positions, 4)) {
    return status::misaligned;
  }
  if (detail::overlaps_any(detail::range_of(rows), {{t.cos, table_bytes}, {t.sin, table_bytes}, {p.positions, position_bytes}})) {
    return status::aliasing;
  }
  return status::ok;
}

}  // namespace

status can_implement_rope(tensor_view<float> rows, const rope_params& p) noexcept { return check_rope(rows, p); }

status rope(tensor_view<float> rows, const rope_params& p, cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(check_rope(rows, p));
  const rope_table_view& t = p.table;
  if (rows.rows == 0) return status::ok;

  rope_kernel_params k;
  k.rows = rows.data;
  k.row_stride = rows.row_stride;
  k.rows_count = rows.rows;
  k.d = rows.cols;
  k.table = t;
  k.start_position = p.start_position;
  k.ratio = p.ratio;
  k.positions = p.positions;
  constexpr int threads = 256;
  const std::int64_t work = rows.rows * (t.rope_dim / detail::vec_elems);
  rope_kernel<threads><<<static_cast<unsigned>((work + threads - 1) / threads), threads, 0, stream>>>(k);
  return last_launch_status();
}

}  // namespace dsv4kv
