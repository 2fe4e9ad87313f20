// SPDX-License-Identifier: Apache-2.0
#pragma once
// Private to the host reference (src/ref/compress.cpp, src/ref/append.cpp): one compressed row of
// SPEC §3 in double, reading its tokens through an accessor, so a one-shot prefill and an append
// compute every row with the same code in the same order (identical doubles).
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "dsv4kv/compress_geometry.hpp"

namespace dsv4kv::detail {

// Reusable per-row buffers of ref_compress_row.
struct ref_compress_row_scratch {
  std::vector<double> value, score;
};

// Row of block i, channels j < d, into out[d]. token(t) -> {const float* kv_row, const float*
// gate_row}: the [c*d] FP32 projections of token t of the sequence. position_bias: [ratio, c*d] or
// nullptr. Softmax over the block's slots of (gate + bias), weighted sum of kv; for CSA the m
// previous-block slots (first-half channels) are absent for i = 0 (weight exactly 0).
template <class TOKEN, class Out>
void ref_compress_row(const TOKEN& token, std::int64_t i, int ratio, std::int64_t d, const float* position_bias, Out* out,
                  ref_compress_row_scratch& scratch) {
  const bool overlap = compress_overlaps(ratio);
  const std::int64_t width = compress_input_width(ratio, d);
  const auto bias = [&](std::int64_t slot, std::int64_t col) -> double {
    return position_bias ? static_cast<double>(position_bias[slot * width + col]) : 0.0;
  };
  std::vector<double>& value = scratch.value;
  std::vector<double>& score = scratch.score;
  for (std::int64_t j = 0; j < d; ++j) {
    value.clear();
    score.clear();
    if (overlap && i > 0) {  // previous block, first-half channels
      for (int u = 0; u < ratio; ++u) {
        const auto row = token((i - 1) * ratio + u);
        value.push_back(row.first[j]);
        score.push_back(static_cast<double>(row.second[j]) + bias(u, j));
      }
    }
    const std::int64_t col = overlap ? d + j : j;  // current block: second half for CSA
    for (int u = 0; u < ratio; ++u) {
      const auto row = token(i * ratio + u);
      value.push_back(row.first[col]);
      score.push_back(static_cast<double>(row.second[col]) + bias(u, col));
    }
    double zmax = -std::numeric_limits<double>::infinity();
    for (double z : score) zmax = std::fmax(zmax, z);
    double sum = 0.0, acc = 0.0;
    for (std::size_t s = 0; s < score.size(); ++s) {
      const double w = std::exp(score[s] - zmax);
      sum += w;
      acc += w * value[s];
    }
    out[j] = static_cast<Out>(acc / sum);
  }
}

}  // namespace dsv4kv::detail
