// SPDX-License-Identifier: Apache-2.0
// ref::rmsnorm, ref::rope (+ the YaRN table), ref::hadamard_rotate and ref::write_path_rows.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "dsv4kv/ref/compress.hpp"
#include "dsv4kv/ref/hadamard.hpp"
#include "dsv4kv/ref/rmsnorm.hpp"
#include "dsv4kv/ref/rope.hpp"
#include "dsv4kv/ref/write_path.hpp"
#include "dsv4kv/rope_table.hpp"

using namespace dsv4kv;

TEST_CASE("rmsnorm ref: hand-computed row, eps, weight", "[rmsnorm][ref]") {
  std::vector<double> row = {3.0, 4.0};
  const std::vector<float> w = {1.0f, 2.0f};
  REQUIRE(ref::rmsnorm(make_tensor_view(row.data(), 1, 2), w.data(), 0.0) == status::ok);
  const double rms = std::sqrt(12.5);
  CHECK(row[0] == Approx(3.0 / rms).epsilon(1e-15));
  CHECK(row[1] == Approx(8.0 / rms).epsilon(1e-15));
  std::vector<double> z = {0.0, 0.0, 0.0};
  const std::vector<float> w3 = {1, 1, 1};
  REQUIRE(ref::rmsnorm(make_tensor_view(z.data(), 1, 3), w3.data(), 1e-6) == status::ok);  // eps avoids 0/0
  CHECK(z == std::vector<double>{0.0, 0.0, 0.0});
  std::vector<double> small = {1e-3, -1e-3};
  REQUIRE(ref::rmsnorm(make_tensor_view(small.data(), 1, 2), w.data(), 1e-6) == status::ok);
  CHECK(small[0] == Approx(1e-3 / std::sqrt(1e-6 + 1e-6)).epsilon(1e-14));
  CHECK(ref::rmsnorm(make_tensor_view(row.data(), 1, 2), nullptr, 1e-6) == status::null_pointer);
  CHECK(ref::rmsnorm(make_tensor_view(row.data(), 1, 2), w.data(), -1.0) == status::invalid_argument);
}

TEST_CASE("rope ref: rotates only the last rope_dim channels, GPT-J interleaved", "[rope][ref]") {
  // Table of 3 positions, rope_dim 4 (2 frequencies): hand-chosen cos / sin.
  const std::vector<float> cos = {1, 1, 0, 0.6f, -1, 1};
  const std::vector<float> sin = {0, 0, 1, 0.8f, 0, 0};
  const rope_table_view table{cos.data(), sin.data(), 3, 4};
  std::vector<double> x = {7, 8, 1, 2, 3, 4};  // d = 6: channels 2..5 rotate
  const std::vector<std::int32_t> pos = {1};
  REQUIRE(ref::rope(make_tensor_view(x.data(), 1, 6), {pos.data(), 1}, table) == status::ok);
  // q = 0: (1, 2) by 90 degrees -> (-2, 1); q = 1: (3, 4) by (0.6, 0.8) -> (3*.6-4*.8, 3*.8+4*.6)
  CHECK(x[0] == 7);
  CHECK(x[1] == 8);
  CHECK(x[2] == Approx(-2.0));
  CHECK(x[3] == Approx(1.0));
  CHECK(x[4] == Approx(3 * 0.6 - 4 * 0.8).epsilon(1e-7));
  CHECK(x[5] == Approx(3 * 0.8 + 4 * 0.6).epsilon(1e-7));
  const std::vector<std::int32_t> out_of_range = {3};
  CHECK(ref::rope(make_tensor_view(x.data(), 1, 6), {out_of_range.data(), 1}, table) == status::invalid_argument);
  CHECK(ref::rope(make_tensor_view(x.data(), 1, 2), {pos.data(), 1}, table) == status::unsupported_shape);
}

TEST_CASE("rope ref: prefill positions are start + i * ratio", "[rope][ref]") {
  rope_table t;
  REQUIRE(make_yarn_rope_table(4096, 64, t) == status::ok);
  std::mt19937 rng(8);
  std::normal_distribution<double> n;
  std::vector<double> a(10 * 128);
  for (auto& v : a) v = n(rng);
  auto b = a;
  std::vector<std::int32_t> pos(10);
  for (int i = 0; i < 10; ++i) pos[i] = 100 + i * 128;
  REQUIRE(ref::rope_prefill(make_tensor_view(a.data(), 10, 128), 100, 128, t.view()) == status::ok);
  REQUIRE(ref::rope(make_tensor_view(b.data(), 10, 128), {pos.data(), 10}, t.view()) == status::ok);
  CHECK(a == b);
  std::vector<double> big(40 * 128, 1.0);  // row 39 would sit at 100 + 39 * 128 >= max_pos
  CHECK(ref::rope_prefill(make_tensor_view(big.data(), 40, 128), 100, 128, t.view()) == status::invalid_argument);
  CHECK(big == std::vector<double>(40 * 128, 1.0));  // validation first: nothing rotated
}

