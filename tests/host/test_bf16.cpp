// SPDX-License-Identifier: Apache-2.0
// numerics/bf16.hpp against the independent oracle: cuda_bf16.h host conversions.
#include <catch2/catch.hpp>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdio>

#include "dsv4kv/numerics/bf16.hpp"
#include "float_corpus.hpp"

namespace {

using namespace dsv4kv;
using namespace dsv4kv::test;

std::uint16_t cuda_bf16(float x) {
  const __nv_bfloat16 b = __float2bfloat16_rn(x);
  return static_cast<__nv_bfloat16_raw>(b).x;
}

std::size_t encode_mismatches(const std::vector<float>& xs) {
  std::size_t bad = 0;
  for (float x : xs) {
    const std::uint16_t ours = bf16_encode(x), theirs = cuda_bf16(x);
    if (ours != theirs && ++bad <= 5) std::printf("bf16 mismatch x=%a ours=%04x cuda=%04x\n", x, ours, theirs);
  }
  return bad;
}

}  // namespace

TEST_CASE("bf16: encode equals cuda_bf16.h on float16 values, specials and 2^24 random floats", "[numerics][bf16]") {
  REQUIRE(encode_mismatches(all_half_values()) == 0);
  REQUIRE(encode_mismatches(special_values()) == 0);
  REQUIRE(encode_mismatches(random_bit_patterns(std::size_t{1} << 24, 0xBF16u)) == 0);
}

TEST_CASE("bf16: ties to even, overflow to infinity, canonical NaN", "[numerics][bf16]") {
  CHECK(bf16_encode(from_bits(0x3F808000u)) == 0x3F80);  // tie, even stays
  CHECK(bf16_encode(from_bits(0x3F818000u)) == 0x3F82);  // tie, odd rounds up
  CHECK(bf16_encode(from_bits(0x3F808001u)) == 0x3F81);  // above the tie
  CHECK(bf16_encode(from_bits(0x7F7FFFFFu)) == 0x7F80);  // FLT_MAX rounds to +Inf
  CHECK(bf16_encode(-INFINITY) == 0xFF80);
  CHECK(bf16_encode(NAN) == 0x7FFF);
  CHECK(bf16_encode(from_bits(0xFFC00001u)) == 0x7FFF);
  CHECK(bf16_encode(-0.0f) == 0x8000);
  for (std::uint32_t b = 0; b < 65536; ++b) {  // every BF16 value round-trips exactly
    const float x = bf16_decode(static_cast<std::uint16_t>(b));
    if (!std::isnan(x)) REQUIRE(bf16_encode(x) == b);
  }
}
