// SPDX-License-Identifier: Apache-2.0
// Device numerics against the host: the same functions must give the same bits on the GPU, and
// agree with CUDA's own device conversions (the cvt instructions where the GPU has them).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

#include "dsv4kv/formats/fp8_encoding.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/numerics/e2m1.hpp"
#include "dsv4kv/numerics/e4m3.hpp"
#include "float_corpus.hpp"
#include "numerics_kernels.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

template <class A, class B>
std::size_t count_mismatches(const char* what, const std::vector<float>& x, const std::vector<A>& got,
                             const std::vector<B>& want) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (static_cast<std::uint64_t>(got[i]) != static_cast<std::uint64_t>(want[i]) && ++bad <= 5) {
      std::printf("%s mismatch at x=%a: device=%llx expected=%llx\n", what, x[i],
                  static_cast<unsigned long long>(got[i]), static_cast<unsigned long long>(want[i]));
    }
  }
  return bad;
}

std::vector<std::uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) b[i] = to_bits(v[i]);
  return b;
}

}  // namespace

TEST_CASE("device numerics equal host numerics and CUDA device conversions on > 10^7 values", "[gpu][numerics]") {
  std::vector<float> x = random_bit_patterns(std::size_t{1} << 24, 0xD5C4u);
  for (float v : all_half_values()) x.push_back(v);
  for (float v : special_values()) x.push_back(v);
  for (float v : random_log_uniform(std::size_t{1} << 20, 3u, -12.0f, 10.0f)) x.push_back(v);
  REQUIRE(x.size() > 10'000'000u);

  const device_numerics d = run_device_numerics(x);
  const std::size_t n = x.size();
  std::vector<std::uint8_t> e2m1(n), e4m3(n), sf(n);
  std::vector<std::uint16_t> bf16(n);
  std::vector<float> g(n), s_enc(n), pow2(n), mul(n);
  for (std::size_t i = 0; i < n; ++i) {
    e2m1[i] = e2m1_encode(x[i]);
    e4m3[i] = e4m3_encode(x[i]);
    bf16[i] = bf16_encode(x[i]);
    row_amax a;
    a.add(x[i]);
    const nvfp4_row_scale rs = nvfp4_row_scale_from_amax(a);
    g[i] = rs.decode;
    s_enc[i] = rs.encode;
    pow2[i] = is_finite_bits(x[i]) && x[i] != 0.0f ? fp8_pow2_scale(abs_bits(x[i])) : 0.0f;
    row_amax wider;
    wider.add(x[i] * 4.5f);
    const nvfp4_row_scale ws = nvfp4_row_scale_from_amax(wider);
    sf[i] = nvfp4_block_scale(abs_bits(x[i]), ws.encode);
    mul[i] = nvfp4_block_multiplier(sf[i], ws.decode);
  }
  CHECK(count_mismatches("e2m1 device vs host", x, d.e2m1, e2m1) == 0);
  CHECK(count_mismatches("e4m3 device vs host", x, d.e4m3, e4m3) == 0);
  CHECK(count_mismatches("bf16 device vs host", x, d.bf16, bf16) == 0);
  CHECK(count_mismatches("e2m1 ours vs cuda device cvt", x, d.e2m1, d.e2m1_cuda) == 0);
  CHECK(count_mismatches("e4m3 ours vs cuda device cvt", x, d.e4m3, d.e4m3_cuda) == 0);
  CHECK(count_mismatches("bf16 ours vs cuda device cvt", x, d.bf16, d.bf16_cuda) == 0);
  CHECK(count_mismatches("nvfp4 g", x, bits_of(d.nvfp4_g), bits_of(g)) == 0);
  CHECK(count_mismatches("nvfp4 S_enc", x, bits_of(d.nvfp4_s_enc), bits_of(s_enc)) == 0);
  CHECK(count_mismatches("nvfp4 block scale", x, d.nvfp4_sf, sf) == 0);
  CHECK(count_mismatches("nvfp4 multiplier", x, bits_of(d.nvfp4_mul), bits_of(mul)) == 0);
  CHECK(count_mismatches("fp8 pow2 scale", x, bits_of(d.fp8_pow2), bits_of(pow2)) == 0);
  for (int c = 0; c < 16; ++c) CHECK(to_bits(d.e2m1_decoded[c]) == to_bits(e2m1_decode(static_cast<std::uint8_t>(c))));
  for (int c = 0; c < 256; ++c) {
    const float h = e4m3_decode(static_cast<std::uint8_t>(c));
    if (std::isnan(h)) {
      CHECK(std::isnan(d.e4m3_decoded[c]));
    } else {
      CHECK(to_bits(d.e4m3_decoded[c]) == to_bits(h));
    }
  }
}
