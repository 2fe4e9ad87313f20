// SPDX-License-Identifier: Apache-2.0
// Host API of FP8-E4M3 quantization (include/dsv4kv/quantize_fp8.hpp): validation and the
// two-kernel chain row_amax_kernel -> fp8_quantize_kernel on the caller's stream.
#include <cstdint>

#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/kernels/quantize_fp8.cuh"
#include "dsv4kv/kernels/row_amax.cuh"
#include "dsv4kv/quantize_fp8.hpp"
#include "stages.hpp"

namespace dsv4kv {
namespace detail {

status check_fp8_output(fp8_scale_mode mode, const fp8_rows& out) {
  if (mode != fp8_scale_mode::fp32 && mode != fp8_scale_mode::pow2) return status::invalid_argument;
  DSV4KV_RETURN_IF_ERROR(check_storage(out));  // rows, d >= 0; every array addressable
  if (out.d == 0 || out.d % 16 != 0) return status::unsupported_shape;
  if (out.rows > 0 && (out.codes == nullptr || out.scales == nullptr)) return status::null_pointer;
  if (!is_aligned(out.codes, 4) || !is_aligned(out.scales, 4)) return status::misaligned;
  const auto outputs = fp8_ranges(out);
  if (!pairwise_disjoint({outputs[0], outputs[1]})) return status::aliasing;
  return status::ok;
}

status check_quantize_fp8(tensor_view<const float> x, fp8_scale_mode mode, const fp8_rows& out, const float* row_amax) {
  DSV4KV_RETURN_IF_ERROR(check_view(x));
  DSV4KV_RETURN_IF_ERROR(check_fp8_output(mode, out));
  if (x.rows != out.rows || x.cols != out.d) return status::invalid_argument;
  if (out.rows > 0 && row_amax == nullptr) return status::null_pointer;
  if (!is_aligned(x.data, 16) || x.row_stride % vec_elems != 0 || !is_aligned(row_amax, 4)) return status::misaligned;
  const auto outputs = fp8_ranges(out);
  const byte_range scratch{row_amax, out.rows * static_cast<std::int64_t>(sizeof(float))};
  if (!addressable(scratch.data, scratch.bytes)) return status::invalid_argument;
  if (!pairwise_disjoint({range_of(x), outputs[0], outputs[1], scratch})) return status::aliasing;
  return status::ok;
}

status launch_quantize_fp8(tensor_view<const float> x, fp8_scale_mode mode, const fp8_rows& out, float* row_amax,
                           cudaStream_t stream) {
  if (out.rows == 0) return status::ok;
  const unsigned ctas = static_cast<unsigned>((out.rows + quantize_threads / 32 - 1) / (quantize_threads / 32));
  row_amax_params k1;
  k1.x = x.data;
  k1.x_stride = x.row_stride;
  k1.rows = out.rows;
  k1.d = out.d;
  k1.row_amax = row_amax;
  k1.decode_scale = out.scales;
  row_amax_kernel<quantize_threads><<<ctas, quantize_threads, 0, stream>>>(k1, fp8_decode_scale{mode});
  DSV4KV_RETURN_IF_ERROR(last_launch_status());
  fp8_quantize_params k2;
  k2.x = x.data;
  k2.x_stride = x.row_stride;
  k2.rows = out.rows;
  k2.d = out.d;
  k2.mode = mode;
  k2.row_amax = row_amax;
  k2.codes = out.codes;
  fp8_quantize_kernel<quantize_threads><<<ctas, quantize_threads, 0, stream>>>(k2);
  return last_launch_status();
}

}  // namespace detail

status quantize_fp8(tensor_view<const float> x, fp8_scale_mode mode, fp8_rows out, float* row_amax,
                    cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(detail::check_quantize_fp8(x, mode, out, row_amax));
  return detail::launch_quantize_fp8(x, mode, out, row_amax, stream);
}

status can_implement_quantize_fp8(tensor_view<const float> x, fp8_scale_mode mode, fp8_rows out,
                                  const float* row_amax) noexcept {
  return detail::check_quantize_fp8(x, mode, out, row_amax);
}

}  // namespace dsv4kv
