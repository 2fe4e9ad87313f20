// SPDX-License-Identifier: Apache-2.0
// ref::encode/decode_nvfp4 (SPEC §5, §8) against hand-computed rows and against an independent
// encoder written straight from SPEC §5 with cuda_fp8.h / cuda_fp4.h conversions.
#include <catch2/catch.hpp>
#include <cuda_fp4.h>
#include <cuda_fp8.h>

#include <cfloat>
#include <climits>
#include <cmath>
#include <random>
#include <vector>

#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "float_corpus.hpp"

namespace {

using namespace dsv4kv;
using dsv4kv::test::to_bits;

// Owning storage for NVFP4 rows.
struct nvfp4_store {
  std::vector<std::uint8_t> codes, scales;
  std::vector<float> g;
  std::int64_t rows, d;
  nvfp4_store(std::int64_t r, std::int64_t dd) : codes(r * dd / 2), scales(r * dd / 16), g(r), rows(r), d(dd) {}
  nvfp4_rows view() { return {codes.data(), scales.data(), g.data(), rows, d}; }
};

// SPEC §5 written out again, independently of formats/nvfp4_encoding.hpp and numerics/.
void spec_encode_row(const float* x, int d, std::uint8_t* codes, std::uint8_t* scales, float* g) {
  float amax = 0.0f;
  bool finite = true;
  for (int k = 0; k < d; ++k) {
    finite = finite && std::isfinite(x[k]);
    amax = std::fmax(amax, std::fabs(x[k]));
  }
  if (!finite) {
    *g = NAN;
    std::fill(codes, codes + d / 2, 0);
    std::fill(scales, scales + d / 16, 0);
    return;
  }
  float s_enc = amax == 0.0f ? 1.0f : std::fmin(448.0f * 6.0f / amax, FLT_MAX);
  *g = 1.0f / s_enc;
  for (int b = 0; b < d / 16; ++b) {
    float vmax = 0.0f;
    for (int k = 0; k < 16; ++k) vmax = std::fmax(vmax, std::fabs(x[b * 16 + k]));
    const float t = s_enc * (1.0f / 6.0f);
    const auto sf = static_cast<std::uint8_t>(__nv_cvt_float_to_fp8(vmax * t, __NV_SATFINITE, __NV_E4M3));
    scales[b] = sf;
    const float sf_f = test::half_bits_to_float(__nv_cvt_fp8_to_halfraw(sf, __NV_E4M3).x);
    const float mul = sf == 0 ? 0.0f : std::fmin(1.0f / (sf_f * *g), FLT_MAX);
    for (int k = 0; k < 16; k += 2) {
      const float2 pair{x[b * 16 + k] * mul, x[b * 16 + k + 1] * mul};
      codes[(b * 16 + k) / 2] = static_cast<std::uint8_t>(__nv_cvt_float2_to_fp4x2(pair, __NV_E2M1, cudaRoundNearest));
    }
  }
}

std::vector<float> gaussian_rows(std::int64_t rows, std::int64_t d, std::uint32_t seed, bool spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_scale(-8.0f, 8.0f);
  std::vector<float> x(rows * d);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float s = spread ? std::exp2(log_scale(rng)) : 1.0f;
    for (std::int64_t k = 0; k < d; ++k) x[r * d + k] = n01(rng) * s;
  }
  return x;
}

std::vector<float> decode_all(nvfp4_store& s) {
  std::vector<float> out(s.rows * s.d);
  REQUIRE(ref::decode_nvfp4(s.view(), make_tensor_view(out.data(), s.rows, s.d)) == status::ok);
  return out;
}

}  // namespace

TEST_CASE("nvfp4 ref: matches an independent SPEC §5 encoder on random rows", "[nvfp4][ref]") {
  for (std::int64_t d : {16, 128, 512}) {
    const std::int64_t rows = 997;
    auto x = gaussian_rows(rows, d, static_cast<std::uint32_t>(d), /*spread=*/true);
    // Sprinkle extremes: huge, tiny, exact ties on the grid after scaling.
    x[3] = 3e38f;
    x[d + 1] = 1e-40f;
    nvfp4_store ours(rows, d), spec(rows, d);
    REQUIRE(ref::encode_nvfp4(make_tensor_view<const float>(x.data(), rows, d), ours.view()) == status::ok);
    for (std::int64_t r = 0; r < rows; ++r) {
      spec_encode_row(&x[r * d], static_cast<int>(d), &spec.codes[r * d / 2], &spec.scales[r * d / 16], &spec.g[r]);
    }
    INFO("d = " << d);
    CHECK(ours.codes == spec.codes);
    CHECK(ours.scales == spec.scales);
    for (std::int64_t r = 0; r < rows; ++r) REQUIRE(to_bits(ours.g[r]) == to_bits(spec.g[r]));
  }
}