TEST_CASE("yarn table: DeepSeek-V4 frequencies and unit-magnitude cos/sin", "[rope][yarn]") {
  // rope_dim 64, theta 160000, factor 16, original 65536, beta 32 / 1: the correction range is
  // [floor(15.45), ceil(24.71)] = [15, 25].
  const auto f = yarn_inv_freq(64);
  REQUIRE(f.size() == 32u);
  for (int q = 0; q <= 15; ++q) CHECK(f[q] == Approx(std::pow(160000.0, -2.0 * q / 64)).epsilon(1e-15));
  for (int q = 25; q < 32; ++q) CHECK(f[q] == Approx(std::pow(160000.0, -2.0 * q / 64) / 16).epsilon(1e-15));
  const double base20 = std::pow(160000.0, -40.0 / 64);  // ramp (20 - 15) / 10 = 0.5
  CHECK(f[20] == Approx(0.5 * base20 / 16 + 0.5 * base20).epsilon(1e-15));
  for (int q = 1; q < 32; ++q) CHECK(f[q] < f[q - 1]);
  const auto plain = yarn_inv_freq(64, yarn_config{160000.0, 1.0});
  CHECK(plain[31] == Approx(std::pow(160000.0, -62.0 / 64)).epsilon(1e-15));

  rope_table t;
  REQUIRE(make_yarn_rope_table(70000, 64, t) == status::ok);
  CHECK(t.cos.size() == 70000u * 32u);
  for (std::int64_t p : {0, 1, 4095, 65536, 69999}) {
    for (int q : {0, 15, 20, 31}) {
      CHECK(t.cos[p * 32 + q] == static_cast<float>(std::cos(p * f[q])));
      CHECK(t.sin[p * 32 + q] == static_cast<float>(std::sin(p * f[q])));
      const double mag = double(t.cos[p * 32 + q]) * t.cos[p * 32 + q] + double(t.sin[p * 32 + q]) * t.sin[p * 32 + q];
      CHECK(mag == Approx(1.0).epsilon(1e-6));
    }
  }
  CHECK(make_yarn_rope_table(10, 63, t) == status::unsupported_shape);
  CHECK(make_yarn_rope_table(-1, 64, t) == status::invalid_argument);
}

TEST_CASE("hadamard ref: hand-computed d = 2 and 4, orthonormal at 128 and 512", "[hadamard][ref]") {
  std::vector<double> two = {3.0, 1.0};
  REQUIRE(ref::hadamard_rotate(make_tensor_view(two.data(), 1, 2)) == status::ok);
  CHECK(two[0] == Approx(4.0 / std::sqrt(2.0)));
  CHECK(two[1] == Approx(2.0 / std::sqrt(2.0)));
  std::vector<double> four = {1, 2, 3, 4};  // H4 rows: ++++, +-+-, ++--, +--+
  REQUIRE(ref::hadamard_rotate(make_tensor_view(four.data(), 1, 4)) == status::ok);
  CHECK(four == std::vector<double>{5.0, -1.0, -2.0, 0.0});
  for (int d : {128, 512}) {
    std::mt19937 rng(d);
    std::normal_distribution<double> n;
    std::vector<double> x(3 * d);
    for (auto& v : x) v = n(rng);
    auto y = x;
    REQUIRE(ref::hadamard_rotate(make_tensor_view(y.data(), 3, d)) == status::ok);
    double nx = 0, ny = 0, sum = 0;
    for (int k = 0; k < d; ++k) nx += x[k] * x[k], ny += y[k] * y[k], sum += x[k];
    CHECK(ny == Approx(nx).epsilon(1e-12));               // norm preserved
    CHECK(y[0] == Approx(sum / std::sqrt(double(d))));    // first row of H is all ones
    REQUIRE(ref::hadamard_rotate(make_tensor_view(y.data(), 3, d)) == status::ok);  // involution
    for (int k = 0; k < 3 * d; ++k) REQUIRE(y[k] == Approx(x[k]).margin(1e-12));
  }
  std::vector<double> bad(6);
  CHECK(ref::hadamard_rotate(make_tensor_view(bad.data(), 1, 6)) == status::unsupported_shape);
}

TEST_CASE("write path ref: compress -> norm -> rope -> hadamard equals the stages in sequence", "[write_path][ref]") {
  const int m = 4;
  const std::int64_t d = 128, T = 4 * 33 + 2, width = 2 * d;
  std::mt19937 rng(21);
  std::normal_distribution<float> n;
  std::vector<float> kv(T * width), gate(T * width), bias(m * width), w(d);
  for (auto& v : kv) v = n(rng);
  for (auto& v : gate) v = 2 * n(rng);
  for (auto& v : bias) v = 0.1f * n(rng);
  for (auto& v : w) v = 1.0f + 0.1f * n(rng);
  rope_table table;
  REQUIRE(make_yarn_rope_table(1024, 64, table) == status::ok);

  ref::write_path_problem p;
  p.ratio = m;
  p.kv = make_tensor_view<const float>(kv.data(), T, width);
  p.gate = make_tensor_view<const float>(gate.data(), T, width);
  p.position_bias = bias.data();
  p.norm_weight = w.data();
  p.rope = table.view();
  p.start_position = 0;
  p.hadamard = true;
  const std::int64_t rows = T / m;
  std::vector<double> fused(rows * d), staged(rows * d);
  REQUIRE(ref::write_path_rows(p, make_tensor_view(fused.data(), rows, d)) == status::ok);
  auto sv = make_tensor_view(staged.data(), rows, d);
  REQUIRE(ref::compress(p.kv, p.gate, bias.data(), m, sv) == status::ok);
  REQUIRE(ref::rmsnorm(sv, w.data()) == status::ok);
  REQUIRE(ref::rope_prefill(sv, 0, m, table.view()) == status::ok);
  REQUIRE(ref::hadamard_rotate(sv) == status::ok);
  CHECK(fused == staged);
  // Row RMS after the norm is ~|w| and survives RoPE and the orthonormal rotation.
  double sq = 0.0;
  for (std::int64_t k = 0; k < d; ++k) sq += fused[k] * fused[k];
  CHECK(std::sqrt(sq / d) == Approx(1.0).epsilon(0.05));
}
