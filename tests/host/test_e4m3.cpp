// SPDX-License-Identifier: Apache-2.0
// numerics/e4m3.hpp against the independent oracle: cuda_fp8.h host conversions.
#include <catch2/catch.hpp>
#include <cuda_fp8.h>

#include <cmath>
#include <cstdio>

#include "dsv4kv/numerics/e4m3.hpp"
#include "float_corpus.hpp"

namespace {

using namespace dsv4kv;
using namespace dsv4kv::test;

std::uint8_t cuda_e4m3(float x) {
  return static_cast<std::uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
}

std::size_t encode_mismatches(const std::vector<float>& xs) {
  std::size_t bad = 0;
  for (float x : xs) {
    const std::uint8_t ours = e4m3_encode(x), theirs = cuda_e4m3(x);
    if (ours != theirs && ++bad <= 5) std::printf("e4m3 mismatch x=%a ours=%02x cuda=%02x\n", x, ours, theirs);
  }
  return bad;
}

// Every finite E4M3 value and every midpoint between neighbours (ties), positive side.
std::vector<float> grid_and_midpoints() {
  std::vector<float> v;
  for (int c = 0; c < 0x7F; ++c) {
    v.push_back(e4m3_decode(static_cast<std::uint8_t>(c)));
    const float next = c + 1 < 0x7F ? e4m3_decode(static_cast<std::uint8_t>(c + 1)) : 480.0f;
    v.push_back(0.5f * (v.back() + next));  // exact: both have few significant bits
  }
  return v;
}

}  // namespace

TEST_CASE("e4m3: encode equals cuda_fp8.h on every float16 value", "[numerics][e4m3]") {
  REQUIRE(encode_mismatches(all_half_values()) == 0);
}

TEST_CASE("e4m3: encode equals cuda_fp8.h on every grid value, tie and neighbour", "[numerics][e4m3]") {
  // Includes the subnormal grid (2^-9 steps), the normal/subnormal boundary 2^-6, 448, 464, 480.
  REQUIRE(encode_mismatches(around(grid_and_midpoints())) == 0);
  REQUIRE(encode_mismatches(around({0.0009765625f /*2^-10*/, 0.015625f /*2^-6*/, 448.0f, 464.0f, 480.0f})) == 0);
  REQUIRE(encode_mismatches(special_values()) == 0);
}

TEST_CASE("e4m3: encode equals cuda_fp8.h on 2^24 random floats of every exponent", "[numerics][e4m3]") {
  REQUIRE(encode_mismatches(random_bit_patterns(std::size_t{1} << 24, 0xE4E3u)) == 0);
  REQUIRE(encode_mismatches(random_log_uniform(std::size_t{1} << 20, 11u, -12.0f, 10.0f)) == 0);
}

TEST_CASE("e4m3: saturation, ties, subnormals, signed zero, NaN", "[numerics][e4m3]") {
  CHECK(e4m3_encode(448.0f) == 0x7E);
  CHECK(e4m3_encode(464.0f) == 0x7E);       // tie between 448 and the NaN slot: saturates
  CHECK(e4m3_encode(1e9f) == 0x7E);
  CHECK(e4m3_encode(INFINITY) == 0x7E);     // satfinite: Inf -> max finite
  CHECK(e4m3_encode(-INFINITY) == 0xFE);
  CHECK(e4m3_encode(NAN) == 0x7F);
  CHECK(e4m3_encode(-NAN) == 0x7F);   // canonical NaN, as CUDA
  CHECK(e4m3_encode(1.0f) == 0x38);
  CHECK(e4m3_encode(1.0625f) == 0x38);      // tie 1 | 1.125 -> even (1.0)
  CHECK(e4m3_encode(1.1875f) == 0x3A);      // tie 1.125 | 1.25 -> even (1.25)
  CHECK(e4m3_encode(0.001953125f) == 0x01); // 2^-9, smallest subnormal
  CHECK(e4m3_encode(0.0009765625f) == 0x00); // 2^-10 ties to 0
  CHECK(e4m3_encode(0.00146484375f) == 0x01); // 1.5 * 2^-10 rounds up
  CHECK(e4m3_encode(-1e-30f) == 0x80);       // underflow keeps the sign
  CHECK(e4m3_encode(0.015625f) == 0x08);     // 2^-6, smallest normal
}

TEST_CASE("e4m3: decode of all 256 codes equals cuda_fp8.h", "[numerics][e4m3]") {
  for (int c = 0; c < 256; ++c) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(c), __NV_E4M3);
    const float theirs = half_bits_to_float(h.x);
    const float ours = e4m3_decode(static_cast<std::uint8_t>(c));
    INFO("code " << c);
    if (std::isnan(theirs)) {
      CHECK(std::isnan(ours));
      CHECK((c & 0x7F) == 0x7F);
    } else {
      CHECK(to_bits(ours) == to_bits(theirs));
      CHECK(e4m3_encode(ours) == c);  // every finite code round-trips
    }
  }
}