TEST_CASE("nvfp4 ref: a row on the E2M1 grid with amax 6 decodes exactly", "[nvfp4][ref]") {
  const std::vector<float> x = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.5f, -1, -1.5f, -2, -3, -4, -6, 0};
  nvfp4_store s(1, 16);
  ref::encode_nvfp4_row({x.data(), 16}, s.codes.data(), s.scales.data(), s.g.data());
  CHECK(s.g[0] == 1.0f / 448.0f);     // S_enc = 2688 / 6 = 448
  CHECK(s.scales[0] == 0x7E);         // 6 * 448 / 6 saturates to E4M3 448
  CHECK(s.codes[0] == 0x10);          // 0 (low), 0.5 (high)
  CHECK(s.codes[2] == 0x54);          // 2 (0x4), 3 (0x5)
  CHECK(s.codes[3] == 0x76);          // 4 (0x6), 6 (0x7)
  CHECK(s.codes[4] == 0xA9);          // -0.5 (0x9), -1 (0xA)
  CHECK(s.codes[7] == 0x0F);          // -6 (0xF), 0
  // Decoding is e2m1 * 448 * g left to right; 448 * fl(1/448) is not exactly 1, so values with
  // three significant bits (1.5, 3, 6) come back one float ulp high.
  const auto y = decode_all(s);
  for (int k = 0; k < 16; ++k) {
    CHECK(y[k] == x[k] * 448.0f * s.g[0]);
    CHECK(std::fabs(y[k] - x[k]) <= std::fabs(x[k]) * 0x1p-22f);
  }
}

TEST_CASE("nvfp4 ref: zero row", "[nvfp4][ref][edge]") {
  std::vector<float> x(32, 0.0f);
  nvfp4_store s(1, 32);
  std::fill(s.codes.begin(), s.codes.end(), 0xAB);
  std::fill(s.scales.begin(), s.scales.end(), 0xCD);
  ref::encode_nvfp4_row({x.data(), 32}, s.codes.data(), s.scales.data(), s.g.data());
  CHECK(s.g[0] == 1.0f);  // S_enc = 1 when amax == 0
  CHECK(s.codes == std::vector<std::uint8_t>(16, 0));
  CHECK(s.scales == std::vector<std::uint8_t>(2, 0));
  for (float v : decode_all(s)) CHECK(to_bits(v) == 0u);
}

TEST_CASE("nvfp4 ref: one NaN or Inf makes the whole row decode to NaN", "[nvfp4][ref][edge]") {
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> x(64, 1.25f);
    x[37] = bad;
    nvfp4_store s(1, 64);
    std::fill(s.codes.begin(), s.codes.end(), 0xAB);
    ref::encode_nvfp4_row({x.data(), 64}, s.codes.data(), s.scales.data(), s.g.data());
    CHECK(std::isnan(s.g[0]));
    CHECK(s.codes == std::vector<std::uint8_t>(32, 0));
    CHECK(s.scales == std::vector<std::uint8_t>(4, 0));
    for (float v : decode_all(s)) REQUIRE(std::isnan(v));
    std::vector<std::uint16_t> bf(64);
    REQUIRE(ref::decode_nvfp4_bf16(s.view(), make_tensor_view(bf.data(), 1, 64)) == status::ok);
    for (auto b : bf) REQUIRE(b == 0x7FFF);
  }
}

TEST_CASE("nvfp4 ref: block maxima below the E4M3 range give scale 0 and zero codes", "[nvfp4][ref][edge]") {
  std::vector<float> x(48, 0.0f);
  for (int k = 0; k < 16; ++k) x[k] = (k % 2 ? -1.0f : 1.0f) * (1.0f + k / 16.0f);  // amax ~1.94
  for (int k = 16; k < 32; ++k) x[k] = 1e-6f;   // vmax * S_enc / 6 = 1e-6 * 1386 / 6 < 2^-10: sf = 0
  for (int k = 32; k < 48; ++k) x[k] = 2e-5f;   // lands in the E4M3 subnormal range: sf != 0
  nvfp4_store s(1, 48);
  ref::encode_nvfp4_row({x.data(), 48}, s.codes.data(), s.scales.data(), s.g.data());
  CHECK(s.scales[0] == 0x7E);
  CHECK(s.scales[1] == 0x00);
  CHECK(s.scales[2] != 0x00);
  CHECK(s.scales[2] < 0x08);  // subnormal E4M3
  const auto y = decode_all(s);
  for (int k = 16; k < 32; ++k) CHECK(y[k] == 0.0f);
  for (int k = 0; k < 8; ++k) CHECK(s.codes[8 + k] == 0);
  for (int k = 32; k < 48; ++k) CHECK(y[k] > 0.0f);
}

