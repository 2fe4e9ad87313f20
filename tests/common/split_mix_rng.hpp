// SPDX-License-Identifier: Apache-2.0
#pragma once
// Seeded random numbers for GPU tests and benchmarks: splitmix64 with the distributions the
// realistic-scale inputs use. Fast enough for the 65536-token cases (1.3e8 draws).
#include <cmath>
#include <cstdint>

namespace dsv4kv::test {

// splitmix64: seeded and fast (the 65536-token cases draw 1.3e8 values).
class split_mix_rng {
 public:
  explicit split_mix_rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // Approximately N(0, 1): the sum of four 16-bit uniforms (Irwin-Hall), centred, unit variance.
  float normal() {
    const std::uint64_t r = next();
    double s = 0.0;
    for (int k = 0; k < 4; ++k) s += static_cast<double>((r >> (16 * k)) & 0xFFFFu) * (1.0 / 65536.0);
    return static_cast<float>((s - 2.0) * 1.7320508075688772);
  }
  // lo * (hi/lo)^U: log-uniform in [lo, hi).
  float log_uniform(double lo, double hi) { return static_cast<float>(lo * std::pow(hi / lo, uniform())); }

 private:
  std::uint64_t s_;
};

}  // namespace dsv4kv::test
