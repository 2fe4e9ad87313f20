// SPDX-License-Identifier: Apache-2.0
// numerics/e2m1.hpp against the independent oracle: cuda_fp4.h host conversions.
#include <catch2/catch.hpp>
#include <cuda_fp4.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>

#include "dsv4kv/numerics/e2m1.hpp"
#include "float_corpus.hpp"

namespace {

using namespace dsv4kv;
using namespace dsv4kv::test;

std::uint8_t cuda_e2m1(float x) {
  return static_cast<std::uint8_t>(__nv_cvt_float_to_fp4(x, __NV_E2M1, cudaRoundNearest));
}

// Counts inputs where ours and CUDA's encodings differ; prints the first few.
std::size_t encode_mismatches(const std::vector<float>& xs) {
  std::size_t bad = 0;
  for (float x : xs) {
    const std::uint8_t ours = e2m1_encode(x), theirs = cuda_e2m1(x);
    if (ours != theirs && ++bad <= 5) std::printf("e2m1 mismatch x=%a ours=%x cuda=%x\n", x, ours, theirs);
  }
  return bad;
}

const std::vector<float> grid = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
const std::vector<float> midpoints = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};

}  // namespace

TEST_CASE("e2m1: encode equals cuda_fp4.h on every float16 value", "[numerics][e2m1]") {
  REQUIRE(encode_mismatches(all_half_values()) == 0);
}

TEST_CASE("e2m1: encode equals cuda_fp4.h on grid points, ties and their neighbours", "[numerics][e2m1]") {
  // Scaled by powers of two too, so neighbours of every binade near the grid are covered.
  REQUIRE(encode_mismatches(around(grid, {1.0f, 0.5f, 2.0f, 0.25f})) == 0);
  REQUIRE(encode_mismatches(around(midpoints)) == 0);
  REQUIRE(encode_mismatches(special_values()) == 0);
}

TEST_CASE("e2m1: encode equals cuda_fp4.h on 2^24 random floats of every exponent", "[numerics][e2m1]") {
  REQUIRE(encode_mismatches(random_bit_patterns(std::size_t{1} << 24, 0xE2E1u)) == 0);
  REQUIRE(encode_mismatches(random_log_uniform(std::size_t{1} << 20, 7u, -4.0f, 5.0f)) == 0);
}

TEST_CASE("e2m1: ties go to the even code, saturation, sign, NaN", "[numerics][e2m1]") {
  CHECK(e2m1_encode(0.25f) == 0x0);   // 0 | 0.5 -> even 0
  CHECK(e2m1_encode(0.75f) == 0x2);   // 0.5 | 1.0 -> 1.0
  CHECK(e2m1_encode(1.25f) == 0x2);   // 1.0 | 1.5 -> 1.0
  CHECK(e2m1_encode(1.75f) == 0x4);   // 1.5 | 2.0 -> 2.0
  CHECK(e2m1_encode(2.5f) == 0x4);    // 2 | 3 -> 2
  CHECK(e2m1_encode(3.5f) == 0x6);    // 3 | 4 -> 4
  CHECK(e2m1_encode(5.0f) == 0x6);    // 4 | 6 -> 4
  CHECK(e2m1_encode(5.0001f) == 0x7);
  CHECK(e2m1_encode(1e30f) == 0x7);
  CHECK(e2m1_encode(-INFINITY) == 0xF);
  CHECK(e2m1_encode(INFINITY) == 0x7);
  CHECK(e2m1_encode(-0.1f) == 0x8);   // rounds to -0, sign kept
  CHECK(e2m1_encode(-0.0f) == 0x8);
  CHECK(e2m1_encode(NAN) == 0x7);     // CUDA maps NaN to +6
  CHECK(e2m1_encode(-NAN) == 0x7);
}

TEST_CASE("e2m1: decode of all 16 codes equals cuda_fp4.h and the grid", "[numerics][e2m1]") {
  for (std::uint8_t c = 0; c < 16; ++c) {
    const __half_raw h = __nv_cvt_fp4_to_halfraw(c, __NV_E2M1);
    const float theirs = half_bits_to_float(h.x);
    const float ours = e2m1_decode(c);
    INFO("code " << int(c));
    CHECK(to_bits(ours) == to_bits(theirs));
    CHECK(ours == ((c & 8) ? -grid[c & 7] : grid[c & 7]));
    CHECK(e2m1_encode(ours) == c);  // round trip
  }
}

TEST_CASE("e2m1: pack puts element 2k in the low nibble", "[numerics][e2m1]") {
  CHECK(e2m1_pack(0x1, 0xF) == 0xF1);
  CHECK(e2m1_pack(0x7, 0x0) == 0x07);
  // Same order as CUDA's x2 conversion given (x0, x1) in .x / .y.
  const float2 pair{1.0f, -6.0f};
  CHECK(e2m1_pack(e2m1_encode(pair.x), e2m1_encode(pair.y)) ==
        static_cast<std::uint8_t>(__nv_cvt_float2_to_fp4x2(pair, __NV_E2M1, cudaRoundNearest)));
}
