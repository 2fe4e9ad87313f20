// SPDX-License-Identifier: Apache-2.0
// DeepSeek-V4 YaRN RoPE table (SPEC §2, §4), following DeepSeek's precompute_freqs_cis.
#include "dsv4kv/rope_table.hpp"

#include <algorithm>
#include <cmath>

namespace dsv4kv {
namespace {

constexpr double pi = 3.14159265358979323846;

// The dimension index (of rope_dim) at which a frequency completes `rotations` turns over the
// original context.
double correction_dim(double rotations, int rope_dim, double theta, double original_max_pos) {
  return rope_dim * std::log(original_max_pos / (rotations * 2.0 * pi)) / (2.0 * std::log(theta));
}

}  // namespace

std::vector<double> yarn_inv_freq(int rope_dim, const yarn_config& cfg) {
  const int half = rope_dim / 2;
  std::vector<double> inv_freq(static_cast<std::size_t>(std::max(half, 0)));
  for (int q = 0; q < half; ++q) inv_freq[q] = std::pow(cfg.theta, -2.0 * q / rope_dim);
  if (cfg.factor == 1.0 || half == 0) return inv_freq;
  // Ramp between the correction dims: channels below `low` keep their frequency (extrapolation),
  // channels above `high` are divided by `factor` (interpolation), linear in between.
  double low = std::floor(correction_dim(cfg.beta_fast, rope_dim, cfg.theta, cfg.original_max_pos));
  double high = std::ceil(correction_dim(cfg.beta_slow, rope_dim, cfg.theta, cfg.original_max_pos));
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(rope_dim - 1));
  if (low == high) high += 0.001;
  for (int q = 0; q < half; ++q) {
    const double ramp = std::clamp((q - low) / (high - low), 0.0, 1.0);
    const double smooth = 1.0 - ramp;  // 1: keep, 0: interpolate
    inv_freq[q] = inv_freq[q] / cfg.factor * (1.0 - smooth) + inv_freq[q] * smooth;
  }
  return inv_freq;
}

status make_yarn_rope_table(std::int64_t max_pos, int rope_dim, rope_table& out, const yarn_config& cfg) {
  if (rope_dim <= 0 || rope_dim % 2 != 0) return status::unsupported_shape;
  if (max_pos < 0 || !(cfg.theta > 1.0) || !(cfg.factor >= 1.0) || !(cfg.original_max_pos > 0.0) ||
      !(cfg.beta_fast > 0.0) || !(cfg.beta_slow > 0.0)) {
    return status::invalid_argument;
  }
  const std::vector<double> inv_freq = yarn_inv_freq(rope_dim, cfg);
  const int half = rope_dim / 2;
  out.max_pos = max_pos;
  out.rope_dim = rope_dim;
  out.cos.resize(static_cast<std::size_t>(max_pos * half));
  out.sin.resize(static_cast<std::size_t>(max_pos * half));
  for (std::int64_t p = 0; p < max_pos; ++p) {
    for (int q = 0; q < half; ++q) {
      const double angle = static_cast<double>(p) * inv_freq[q];
      out.cos[p * half + q] = static_cast<float>(std::cos(angle));
      out.sin[p * half + q] = static_cast<float>(std::sin(angle));
    }
  }
  return status::ok;
}

}  // namespace dsv4kv
