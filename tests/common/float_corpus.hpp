// SPDX-License-Identifier: Apache-2.0
#pragma once
// Float inputs for the numerics tests: every float16 value, grid ties and their neighbours,
// special values, and random bit patterns covering every exponent.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace dsv4kv::test {

inline float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline std::uint32_t to_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// IEEE half bits -> float (exact), independent of any CUDA header.
inline float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  const std::uint32_t man = h & 0x3FFu;
  if (exp == 0x1Fu) return from_bits(sign | 0x7F800000u | (man << 13));
  if (exp == 0u) {
    const float m = std::ldexp(static_cast<float>(man), -24);
    return from_bits(sign | to_bits(m));
  }
  return from_bits(sign | ((exp + 112u) << 23) | (man << 13));
}

// Every float16 value converted to float (65536 values, NaNs and infinities included).
inline std::vector<float> all_half_values() {
  std::vector<float> v;
  v.reserve(65536);
  for (std::uint32_t h = 0; h < 65536; ++h) v.push_back(half_bits_to_float(static_cast<std::uint16_t>(h)));
  return v;
}

// Each point, its float neighbours, both signs, scaled by `scales`: ties and boundaries of a grid.
inline std::vector<float> around(const std::vector<float>& points, const std::vector<float>& scales = {1.0f}) {
  std::vector<float> v;
  for (float s : scales) {
    for (float p : points) {
      const float x = p * s;
      for (float y : {x, std::nextafter(x, 0.0f), std::nextafter(x, std::numeric_limits<float>::infinity())}) {
        v.push_back(y);
        v.push_back(-y);
      }
    }
  }
  return v;
}

// ±0, ±Inf, NaNs of both signs and payloads, denormals, FLT_MAX, FLT_MIN.
inline std::vector<float> special_values() {
  return {0.0f, -0.0f, from_bits(0x7F800000u), from_bits(0xFF800000u), from_bits(0x7FC00000u),
          from_bits(0xFFC00000u), from_bits(0x7F800001u), from_bits(0xFFBFFFFFu), from_bits(1u),
          from_bits(0x807FFFFFu), std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
          std::numeric_limits<float>::min(), -std::numeric_limits<float>::min()};
}

// `n` uniformly random 32-bit patterns (every exponent equally likely) from `seed`.
inline std::vector<float> random_bit_patterns(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = from_bits(rng());
  return v;
}

// `n` random values of moderate magnitude: sign * 2^U(-lo, hi) * (1 + U(0,1)).
inline std::vector<float> random_log_uniform(std::size_t n, std::uint32_t seed, float lo = -20.0f, float hi = 12.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> e(lo, hi), m(1.0f, 2.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = ((rng() & 1u) ? -1.0f : 1.0f) * std::exp2(std::floor(e(rng))) * m(rng);
  return v;
}

}  // namespace dsv4kv::test
