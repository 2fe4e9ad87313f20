// SPDX-License-Identifier: Apache-2.0
#pragma once
// Private to the library's .cu files that launch kernels built on compress_row (src/compress.cu,
// src/append.cu): the one (m, d) dispatch switch of compress, host -> device element types, and
// the validation of the compress inputs every such call shares.
#include <cuda_bf16.h>

#include <cfloat>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <cuda_runtime.h>

#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/kernels/compress.cuh"
#include "dsv4kv/kernels/vector_io.cuh"
#include "dsv4kv/status.hpp"

namespace dsv4kv::detail {

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

// Largest 1-D grid (CTAs).
inline constexpr std::int64_t max_grid_ctas = 0x7FFFFFFF;

// Units (CTAs, or HCA clusters) of a prefill of `rows` rows in layout L (compress_kernel, the
// fused prefill): ceil(rows / rows_per_cta).
template <class L>
constexpr std::int64_t prefill_units(std::int64_t rows) {
  return (rows + L::rows_per_cta - 1) / L::rows_per_cta;
}

// True when a prefill of `rows` rows (prefill_units of the (ratio, d) layout) fits a 1-D grid.
// The shape must be supported.
inline bool prefill_grid_fits(int ratio, std::int64_t d, std::int64_t rows) {
  bool fits = false;
  (void)dispatch_compress_shape(ratio, d, [&](auto m, auto dd) {
    using L = compress_layout<decltype(m)::value, decltype(dd)::value>;
    fits = prefill_units<L>(rows) <= max_grid_ctas / L::cluster;
    return status::ok;
  });
  return fits;
}

// Launches kernel(args...) over `units` units of layout L: units * L::cluster CTAs of L::threads
// threads, as clusters of L::cluster CTAs when L::cluster > 1; with pdl, as a programmatic
// dependent launch (the kernel must call grid_dependency_wait before touching global memory,
// kernels/grid_dependency.cuh). Validation checks the grid first (prefill_grid_fits,
// append_grid_fits in src/append.cu).
template <class L, class... Params, class... Args>
status launch_compress_layout(void (*kernel)(Params...), std::int64_t units, bool pdl, cudaStream_t stream,
                              Args&&... args) {
  if (units == 0) return status::ok;
  if (units > max_grid_ctas / L::cluster) return status::invalid_argument;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(units * L::cluster));
  config.blockDim = dim3(L::threads);
  config.stream = stream;
  cudaLaunchAttribute attrs[2] = {};
  unsigned n = 0;
  if (L::cluster > 1) {
    attrs[n].id = cudaLaunchAttributeClusterDimension;
    attrs[n].val.clusterDim.x = L::cluster;
    attrs[n].val.clusterDim.y = 1;
    attrs[n].val.clusterDim.z = 1;
    ++n;
  }
  if (pdl) {
    attrs[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  config.attrs = attrs;
  config.numAttrs = n;
  const cudaError_t e = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
  if (e != cudaSuccess) (void)cudaGetLastError();  // not left for the caller's next check
  return status_from_cuda(e);
}

// True when a projection view allows 4-element vector loads.
template <class T>
bool vec_aligned(const tensor_view<const T>& v) {
  return is_aligned(v.data, vec4_bytes<device_element_t<T>>) && v.row_stride % vec_elems == 0;
}

// The compress_row arguments of a host parameter struct P (compress_params or append_params: the
// fields position_bias, norm_weight, eps, rope, hadamard).
template <class BiasT, class P>
compress_row_params<BiasT> compress_row_params_of(const P& p) {
  compress_row_params<BiasT> r;
  r.position_bias = reinterpret_cast<const BiasT*>(p.position_bias);
  r.norm_weight = p.norm_weight;
  r.eps = p.eps;
  r.rope = p.rope;
  r.hadamard = p.hadamard;
  return r;
}

// Checks of the compress inputs of a host parameter struct P (fields ratio, kv, gate,
// position_bias, norm_weight, eps, rope) for output rows of width d: views, the (m, d) kernel,
// widths, eps, the RoPE table, alignment. Positions, outputs and aliasing are the caller's.
template <class P>
status check_compress_inputs(const P& p, std::int64_t d) {
  using IN = std::remove_cv_t<std::remove_pointer_t<decltype(p.kv.data)>>;
  using BIAS = std::remove_cv_t<std::remove_pointer_t<decltype(p.position_bias)>>;
  static_assert(std::is_same_v<IN, float> || std::is_same_v<IN, std::uint16_t>, "IN is float or BF16 bits");
  static_assert(std::is_same_v<BIAS, float> || std::is_same_v<BIAS, std::uint16_t>, "BIAS is float or BF16 bits");
  DSV4KV_RETURN_IF_ERROR(check_view(p.kv));
  DSV4KV_RETURN_IF_ERROR(check_view(p.gate));
  DSV4KV_RETURN_IF_ERROR(dispatch_compress_shape(p.ratio, d, [](auto, auto) { return status::ok; }));
  const std::int64_t width = compress_input_width(p.ratio, d);
  if (p.kv.cols != width || p.gate.rows != p.kv.rows || p.gate.cols != width) return status::invalid_argument;
  if (!(p.eps >= 0.0f && p.eps <= FLT_MAX)) return status::invalid_argument;  // also rejects NaN
  if (p.rope.rope_dim != 0) {
    if (p.rope.rope_dim < 0 || p.rope.rope_dim % vec_elems != 0 || p.rope.rope_dim > d) return status::unsupported_shape;
    if (p.rope.max_pos < 0) return status::invalid_argument;
    if (!fits_array(p.rope.max_pos, (p.rope.rope_dim / 2) * static_cast<std::int64_t>(sizeof(float)))) {
      return status::invalid_argument;  // the table's bytes must fit max_array_bytes
    }
    if (p.rope.cos == nullptr || p.rope.sin == nullptr) return status::null_pointer;
    if (!is_aligned(p.rope.cos, 8) || !is_aligned(p.rope.sin, 8)) return status::misaligned;
  }
  if (!vec_aligned(p.kv) || !vec_aligned(p.gate) ||
      !is_aligned(p.position_bias, vec4_bytes<device_element_t<BIAS>>) || !is_aligned(p.norm_weight, 16)) {
    return status::misaligned;
  }
  return status::ok;
}

// Bytes of a RoPE table's cos (or sin) array; 0 without RoPE.
inline std::int64_t rope_table_bytes(const rope_table_view& t) {
  return t.rope_dim > 0 && t.max_pos > 0 ? t.max_pos * (t.rope_dim / 2) * static_cast<std::int64_t>(sizeof(float)) : 0;
}

}  // namespace dsv4kv::detail
