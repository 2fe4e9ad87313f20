// SPDX-License-Identifier: Apache-2.0
// Host API of NVFP4 quantization (include/dsv4kv/quantize_nvfp4.hpp): validation and the
// two-kernel chain row_amax_kernel -> nvfp4_quantize_kernel on the caller's stream.
#include <cstdint>

#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/kernels/quantize_nvfp4.cuh"
#include "dsv4kv/kernels/row_amax.cuh"
#include "dsv4kv/quantize_nvfp4.hpp"
#include "stages.hpp"

namespace dsv4kv {
namespace detail {

status check_nvfp4_output(const nvfp4_rows& out) {
  DSV4KV_RETURN_IF_ERROR(check_storage(out));  // rows, d >= 0; every array addressable
  if (!nvfp4_supports_width(out.d)) return status::unsupported_shape;
  if (out.rows > 0 && (out.codes == nullptr || out.block_scales == nullptr || out.global_scales == nullptr)) {
    return status::null_pointer;
  }
  if (!is_aligned(out.codes, 2) || !is_aligned(out.global_scales, 4)) return status::misaligned;
  const auto outputs = nvfp4_ranges(out);
  if (!pairwise_disjoint({outputs[0], outputs[1], outputs[2]})) return status::aliasing;
  return status::ok;
}

status check_quantize_nvfp4(tensor_view<const float> x, const nvfp4_rows& out, const float* row_amax) {
  DSV4KV_RETURN_IF_ERROR(check_view(x));
  DSV4KV_RETURN_IF_ERROR(check_nvfp4_output(out));
  if (x.rows != out.rows || x.cols != out.d) return status::invalid_argument;
  if (out.rows > 0 && row_amax == nullptr) return status::null_pointer;
  if (!is_aligned(x.data, 16) || x.row_stride % vec_elems != 0 || !is_aligned(row_amax, 4)) return status::misaligned;
  const auto outputs = nvfp4_ranges(out);
  const byte_range scratch{row_amax, out.rows * static_cast<std::int64_t>(sizeof(float))};
  if (!addressable(scratch.data, scratch.bytes)) return status::invalid_argument;
  if (!pairwise_disjoint({range_of(x), outputs[0], outputs[1], outputs[2], scratch})) return status::aliasing;
  return status::ok;
}

status launch_quantize_nvfp4(tensor_view<const float> x, const nvfp4_rows& out, float* row_amax, cudaStream_t stream) {
  if (out.rows == 0) return status::ok;
  const unsigned ctas = static_cast<unsigned>((out.rows + quantize_threads / 32 - 1) / (quantize_threads / 32));
  row_amax_params k1;
  k1.x = x.data;
  k1.x_stride = x.row_stride;
  k1.rows = out.rows;
  k1.d = out.d;
  k1.row_amax = row_amax;
  k1.decode_scale = out.global_scales;
  row_amax_kernel<quantize_threads><<<ctas, quantize_threads, 0, stream>>>(k1, nvfp4_decode_scale{});
  DSV4KV_RETURN_IF_ERROR(last_launch_status());
  nvfp4_quantize_params k2;
  k2.x = x.data;
  k2.x_stride = x.row_stride;
  k2.rows = out.rows;
  k2.d = out.d;
  k2.row_amax = row_amax;
  k2.codes = out.codes;
  k2.block_scales = out.block_scales;
  nvfp4_quantize_kernel<quantize_threads><<<ctas, quantize_threads, 0, stream>>>(k2);
  return last_launch_status();
}

}  // namespace detail

status quantize_nvfp4(tensor_view<const float> x, nvfp4_rows out, float* row_amax, cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(detail::check_quantize_nvfp4(x, out, row_amax));
  return detail::launch_quantize_nvfp4(x, out, row_amax, stream);
}

status can_implement_quantize_nvfp4(tensor_view<const float> x, nvfp4_rows out, const float* row_amax) noexcept {
  return detail::check_quantize_nvfp4(x, out, row_amax);
}

}  // namespace dsv4kv
