// SPDX-License-Identifier: Apache-2.0
// Host API of compress (include/dsv4kv/compress.hpp): validation, the (m, d) dispatch switch, and
// the launches of compress_kernel (include/dsv4kv/kernels/compress.cuh).
#include <cstdint>

#include "compress_common.cuh"
#include "dsv4kv/compress.hpp"
#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/kernels/compress.cuh"
#include "stages.hpp"

namespace dsv4kv::detail {

template <class IN, class BIAS>
status check_compress_prefill(const compress_params<IN, BIAS>& p, std::int64_t rows, std::int64_t d) {
  DSV4KV_RETURN_IF_ERROR(check_compress_inputs(p, d));
  const std::int64_t n = compressed_row_count(p.kv.rows, p.ratio);
  if (rows != n) return status::invalid_argument;
  for (const byte_range& r : compress_inputs(p, n, d)) {  // every input array exists (kv, gate: check_view)
    if (!addressable(r.data, r.bytes)) return status::invalid_argument;
  }
  if (p.rope.rope_dim != 0 && p.positions == nullptr) {
    if (p.start_position < 0) return status::invalid_argument;
    // The last row's position start + (n - 1) * m < max_pos, without overflow.
    if (n > 0 && (p.start_position >= p.rope.max_pos || n - 1 > (p.rope.max_pos - 1 - p.start_position) / p.ratio)) {
      return status::invalid_argument;
    }
  }
  if (p.rope.rope_dim != 0 && !is_aligned(p.positions, 4)) return status::misaligned;
  if (!prefill_grid_fits(p.ratio, d, n)) return status::invalid_argument;
  return status::ok;
}

template <class IN, class BIAS>
status check_compress(const compress_params<IN, BIAS>& p, tensor_view<float> out) {
  DSV4KV_RETURN_IF_ERROR(check_view(out));
  DSV4KV_RETURN_IF_ERROR(check_compress_prefill(p, out.rows, out.cols));
  if (!is_aligned(out.data, 16) || out.row_stride % vec_elems != 0) return status::misaligned;
  if (overlaps_any(range_of(out), compress_inputs(p, out.rows, out.cols))) return status::aliasing;
  return status::ok;
}

template <class IN, class BIAS>
status launch_compress(const compress_params<IN, BIAS>& p, tensor_view<float> out, cudaStream_t stream) {
  using InT = device_element_t<IN>;
  using BiasT = device_element_t<BIAS>;
  if (out.rows == 0) return status::ok;
  compress_kernel_params<InT, BiasT> k;
  k.tokens = {reinterpret_cast<const InT*>(p.kv.data), p.kv.row_stride, reinterpret_cast<const InT*>(p.gate.data),
              p.gate.row_stride};
  k.row = compress_row_params_of<BiasT>(p);
  k.start_position = p.start_position;
  k.positions = p.positions;
  k.out = out.data;
  k.out_stride = out.row_stride;
  k.rows = out.rows;
  return dispatch_compress_shape(p.ratio, out.cols, [&](auto m, auto d) {
    using L = compress_layout<decltype(m)::value, decltype(d)::value, compress_work::prefill, sizeof(InT)>;
    return launch_compress_layout<L>(compress_kernel<decltype(m)::value, decltype(d)::value, InT, BiasT>,
                                     prefill_units<L>(out.rows), false, stream, k);
  });
}

#define DSV4KV_INSTANTIATE_COMPRESS_STAGES(IN, BIAS)                                                           \
  template status check_compress_prefill<IN, BIAS>(const compress_params<IN, BIAS>&, std::int64_t, std::int64_t); \
  template status check_compress<IN, BIAS>(const compress_params<IN, BIAS>&, tensor_view<float>);          \
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

template <class IN, class BIAS>
status can_implement_compress(const compress_params<IN, BIAS>& p, tensor_view<float> out) noexcept {
  return detail::check_compress(p, out);
}

template status compress<float, float>(const compress_params<float, float>&, tensor_view<float>, cudaStream_t);
template status compress<float, std::uint16_t>(const compress_params<float, std::uint16_t>&, tensor_view<float>,
                                               cudaStream_t);
template status compress<std::uint16_t, float>(const compress_params<std::uint16_t, float>&, tensor_view<float>,
                                               cudaStream_t);
template status compress<std::uint16_t, std::uint16_t>(const compress_params<std::uint16_t, std::uint16_t>&,
                                                       tensor_view<float>, cudaStream_t);
#define DSV4KV_INSTANTIATE_CAN_IMPLEMENT_COMPRESS(IN, BIAS) \
  template status can_implement_compress<IN, BIAS>(const compress_params<IN, BIAS>&, tensor_view<float>) noexcept;
DSV4KV_INSTANTIATE_CAN_IMPLEMENT_COMPRESS(float, float)
DSV4KV_INSTANTIATE_CAN_IMPLEMENT_COMPRESS(float, std::uint16_t)
DSV4KV_INSTANTIATE_CAN_IMPLEMENT_COMPRESS(std::uint16_t, float)
DSV4KV_INSTANTIATE_CAN_IMPLEMENT_COMPRESS(std::uint16_t, std::uint16_t)
#undef DSV4KV_INSTANTIATE_CAN_IMPLEMENT_COMPRESS

}  // namespace dsv4kv
