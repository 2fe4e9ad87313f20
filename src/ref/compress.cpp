// SPDX-License-Identifier: Apache-2.0
// Host reference of SPEC §3 compress. Written to be read next to the spec, not to be fast.
#include "dsv4kv/ref/compress.hpp"

#include <cstdint>
#include <utility>

#include "compress_row.hpp"
#include "dsv4kv/detail/view_checks.hpp"

namespace dsv4kv::ref {

template <class Out>
status compress(tensor_view<const float> kv, tensor_view<const float> gate, const float* position_bias,
                int ratio, tensor_view<Out> out) {
  if (ratio < 1) return status::invalid_argument;
  const std::int64_t d = out.cols;
  const std::int64_t width = compress_input_width(ratio, d);
  const std::int64_t tokens = kv.rows;
  const std::int64_t n = compressed_row_count(tokens, ratio);
  DSV4KV_RETURN_IF_ERROR(detail::check_view(kv, tokens, width));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(gate, tokens, width));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(out, n, d));

  // Each row through the code the append reference shares (src/ref/compress_row.hpp).
  const auto token = [&](std::int64_t t) { return std::make_pair(kv.row(t), gate.row(t)); };
  detail::ref_compress_row_scratch scratch;
  for (std::int64_t i = 0; i < n; ++i) detail::ref_compress_row(token, i, ratio, d, position_bias, out.row(i), scratch);
  return status::ok;
}

template status compress<float>(tensor_view<const float>, tensor_view<const float>, const float*, int,
                                tensor_view<float>);
template status compress<double>(tensor_view<const float>, tensor_view<const float>, const float*, int,
                                 tensor_view<double>);

}  // namespace dsv4kv::ref
