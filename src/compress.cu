// SPDX-License-Identifier: Apache-2.0
// Host API of compress (include/dsv4kv/compress.hpp): validation, the (m, d) dispatch switch, and
// the launches of compress_kernel (include/dsv4kv/kernels/compress.cuh).
#include <cuda_bf16.h>

#include <cfloat>
#include <cstdint>
#include <type_traits>

#include "dsv4kv/compress.hpp"
#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/kernels/compress.cuh"
#include "dsv4kv/kernels/vector_io.cuh"
#include "stages.hpp"

namespace dsv4kv::detail {
namespace {

// Host element type -> kernel element type (BF16 travels as its bits, std::uint16_t).
template <class T>
struct device_element {
  using type = T;
};
template <>
struct device_element<std::uint16_t> {
  using type = __nv_bfloat16;
};
template <class T>
using device_element_t = typename device_element<T>::type;

// The one dispatch switch of compress: runtime (m, d) -> f(m, d) as compile-time constants.
// Validation calls it with a no-op f, so "supported" means exactly "has a kernel".
template <class F>
status dispatch_compress_shape(int ratio, std::int64_t d, F&& f) {
  using std::integral_constant;
  if (ratio == csa_ratio && d == 128) return f(integral_constant<int, csa_ratio>{}, integral_constant<int, 128>{});
  if (ratio == csa_ratio && d == 512) return f(integral_constant<int, csa_ratio>{}, integral_constant<int, 512>{});
  if (ratio == hca_ratio && d == 128) return f(integral_constant<int, hca_ratio>{}, integral_constant<int, 128>{});
  if (ratio == hca_ratio && d == 512) return f(integral_constant<int, hca_ratio>{}, integral_constant<int, 512>{});
  return status::unsupported_shape;
}

template <class T>
bool vec_aligned(const tensor_view<const T>& v) {
  return is_aligned(v.data, vec4_bytes<device_element_t<T>>) && v.row_stride % vec_elems == 0;
}

}  // namespace

template <class IN, class BIAS>
status check_compress(const compress_params<IN, BIAS>& p, tensor_view<float> out) {
  static_assert(std::is_same_v<IN, float> || std::is_same_v<IN, std::uint16_t>, "IN is float or BF16 bits");
  static_assert(std::is_same_v<BIAS, float> || std::is_same_v<BIAS, std::uint16_t>, "BIAS is float or BF16 bits");
  DSV4KV_RETURN_IF_ERROR(check_view(p.kv));
  DSV4KV_RETURN_IF_ERROR(check_view(p.gate));
  DSV4KV_RETURN_IF_ERROR(check_view(out));
  const std::int64_t d = out.cols;
  DSV4KV_RETURN_IF_ERROR(dispatch_compress_shape(p.ratio, d, [](auto, auto) { return status::ok; }));
  const std::int64_t width = compress_input_width(p.ratio, d);
  const std::int64_t tokens = p.kv.rows;
  const std::int64_t n = compressed_row_count(tokens, p.ratio);
  if (p.kv.cols != width || p.gate.rows != tokens || p.gate.cols != width || out.rows != n) {
    return status::invalid_argument;
  }
  if (!(p.eps >= 0.0f && p.eps <= FLT_MAX)) return status::invalid_argument;  // also rejects NaN
  const bool rope = p.rope.rope_dim != 0;
  if (rope) {
    if (p.rope.rope_dim < 0 || p.rope.rope_dim % vec_elems != 0 || p.rope.rope_dim > d) return status::unsupported_shape;
    if (p.rope.max_pos < 0) return status::invalid_argument;
    if (p.rope.cos == nullptr || p.rope.sin == nullptr) return status::null_pointer;
    if (p.positions == nullptr) {
      if (p.start_position < 0) return status::invalid_argument;
      if (n > 0 && p.start_position + (n - 1) * p.ratio >= p.rope.max_pos) return status::invalid_argument;
    }
  }
  if (!vec_aligned(p.kv) || !vec_aligned(p.gate) ||
      !is_aligned(p.position_bias, vec4_bytes<device_element_t<BIAS>>) || !is_aligned(p.norm_weight, 16) ||
      !is_aligned(out.data, 16) || out.row_stride % vec_elems != 0) {
    return status::misaligned;
  }
  if (rope && (!is_aligned(p.rope.cos, 8) || !is_aligned(p.rope.sin, 8) || !is_aligned(p.positions, 4))) {
    return status::misaligned;
  }
  if (overlaps_any(range_of(out), compress_inputs(p, n, d))) return status::aliasing;
  return status::ok;
}

template <class IN, class BIAS>
status launch_compress(const compress_params<IN, BIAS>& p, tensor_view<float> out, cudaStream_t stream) {
  using InT = device_element_t<IN>;
  using BiasT = device_element_t<BIAS>;
  if (out.rows == 0) return status::ok;
  compress_kernel_params<InT, BiasT> k;
  k.kv = reinterpret_cast<const InT*>(p.kv.data);
  k.kv_stride = p.kv.row_stride;
  k.gate = reinterpret_cast<const InT*>(p.gate.data);
  k.gate_stride = p.gate.row_stride;
  k.position_bias = reinterpret_cast<const BiasT*>(p.position_bias);
  k.norm_weight = p.norm_weight;
  k.eps = p.eps;
  k.rope = p.rope;
  k.start_position = p.start_position;
  k.positions = p.positions;
  k.hadamard = p.hadamard;
  k.out = out.data;
  k.out_stride = out.row_stride;
  k.rows = out.rows;
  return dispatch_compress_shape(p.ratio, out.cols, [&](auto m, auto d) {
    using L = compress_layout<decltype(m)::value, decltype(d)::value>;
    const std::int64_t ctas = (out.rows + L::rows_per_cta - 1) / L::rows_per_cta;
    compress_kernel<decltype(m)::value, decltype(d)::value, InT, BiasT>
        <<<static_cast<unsigned>(ctas), L::threads, 0, stream>>>(k);
    return last_launch_status();
  });
}

#define DSV4KV_INSTANTIATE_COMPRESS_STAGES(IN, BIAS)                                                  \
  template status check_compress<IN, BIAS>(const compress_params<IN, BIAS>&, tensor_view<float>); \
  template status launch_compress<IN, BIAS>(const compress_params<IN, BIAS>&, tensor_view<float>, cudaStream_t);
DSV4KV_INSTANTIATE_COMPRESS_STAGES(float, float)
DSV4KV_INSTANTIATE_COMPRESS_STAGES(float, std::uint16_t)
DSV4KV_INSTANTIATE_COMPRESS_STAGES(std::uint16_t, float)
DSV4KV_INSTANTIATE_COMPRESS_STAGES(std::uint16_t, std::uint16_t)
#undef DSV4KV_INSTANTIATE_COMPRESS_STAGES

}  // namespace dsv4kv::detail

namespace dsv4kv {

template <class IN, class BIAS>
status compress(const compress_params<IN, BIAS>& p, tensor_view<float> out, cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(detail::check_compress(p, out));
  return detail::launch_compress(p, out, stream);
}

template status compress<float, float>(const compress_params<float, float>&, tensor_view<float>, cudaStream_t);
template status compress<float, std::uint16_t>(const compress_params<float, std::uint16_t>&, tensor_view<float>,
                                               cudaStream_t);
template status compress<std::uint16_t, float>(const compress_params<std::uint16_t, float>&, tensor_view<float>,
                                               cudaStream_t);
template status compress<std::uint16_t, std::uint16_t>(const compress_params<std::uint16_t, std::uint16_t>&,
                                                       tensor_view<float>, cudaStream_t);

}  // namespace dsv4kv
