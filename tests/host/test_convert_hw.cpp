// SPDX-License-Identifier: Apache-2.0
// numerics/convert_hw.cuh: the portable pair conversions compute exactly the function of the
// hardware instructions cvt.rn.satfinite.e2m1x2.f32 (sm_100a family) and
// cvt.rn.satfinite.e4m3x2.f32 (sm_89+), so sm_90a and sm_100a builds produce the same bytes.
//
// The argument:
// 1. cuda_fp4.h's __nv_cvt_float2_to_fp4x2(x, __NV_E2M1, cudaRoundNearest) and cuda_fp8.h's
//    __nv_cvt_float2_to_fp8x2(x, __NV_SATFINITE, __NV_E4M3) are each ONE documented function with
//    two implementations: on a device pass where the instruction exists their body is exactly
//    `cvt.rn.satfinite.e2m1x2.f32 d, x.y, x.x` / `cvt.rn.satfinite.e4m3x2.f32 d, x.y, x.x` (the
//    same operand order convert_hw.cuh uses), elsewhere - and on the host, as here - an exact
//    software emulation (float -> double -> round to nearest even, saturate). NVIDIA ships them as
//    the same function, so the emulation is the reference semantics of the instruction.
// 2. This test shows the host pass of e2m1x2_encode / e4m3x2_encode (the portable path, which is
//    also what every device pass without the instruction compiles) equals that emulation, pair by
//    pair, including which element lands in the low nibble / byte: on every float16 value, every
//    grid point, tie and saturation boundary with neighbours in several binades, all specials
//    (±0, ±Inf, NaNs, denormals, ±FLT_MAX), and 2^22 random bit patterns of every exponent.
//    (numerics/e2m1.hpp and e4m3.hpp are separately proven elementwise against the same oracle.)
// 3. Subnormal float inputs: even if an instruction flushed them to zero, the result would not
//    change: every |x| < 2^-126 rounds to a signed zero in E2M1 (min 0.5) and E4M3 (min 2^-9),
//    and flushing keeps the sign.
// 4. tests/gpu/test_convert_hw.cpp then runs the instruction itself against the portable path on
//    the device for all 2^32 float bit patterns (E4M3 on Hopper and Blackwell, E2M1 on Blackwell).
#include <catch2/catch.hpp>
#include <cuda_fp4.h>
#include <cuda_fp8.h>

#include <cstdio>
#include <vector>

#include "dsv4kv/numerics/convert_hw.cuh"
#include "float_corpus.hpp"

namespace {

using namespace dsv4kv;
using namespace dsv4kv::test;

// Inputs of the pair tests: float16 values, grid points and ties of both formats with neighbours,
// specials, random bit patterns.
std::vector<float> pair_corpus() {
  std::vector<float> v = all_half_values();
  const std::vector<float> e2m1_points = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f,
                                          2.0f, 2.5f,  3.0f, 3.5f,  4.0f, 5.0f,  6.0f, 7.0f};
  for (float x : around(e2m1_points, {1.0f, 0.5f, 2.0f, 0.25f})) v.push_back(x);
  std::vector<float> e4m3_points;
  for (int c = 0; c < 0x7F; ++c) {
    const float a = e4m3_decode(static_cast<std::uint8_t>(c));
    const float b = c + 1 < 0x7F ? e4m3_decode(static_cast<std::uint8_t>(c + 1)) : 480.0f;
    e4m3_points.push_back(a);
    e4m3_points.push_back(0.5f * (a + b));
  }
  for (float x : around(e4m3_points)) v.push_back(x);
  for (float x : special_values()) v.push_back(x);
  for (float x : random_bit_patterns(std::size_t{1} << 22, 0xC0FFEEu)) v.push_back(x);
  return v;
}

// Pairs (x[i], x[j]) with j a fixed permutation of i, so each element meets many partners and
// both halves see every value.
template <class Ours, class Cuda>
std::size_t pair_mismatches(const char* what, const std::vector<float>& x, Ours ours, Cuda cuda) {
  std::size_t bad = 0;
  const std::size_t n = x.size();
  for (std::size_t i = 0; i < n; ++i) {
    const float lo = x[i], hi = x[(i * 7919u + 13u) % n];
    const unsigned a = ours(lo, hi), b = cuda(lo, hi);
    if (a != b && ++bad <= 5) std::printf("%s mismatch lo=%a hi=%a ours=%04x cuda=%04x\n", what, lo, hi, a, b);
  }
  return bad;
}

}  // namespace

TEST_CASE("convert_hw: portable e2m1x2_encode equals cuda_fp4.h __nv_cvt_float2_to_fp4x2", "[numerics][convert_hw]") {
  const std::vector<float> x = pair_corpus();
  const auto ours = [](float lo, float hi) { return static_cast<unsigned>(e2m1x2_encode(lo, hi)); };
  const auto cuda = [](float lo, float hi) {
    return static_cast<unsigned>(__nv_cvt_float2_to_fp4x2(make_float2(lo, hi), __NV_E2M1, cudaRoundNearest));
  };
  REQUIRE(pair_mismatches("e2m1x2", x, ours, cuda) == 0);
  // Element 2k (lo) in the low nibble: 0.5 -> code 1, 6 -> code 7.
  CHECK(e2m1x2_encode(0.5f, 6.0f) == 0x71);
  CHECK(e2m1x2_encode(-6.0f, 0.5f) == 0x1F);
}

TEST_CASE("convert_hw: portable e4m3x2_encode equals cuda_fp8.h __nv_cvt_float2_to_fp8x2", "[numerics][convert_hw]") {
  const std::vector<float> x = pair_corpus();
  const auto ours = [](float lo, float hi) { return static_cast<unsigned>(e4m3x2_encode(lo, hi)); };
  const auto cuda = [](float lo, float hi) {
    return static_cast<unsigned>(__nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3));
  };
  REQUIRE(pair_mismatches("e4m3x2", x, ours, cuda) == 0);
  // Element 2k (lo) in the low byte: 1.0 -> 0x38, 448 -> 0x7E.
  CHECK(e4m3x2_encode(1.0f, 448.0f) == 0x7E38);
  CHECK(e4m3x2_encode(-448.0f, 1.0f) == 0x38FE);
}

TEST_CASE("convert_hw: the portable pair functions are the elementwise recipes", "[numerics][convert_hw]") {
  for (float lo : special_values()) {
    for (float hi : {0.3f, -7.0f, 1e-30f, 500.0f}) {
      CHECK(e2m1x2_encode(lo, hi) == e2m1_pack(e2m1_encode(lo), e2m1_encode(hi)));
      CHECK(e4m3x2_encode(lo, hi) == (e4m3_encode(lo) | (e4m3_encode(hi) << 8)));
    }
  }
  // This host pass must be the portable branch.
  STATIC_REQUIRE(DSV4KV_HW_E2M1X2 == 0);
  STATIC_REQUIRE(DSV4KV_HW_E4M3X2 == 0);
}
