// SPDX-License-Identifier: Apache-2.0
// Host reference of SPEC §3 compress. Written to be read next to the spec, not to be fast.
#include "dsv4kv/ref/compress.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

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

  const bool overlap = compress_overlaps(ratio);
  const auto bias = [&](std::int64_t slot, std::int64_t col) -> double {
    return position_bias ? static_cast<double>(position_bias[slot * width + col]) : 0.0;
  };

  // One softmax per (row, channel): slot values v[s] and scores z[s]; absent slots are skipped,
  // which is a score of -inf and a weight of exactly 0.
  std::vector<double> value, score;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < d; ++j) {
      value.clear();
      score.clear();
      if (overlap && i > 0) {  // previous block, first-half channels
        for (int u = 0; u < ratio; ++u) {
          const std::int64_t t = (i - 1) * ratio + u;
          value.push_back(kv(t, j));
          score.push_back(static_cast<double>(gate(t, j)) + bias(u, j));
        }
      }
      const std::int64_t col = overlap ? d + j : j;  // current block: second half for CSA
      for (int u = 0; u < ratio; ++u) {
        const std::int64_t t = i * ratio + u;
        value.push_back(kv(t, col));
        score.push_back(static_cast<double>(gate(t, col)) + bias(u, col));
      }
      double zmax = -std::numeric_limits<double>::infinity();
      for (double z : score) zmax = std::fmax(zmax, z);
      double sum = 0.0, acc = 0.0;
      for (std::size_t s = 0; s < score.size(); ++s) {
        const double w = std::exp(score[s] - zmax);
        sum += w;
        acc += w * value[s];
      }
      out(i, j) = static_cast<Out>(acc / sum);
    }
  }
  return status::ok;
}

template status compress<float>(tensor_view<const float>, tensor_view<const float>, const float*, int,
                                tensor_view<float>);
template status compress<double>(tensor_view<const float>, tensor_view<const float>, const float*, int,
                                 tensor_view<double>);

}  // namespace dsv4kv::ref
