// SPDX-License-Identifier: Apache-2.0
// ref::compress (SPEC §3) on hand-computed blocks and the SPEC's edge cases.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "dsv4kv/ref/compress.hpp"

namespace {

using namespace dsv4kv;

struct problem {
  int ratio;
  std::int64_t tokens, d, width;
  std::vector<float> kv, gate;
  problem(int m, std::int64_t t, std::int64_t dd)
      : ratio(m), tokens(t), d(dd), width(compress_input_width(m, dd)), kv(t * width), gate(t * width) {}
  float& K(std::int64_t t, std::int64_t c) { return kv[t * width + c]; }
  float& S(std::int64_t t, std::int64_t c) { return gate[t * width + c]; }
  std::vector<double> run(const float* bias = nullptr, status expect = status::ok) {
    std::vector<double> out(compressed_row_count(tokens, ratio) * d, -12345.0);
    const status s = ref::compress(make_tensor_view<const float>(kv.data(), tokens, width),
                                   make_tensor_view<const float>(gate.data(), tokens, width), bias, ratio,
                                   make_tensor_view(out.data(), compressed_row_count(tokens, ratio), d));
    REQUIRE(s == expect);
    return out;
  }
};

void fill_random(problem& p, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (auto& v : p.kv) v = n(rng);
  for (auto& v : p.gate) v = 3.0f * n(rng);
}

}  // namespace

TEST_CASE("compress ref: CSA block 0 gives zero weight to the absent previous block", "[compress][ref]") {
  problem p(4, 4, 2);  // one block, d = 2, width 4
  fill_random(p, 1);
  // Equal scores in the current block: y = mean of the second-half channels of tokens 0..3.
  for (auto& g : p.gate) g = 0.5f;
  const auto y = p.run();
  for (int j = 0; j < 2; ++j) {
    double mean = 0.0;
    for (int t = 0; t < 4; ++t) mean += p.K(t, 2 + j);
    CHECK(y[j] == Approx(mean / 4).epsilon(1e-15));
  }
  // First-half channels of block 0 are never read for row 0: changing them changes nothing.
  for (int t = 0; t < 4; ++t) p.K(t, 0) = 1e6f, p.S(t, 0) = 80.0f;
  CHECK(p.run() == y);
}

TEST_CASE("compress ref: CSA row 1 mixes the previous block's first half with the current second half",
          "[compress][ref]") {
  problem p(4, 8, 3);
  fill_random(p, 2);
  for (auto& g : p.gate) g = 0.0f;
  const auto y = p.run();
  for (int j = 0; j < 3; ++j) {
    double sum = 0.0;
    for (int u = 0; u < 4; ++u) sum += double(p.K(u, j)) + p.K(4 + u, 3 + j);
    CHECK(y[3 + j] == Approx(sum / 8).epsilon(1e-14));
  }
}

TEST_CASE("compress ref: a dominant slot takes (almost) all the weight", "[compress][ref]") {
  problem p(4, 8, 2);
  fill_random(p, 3);
  for (auto& g : p.gate) g = 0.0f;
  p.S(2, 1) = 60.0f;  // token 2 (previous block of row 1), first-half channel 1
  const auto y = p.run();
  // Other 7 slots weigh e^-60 each relative to the dominant one.
  CHECK(std::fabs(y[2 + 1] - p.K(2, 1)) < 1e-20);
  // A very negative score removes a slot: row 1 channel 0 is the mean of the 7 others.
  p.S(6, 2) = -1e30f;  // token 6 (current block of row 1), second-half channel 0
  const auto z = p.run();
  double sum = 0.0;
  for (int u = 0; u < 4; ++u) sum += p.K(u, 0) + (u == 2 ? 0.0 : double(p.K(4 + u, 2)));
  CHECK(z[2] == Approx(sum / 7).epsilon(1e-14));
}

TEST_CASE("compress ref: HCA block with position bias as log-weights", "[compress][ref]") {
  problem p(128, 256, 4);
  fill_random(p, 4);
  for (auto& g : p.gate) g = 1.25f;  // a constant score shift changes nothing
  std::vector<float> bias(128 * 4);
  for (int u = 0; u < 128; ++u)
    for (int c = 0; c < 4; ++c) bias[u * 4 + c] = std::log(float(u + 1));  // weight ∝ u + 1
  const auto y = p.run(bias.data());
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 4; ++j) {
      double num = 0.0, den = 0.0;
      for (int u = 0; u < 128; ++u) {
        const double w = std::exp(double(std::log(float(u + 1))));
        num += w * p.K(i * 128 + u, j);
        den += w;
      }
      CHECK(y[i * 4 + j] == Approx(num / den).epsilon(1e-13));
    }
  }
}

TEST_CASE("compress ref: scores far from zero are numerically stable", "[compress][ref]") {
  problem p(4, 8, 1);
  for (int t = 0; t < 8; ++t) p.K(t, 0) = p.K(t, 1) = float(t);
  for (auto& g : p.gate) g = 1000.0f;  // exp(1000) overflows without the max subtraction
  const auto y = p.run();
  CHECK(y[0] == Approx(1.5));                      // mean of tokens 0..3
  CHECK(y[1] == Approx((0 + 1 + 2 + 3 + 4 + 5 + 6 + 7) / 8.0));
}

TEST_CASE("compress ref: T < m, T = 0 and a partial tail block", "[compress][ref][edge]") {
  for (int m : {4, 128}) {
    problem empty(m, 0, 16);
    CHECK(empty.run().empty());
    problem short_seq(m, m - 1, 16);
    fill_random(short_seq, 5);
    CHECK(short_seq.run().empty());
    // T = 3m + 3: three rows; the 3 tail tokens never influence them.
    problem tail(m, 3 * m + 3, 8);
    fill_random(tail, 6);
    const auto y = tail.run();
    CHECK(y.size() == 3u * 8u);
    for (std::int64_t t = 3 * m; t < 3 * m + 3; ++t)
      for (std::int64_t c = 0; c < tail.width; ++c) tail.K(t, c) = 1e9f, tail.S(t, c) = 50.0f;
    CHECK(tail.run() == y);
  }
}

TEST_CASE("compress ref: shape errors", "[compress][ref][errors]") {
  problem p(4, 8, 2);
  std::vector<double> out(2 * 2);
  auto kv = make_tensor_view<const float>(p.kv.data(), 8, 4);
  CHECK(ref::compress(kv, kv, nullptr, 4, make_tensor_view(out.data(), 1, 2)) == status::invalid_argument);
  CHECK(ref::compress(kv, make_tensor_view<const float>(p.gate.data(), 7, 4), nullptr, 4,
                      make_tensor_view(out.data(), 2, 2)) == status::invalid_argument);
  CHECK(ref::compress(kv, kv, nullptr, 0, make_tensor_view(out.data(), 2, 2)) == status::invalid_argument);
  CHECK(ref::compress(make_tensor_view<const float>(nullptr, 8, 4), kv, nullptr, 4, make_tensor_view(out.data(), 2, 2)) ==
        status::null_pointer);
  CHECK(ref::compress(kv, kv, nullptr, 4, make_tensor_view(out.data(), 2, 2)) == status::ok);
}