TEST_CASE("nvfp4 ref: tiny and huge row maxima stay finite (S_enc clamp)", "[nvfp4][ref][edge]") {
  std::vector<float> tiny(16, 1e-44f), huge(16, 3.4e38f);
  nvfp4_store s(1, 16);
  ref::encode_nvfp4_row({tiny.data(), 16}, s.codes.data(), s.scales.data(), s.g.data());
  CHECK(s.g[0] == 1.0f / FLT_MAX);  // 2688 / 1e-44 overflows: clamped to FLT_MAX
  for (float v : decode_all(s)) CHECK(std::isfinite(v));
  ref::encode_nvfp4_row({huge.data(), 16}, s.codes.data(), s.scales.data(), s.g.data());
  const auto y = decode_all(s);
  for (float v : y) CHECK(std::fabs(v - 3.4e38f) <= 3.4e38f * 1e-6f);
}

TEST_CASE("nvfp4 ref: Gaussian round-trip error", "[nvfp4][ref][accuracy]") {
  // Measured with this test: relative RMSE 0.0950 for N(0,1) rows of 512 and of 128 (2048 rows).
  for (std::int64_t d : {128, 512}) {
    const std::int64_t rows = 2048;
    const auto x = gaussian_rows(rows, d, 1234u + static_cast<std::uint32_t>(d), /*spread=*/true);
    nvfp4_store s(rows, d);
    REQUIRE(ref::encode_nvfp4(make_tensor_view<const float>(x.data(), rows, d), s.view()) == status::ok);
    const auto y = decode_all(s);
    double err = 0.0, ref_sq = 0.0;
    for (std::int64_t r = 0; r < rows; ++r) {  // per-row relative error, averaged in square
      double e = 0.0, n = 0.0;
      for (std::int64_t k = 0; k < d; ++k) {
        e += std::pow(double(y[r * d + k]) - x[r * d + k], 2);
        n += std::pow(double(x[r * d + k]), 2);
      }
      err += e / n;
      ref_sq += 1.0;
    }
    const double rel_rmse = std::sqrt(err / ref_sq);
    INFO("d = " << d << " relative RMSE = " << rel_rmse);
    CHECK(rel_rmse < 0.100);
    CHECK(rel_rmse > 0.05);  // a lossless result would mean the codes are not 4-bit
  }
}

TEST_CASE("nvfp4 ref: selective decode returns zero rows for -1 and out-of-range indices", "[nvfp4][ref][selective]") {
  const std::int64_t rows = 37, d = 64;
  const auto x = gaussian_rows(rows, d, 99u, true);
  nvfp4_store s(rows, d);
  REQUIRE(ref::encode_nvfp4(make_tensor_view<const float>(x.data(), rows, d), s.view()) == status::ok);
  std::vector<std::uint16_t> all(rows * d);
  REQUIRE(ref::decode_nvfp4_bf16(s.view(), make_tensor_view(all.data(), rows, d)) == status::ok);
  const std::vector<std::int32_t> idx = {5, -1, 36, 37, INT_MIN, INT_MAX, 5, 0};
  std::vector<std::uint16_t> sel(idx.size() * d, 0xBEEF);
  REQUIRE(ref::decode_nvfp4_selected_bf16(s.view(), {idx.data(), std::int64_t(idx.size())},
                                          make_tensor_view(sel.data(), std::int64_t(idx.size()), d)) == status::ok);
  for (std::size_t i = 0; i < idx.size(); ++i) {
    for (std::int64_t k = 0; k < d; ++k) {
      const bool valid = idx[i] >= 0 && idx[i] < rows;
      REQUIRE(sel[i * d + k] == (valid ? all[idx[i] * d + k] : 0));
    }
  }
  // bf16 decode is the BF16 rounding of the FP32 decode.
  const auto y = decode_all(s);
  for (std::int64_t i = 0; i < rows * d; ++i) REQUIRE(all[i] == bf16_encode(y[i]));
}

TEST_CASE("nvfp4 ref: shape and pointer errors", "[nvfp4][ref][errors]") {
  std::vector<float> x(32);
  nvfp4_store s(2, 16);
  CHECK(ref::encode_nvfp4(make_tensor_view<const float>(x.data(), 2, 16), s.view()) == status::ok);
  CHECK(ref::encode_nvfp4(make_tensor_view<const float>(x.data(), 1, 16), s.view()) == status::invalid_argument);
  nvfp4_rows bad_d = s.view();
  bad_d.d = 24;
  CHECK(ref::encode_nvfp4(make_tensor_view<const float>(x.data(), 2, 24), bad_d) == status::unsupported_shape);
  nvfp4_rows null_codes = s.view();
  null_codes.codes = nullptr;
  CHECK(ref::encode_nvfp4(make_tensor_view<const float>(x.data(), 2, 16), null_codes) == status::null_pointer);
  nvfp4_rows empty = s.view();
  empty.rows = 0;
  CHECK(ref::encode_nvfp4(make_tensor_view<const float>(nullptr, 0, 16), empty) == status::ok);
}
