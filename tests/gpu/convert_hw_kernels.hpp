// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test-only launcher: numerics/convert_hw.cuh's pair conversions against the portable recipes on
// the device, for every float bit pattern.
#include <cstdint>
#include <vector>

namespace dsv4kv::test {

struct convert_hw_sweep {
  bool hw_e2m1x2 = false;  // the device pass used cvt.rn.satfinite.e2m1x2.f32
  bool hw_e4m3x2 = false;  // the device pass used cvt.rn.satfinite.e4m3x2.f32
  std::uint64_t e2m1_mismatches = 0, e4m3_mismatches = 0;          // all pairs
  std::uint64_t e2m1_nan_mismatches = 0, e4m3_nan_mismatches = 0;  // of those, pairs holding a NaN
  std::vector<std::uint32_t> e2m1_examples, e4m3_examples;  // low-element bit patterns of the first few
};

// Runs e2m1x2_encode / e4m3x2_encode on pairs (x, y) for all 2^32 bit patterns x, y = x * odd
// constant (a bijection, so the high element also sees every pattern), against
// e2m1_pack(e2m1_encode(x), e2m1_encode(y)) and e4m3_encode(x) | e4m3_encode(y) << 8.
convert_hw_sweep run_convert_hw_sweep();

}  // namespace dsv4kv::test
