// SPDX-License-Identifier: Apache-2.0
// Host reference of SPEC §6. Each step calls the same scalar recipe the kernels call.
#include "dsv4kv/ref/fp8_codec.hpp"

#include <algorithm>

#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/formats/fp8_encoding.hpp"
#include "dsv4kv/numerics/bf16.hpp"

namespace dsv4kv::ref {
namespace {

status check_rows(const const_fp8_rows& r) {
  if (r.rows < 0 || r.d < 0) return status::invalid_argument;
  if (r.rows > 0 && r.d > 0 && (r.codes == nullptr || r.scales == nullptr)) return status::null_pointer;
  return status::ok;
}

bool valid_mode(fp8_scale_mode m) { return m == fp8_scale_mode::fp32 || m == fp8_scale_mode::pow2; }

}  // namespace

void encode_fp8_row(span<const float> x, fp8_scale_mode mode, std::uint8_t* codes, float* scale) {
  row_amax amax;
  for (float v : x) amax.add(v);
  const fp8_row_scale s = fp8_row_scale_from_amax(amax, mode);
  *scale = s.decode;
  if (!amax.finite || amax.amax == 0.0f) {  // NaN scale or zero row: all codes 0
    std::fill(codes, codes + x.size, std::uint8_t{0});
    return;
  }
  for (std::int64_t k = 0; k < x.size; ++k) codes[k] = fp8_encode_element(x[k], s, mode);
}

status encode_fp8(tensor_view<const float> x, fp8_scale_mode mode, fp8_rows out) {
  if (!valid_mode(mode)) return status::invalid_argument;
  DSV4KV_RETURN_IF_ERROR(check_rows(out));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(x, out.rows, out.d));
  for (std::int64_t r = 0; r < x.rows; ++r) encode_fp8_row(x.row_span(r), mode, out.row_codes(r), out.scales + r);
  return status::ok;
}

status decode_fp8(const_fp8_rows in, tensor_view<float> out) {
  DSV4KV_RETURN_IF_ERROR(check_rows(in));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(out, in.rows, in.d));
  for (std::int64_t r = 0; r < in.rows; ++r) {
    for (std::int64_t k = 0; k < in.d; ++k) out(r, k) = fp8_decode_element(in.row_codes(r)[k], in.scales[r]);
  }
  return status::ok;
}

status decode_fp8_bf16(const_fp8_rows in, tensor_view<std::uint16_t> out) {
  DSV4KV_RETURN_IF_ERROR(check_rows(in));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(out, in.rows, in.d));
  for (std::int64_t r = 0; r < in.rows; ++r) {
    for (std::int64_t k = 0; k < in.d; ++k) {
      out(r, k) = bf16_encode(fp8_decode_element(in.row_codes(r)[k], in.scales[r]));
    }
  }
  return status::ok;
}

status decode_fp8_selected_bf16(const_fp8_rows in, span<const std::int32_t> indices, tensor_view<std::uint16_t> out) {
  DSV4KV_RETURN_IF_ERROR(check_rows(in));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(out, indices.size, in.d));
  if (indices.size > 0 && indices.data == nullptr) return status::null_pointer;
  for (std::int64_t i = 0; i < indices.size; ++i) {
    const std::int64_t r = indices[i];
    for (std::int64_t k = 0; k < in.d; ++k) {
      out(i, k) = (r < 0 || r >= in.rows) ? std::uint16_t{0}
                                          : bf16_encode(fp8_decode_element(in.row_codes(r)[k], in.scales[r]));
    }
  }
  return status::ok;
}

}  // namespace dsv4kv::ref
