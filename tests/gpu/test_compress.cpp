// SPDX-License-Identifier: Apache-2.0
// GPU compress (SPEC §3) with its fused epilogue (RMSNorm, RoPE, Hadamard), and the standalone
// RoPE and Hadamard stages, against the double-precision host reference (dsv4kv::ref).
// Error metric: max |gpu - ref| / max(|ref|, row RMS of ref) <= 1e-5 (write_path_fixtures.hpp).
// Every output sits between guard bands, with sentinel gaps between strided rows.
// The 65536-token cases of the three model streams run in test_write_path.cpp.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // before device_buffer.hpp: its cudaMalloc(&T*) needs the template overload

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "device_buffer.hpp"
#include "dsv4kv/compress.hpp"
#include "dsv4kv/hadamard.hpp"
#include "dsv4kv/ref/hadamard.hpp"
#include "dsv4kv/ref/rope.hpp"
#include "dsv4kv/rope.hpp"
#include "write_path_fixtures.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

// Runs compress into an n-row view of row stride d + 4 inside a guarded buffer (a row's worth of
// guard band on each side, sentinel gaps between rows); checks no byte outside the rows changed;
// returns the rows densely [n, d].
std::vector<float> run_compress(const compress_case& c, const device_compress_case& dev, const epilogue_options& e,
                                const device_rope_table& table) {
  const std::int64_t n = c.rows(), d = c.d, stride = d + 4;
  const guarded_array<float> out(n, d, stride, 32 * guard_bytes);
  const status s = with_params(c, dev, e, table.view, [&](const auto& p) { return compress(p, out.view(), nullptr); });
  REQUIRE(s == status::ok);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  return out.checked();
}

struct variant {
  const char* name;
  compress_options opt;
  epilogue_options e;
};

std::vector<variant> variants() {
  std::vector<variant> v;
  epilogue_options rope;
  rope.rope = true;
  epilogue_options plain;
  epilogue_options rope_far = rope;
  rope_far.start_position = 4099;
  epilogue_options rope_hadamard = rope;
  rope_hadamard.hadamard = true;
  epilogue_options hadamard;
  hadamard.hadamard = true;
  v.push_back({"fp32 in, fp32 bias, norm, rope", {false, true, false, true}, rope});
  v.push_back({"bf16 in, bf16 bias, norm, rope at 4099", {true, true, true, true}, rope_far});
  v.push_back({"fp32 in, no bias, no norm", {false, false, false, false}, plain});
  v.push_back({"bf16 in, fp32 bias, norm, rope, hadamard", {true, true, false, true}, rope_hadamard});
  v.push_back({"fp32 in, bf16 bias, no norm, hadamard", {false, true, true, false}, hadamard});
  return v;
}

}  // namespace

TEST_CASE("compress: every (m, d), element type and epilogue against the double reference", "[gpu][compress]") {
  const device_rope_table table(yarn_table());
  const std::vector<variant> vs = variants();
  std::uint64_t seed = 1;
  for (const auto& [ratio, d] : {std::pair{4, 512}, std::pair{128, 512}, std::pair{4, 128}, std::pair{128, 128}}) {
    for (const variant& v : vs) {
      for (const std::int64_t tokens : {std::int64_t{0}, std::int64_t{1}, std::int64_t{ratio - 1},
                                        std::int64_t{ratio}, std::int64_t{ratio + 1}, std::int64_t{4097}}) {
        INFO("m=" << ratio << " d=" << d << " T=" << tokens << " " << v.name);
        const compress_case c = make_compress_case(ratio, d, tokens, v.opt, ++seed);
        const device_compress_case dev(c);
        const std::vector<float> gpu = run_compress(c, dev, v.e, table);
        const std::vector<double> want = reference_rows(c, v.e);
        const double err = max_relative_error(gpu.data(), d, want, c.rows(), d);
        INFO("max relative error " << err);
        CHECK(err <= compress_tolerance);
      }
    }
  }
}

TEST_CASE("compress: scores far from zero, sharply peaked, saturated and tied, against the double reference",
          "[gpu][compress]") {
  // The softmax weight is exp(z - max) in FP32 (softmax_exp: ex2.approx or expf): scores far from
  // zero must cancel in the difference, not overflow, and a tie must split the weight evenly. Every
  // score below is exact in FP32 (and BF16 where used), so the double reference sees the GPU's
  // scores: (0, 1) shifted by +-1000 after rounding to 1/64 (FP32 inputs; 1000 + k/64 needs more than
  // BF16's 8 significant bits), (2) scaled by 64 (a sharply peaked softmax), (3) scaled by 2^100
  // (~1e30: the largest slot of each channel takes all the weight; BF16's ties split it), (4) all
  // equal (uniform weights). No position bias: its FP32 add would be lost next to such scores.
  const device_rope_table table(yarn_table());
  const epilogue_options plain;  // compress and RMSNorm alone
  std::uint64_t seed = 4242;
  for (const auto& [ratio, d] : {std::pair{4, 512}, std::pair{128, 512}, std::pair{4, 128}}) {
    for (const bool bf16 : {false, true}) {
      for (int mode = bf16 ? 2 : 0; mode < 5; ++mode) {
        INFO("m=" << ratio << " d=" << d << (bf16 ? " bf16" : " fp32") << " scores mode " << mode
                  << " (0: +1000, 1: -1000, 2: x64, 3: x2^100, 4: all equal)");
        compress_case c = make_compress_case(ratio, d, 16 * ratio + 3, compress_options{bf16, false, false, true}, ++seed);
        for (std::size_t i = 0; i < c.gate.size(); ++i) {
          float g = c.gate[i];
          if (mode == 0 || mode == 1) g = std::round(g * 64.0f) / 64.0f + (mode == 0 ? 1000.0f : -1000.0f);
          if (mode == 2) g = std::ldexp(g, 6);
          if (mode == 3) g = std::ldexp(g, 100);
          if (mode == 4) g = 7.0f;
          c.gate[i] = g;
          if (bf16) {
            c.gate_bits[i] = bf16_encode(g);
            REQUIRE(bf16_decode(c.gate_bits[i]) == g);  // exact: the reference sees the same score
          }
        }
        const device_compress_case dev(c);
        const std::vector<float> gpu = run_compress(c, dev, plain, table);
        const std::vector<double> want = reference_rows(c, plain);
        const double err = max_relative_error(gpu.data(), d, want, c.rows(), d);
        INFO("max relative error " << err);
        CHECK(err <= compress_tolerance);
      }
    }
  }
}

TEST_CASE("compress: per-row positions", "[gpu][compress][rope]") {
  const device_rope_table table(yarn_table());
  const compress_case c = make_compress_case(4, 512, 4097, {}, 77);
  const device_compress_case dev(c);
  const std::int64_t n = c.rows();
  epilogue_options prefill;
  prefill.rope = true;
  prefill.start_position = 3;

  SECTION("positions start + i*m give the prefill bytes") {
    std::vector<std::int32_t> pos(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) pos[i] = static_cast<std::int32_t>(3 + i * 4);
    const device_buffer<std::int32_t> dpos(pos);
    epilogue_options e = prefill;
    e.positions = dpos.get();
    REQUIRE(bytes_of(run_compress(c, dev, e, table)) == bytes_of(run_compress(c, dev, prefill, table)));
  }
  SECTION("arbitrary positions match the reference") {
    fast_rng rng(5);
    std::vector<std::int32_t> pos(static_cast<std::size_t>(n));
    for (auto& p : pos) p = static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(yarn_table().max_pos));
    const device_buffer<std::int32_t> dpos(pos);
    epilogue_options e = prefill;
    e.positions = dpos.get();
    const std::vector<float> gpu = run_compress(c, dev, e, table);
    const double err = max_relative_error(gpu.data(), c.d, reference_rows(c, e, &pos), n, c.d);
    INFO("max relative error " << err);
    CHECK(err <= compress_tolerance);
  }
  SECTION("a position outside the table turns exactly the rotated channels to NaN") {
    std::vector<std::int32_t> pos(static_cast<std::size_t>(n), 100);
    pos[0] = -1;
    pos[n - 1] = static_cast<std::int32_t>(yarn_table().max_pos);
    const device_buffer<std::int32_t> dpos(pos), dgood(std::vector<std::int32_t>(pos.size(), 100));
    epilogue_options bad = prefill, good = prefill;
    bad.positions = dpos.get();
    good.positions = dgood.get();
    const std::vector<float> got = run_compress(c, dev, bad, table), ok = run_compress(c, dev, good, table);
    const std::int64_t rope_from = c.d - yarn_table().rope_dim;
    std::size_t wrong = 0;
    for (std::int64_t r = 0; r < n; ++r) {
      const bool bad_row = r == 0 || r == n - 1;
      for (std::int64_t j = 0; j < c.d; ++j) {
        const float g = got[r * c.d + j], o = ok[r * c.d + j];
        if (bad_row && j >= rope_from) {
          wrong += !std::isnan(g);
        } else {
          wrong += std::memcmp(&g, &o, 4) != 0;
        }
      }
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("compress: the fused epilogue equals the standalone RoPE and Hadamard stages bit for bit",
          "[gpu][compress][rope][hadamard]") {
  const device_rope_table table(yarn_table());
  for (const auto& [ratio, d] : {std::pair{4, 512}, std::pair{128, 512}, std::pair{4, 128}, std::pair{128, 128}}) {
    INFO("m=" << ratio << " d=" << d);
    const compress_case c = make_compress_case(ratio, d, 4097, {}, 900 + ratio + d);
    const device_compress_case dev(c);
    const std::int64_t n = c.rows();
    epilogue_options fused;
    fused.rope = true;
    fused.start_position = 11;
    fused.hadamard = true;
    const std::vector<float> want = run_compress(c, dev, fused, table);

    const guarded_array<float> rows(n, d, d);
    const tensor_view<float> view = rows.view();
    REQUIRE(with_params(c, dev, epilogue_options{}, table.view,
                        [&](const auto& p) { return compress(p, view, nullptr); }) == status::ok);
    rope_params rp;
    rp.table = table.view;
    rp.start_position = 11;
    rp.ratio = ratio;
    REQUIRE(rope(view, rp, nullptr) == status::ok);
    REQUIRE(hadamard_rotate(view, nullptr) == status::ok);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(bytes_of(rows.checked()) == bytes_of(want));
  }
}

TEST_CASE("rope and hadamard_rotate: standalone stages against the reference", "[gpu][rope][hadamard]") {
  const device_rope_table table(yarn_table());
  fast_rng rng(31);
  enum class stage { hadamard, rope_prefill, rope_positions };
  for (const std::int64_t d : {128, 512}) {
    for (const stage st : {stage::hadamard, stage::rope_prefill, stage::rope_positions}) {
      INFO("d=" << d << " stage " << static_cast<int>(st));
      const std::int64_t n = 1001, stride = d + 8;
      std::vector<float> x(static_cast<std::size_t>(n * stride));
      for (float& v : x) v = rng.normal() * rng.log_uniform(0.25, 4.0);
      std::vector<double> want(static_cast<std::size_t>(n * d));
      for (std::int64_t r = 0; r < n; ++r) {
        for (std::int64_t j = 0; j < d; ++j) want[r * d + j] = x[r * stride + j];
      }
      // The rows in place, between guard bands, with sentinel gaps (row stride d + 8).
      guarded_array<float> dx(n, d, stride);
      std::vector<float> dense(static_cast<std::size_t>(n * d));
      for (std::int64_t r = 0; r < n; ++r) std::copy_n(x.begin() + r * stride, d, dense.begin() + r * d);
      dx.upload(dense);
      const tensor_view<float> view = dx.view();
      const tensor_view<double> ref_view = make_tensor_view(want.data(), n, d);
      std::vector<std::int32_t> pos(static_cast<std::size_t>(n));
      for (auto& q : pos) q = static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(yarn_table().max_pos));
      const device_buffer<std::int32_t> dpos(pos);
      rope_params p;
      p.table = table.view;
      switch (st) {
        case stage::hadamard:
          REQUIRE(hadamard_rotate(view, nullptr) == status::ok);
          REQUIRE(ref::hadamard_rotate(ref_view) == status::ok);
          break;
        case stage::rope_prefill:
          p.start_position = 7;  // rows sit at 7 + 64 i: the last at 64007, inside the table
          p.ratio = 64;
          REQUIRE(rope(view, p, nullptr) == status::ok);
          REQUIRE(ref::rope_prefill(ref_view, 7, 64, yarn_table().view()) == status::ok);
          break;
        case stage::rope_positions:
          p.positions = dpos.get();
          REQUIRE(rope(view, p, nullptr) == status::ok);
          REQUIRE(ref::rope(ref_view, span<const std::int32_t>{pos.data(), n}, yarn_table().view()) == status::ok);
          break;
      }
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
      const std::vector<float> got = dx.checked();  // the gaps between rows and the guard bands unchanged
      const double err = max_relative_error(got.data(), d, want, n, d);
      INFO("max relative error " << err);
      CHECK(err <= compress_tolerance);
    }
  }
}

TEST_CASE("compress: two runs give identical bytes", "[gpu][compress]") {
  const device_rope_table table(yarn_table());
  for (const auto& [ratio, d] : {std::pair{4, 512}, std::pair{128, 512}, std::pair{4, 128}}) {
    INFO("m=" << ratio << " d=" << d);
    const compress_case c = make_compress_case(ratio, d, 4097, {true, true, true, true}, 4242);
    const device_compress_case dev(c);
    epilogue_options e;
    e.rope = true;
    e.hadamard = d == 128;
    CHECK(bytes_of(run_compress(c, dev, e, table)) == bytes_of(run_compress(c, dev, e, table)));
  }
}

TEST_CASE("compress: bad arguments return their status, launch nothing and write nothing", "[gpu][compress][validation]") {
  const device_rope_table table(yarn_table());
  const compress_case c = make_compress_case(4, 512, 64, {}, 99);
  const device_compress_case dev(c);
  const std::int64_t n = c.rows(), d = c.d, width = c.width;
  device_buffer<float> out(static_cast<std::size_t>(n * d + 64));
  out.fill_bytes(sentinel_byte);
  const tensor_view<float> good_out = make_tensor_view(out.get(), n, d);
  epilogue_options e;
  e.rope = true;
  const compress_params<float, float> good = make_params<float, float>(c, dev, e, table.view);
  REQUIRE(good.kv.data != nullptr);

  const auto expect = [&](const compress_params<float, float>& p, tensor_view<float> o, status want) {
    CHECK(compress(p, o, nullptr) == want);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(out));
  };
  SECTION("null pointers") {
    auto p = good;
    p.kv.data = nullptr;
    expect(p, good_out, status::null_pointer);
    p = good;
    p.gate.data = nullptr;
    expect(p, good_out, status::null_pointer);
    p = good;
    p.rope.cos = nullptr;
    expect(p, good_out, status::null_pointer);
    expect(good, {nullptr, n, d, d}, status::null_pointer);
  }
  SECTION("sizes") {
    auto p = good;
    p.gate.rows = -1;
    expect(p, good_out, status::invalid_argument);
    expect(good, {out.get(), n + 1, d, d}, status::invalid_argument);
    expect(good, {out.get(), -1, d, d}, status::invalid_argument);
    p = good;
    p.kv.cols = width - 4;
    p.gate.cols = width - 4;
    expect(p, good_out, status::invalid_argument);
    p = good;
    p.eps = -1.0f;
    expect(p, good_out, status::invalid_argument);
    p.eps = std::nanf("");
    expect(p, good_out, status::invalid_argument);
    p = good;
    p.start_position = -4;
    expect(p, good_out, status::invalid_argument);
    p.start_position = yarn_table().max_pos - 4 * (n - 1);  // the last row's position is max_pos
    expect(p, good_out, status::invalid_argument);
  }
  SECTION("unsupported shapes: (m, d) without a kernel, d % 16 != 0, rope_dim") {
    auto p = good;
    p.ratio = 8;
    expect(p, {out.get(), 8, d, d}, status::unsupported_shape);
    p.ratio = 0;
    expect(p, good_out, status::unsupported_shape);
    p = good;
    p.kv.cols = p.gate.cols = 2 * 256;
    expect(p, {out.get(), n, 256, 256}, status::unsupported_shape);
    p.kv.cols = p.gate.cols = 2 * 100;
    expect(p, {out.get(), n, 100, 100}, status::unsupported_shape);
    p = good;
    p.rope.rope_dim = 6;
    expect(p, good_out, status::unsupported_shape);
    p.rope.rope_dim = 2 * static_cast<int>(d);
    expect(p, good_out, status::unsupported_shape);
  }
  SECTION("misaligned pointers and strides") {
    auto p = good;
    p.kv = {good.kv.data + 1, c.tokens - 1, width, width};
    p.gate.rows = c.tokens - 1;
    expect(p, {out.get(), (c.tokens - 1) / 4, d, d}, status::misaligned);
    p = good;
    p.kv.row_stride = p.gate.row_stride = width + 2;
    p.kv.rows = p.gate.rows = c.tokens / 2;
    expect(p, {out.get(), c.tokens / 8, d, d}, status::misaligned);
    p = good;
    p.position_bias = good.position_bias + 2;
    expect(p, good_out, status::misaligned);
    p = good;
    p.norm_weight = good.norm_weight + 1;
    expect(p, good_out, status::misaligned);
    p = good;
    p.rope.cos = table.view.cos + 1;
    expect(p, good_out, status::misaligned);
    expect(good, {out.get() + 1, n, d, d}, status::misaligned);
    expect(good, {out.get(), n, d, d + 2}, status::misaligned);
    // BF16 projections need 8-byte alignment.
    const compress_case cb = make_compress_case(4, 512, 64, {true, true, true, true}, 98);
    const device_compress_case devb(cb);
    auto pb = make_params<std::uint16_t, std::uint16_t>(cb, devb, e, table.view);
    pb.kv = {pb.kv.data + 2, 60, width, width};
    pb.gate.rows = 60;
    CHECK(compress(pb, {out.get(), 15, d, d}, nullptr) == status::misaligned);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(out));
  }
  SECTION("output overlapping an input") {
    // Each input gets its own buffer here, so only the intended overlap exists.
    device_buffer<float> big(static_cast<std::size_t>(c.tokens * width));
    big.fill_bytes(sentinel_byte);
    auto p = good;
    p.kv.data = big.get();
    expect(p, {big.get() + 16, n, d, d}, status::aliasing);
    CHECK(untouched(big));
    p = good;
    p.gate.data = big.get();
    expect(p, {big.get() + 4 * width, n, d, d}, status::aliasing);
    CHECK(untouched(big));
    p = good;
    p.norm_weight = big.get() + 8;
    expect(p, {big.get(), n, d, d}, status::aliasing);
    p = good;
    p.position_bias = big.get() + 64;
    expect(p, {big.get(), n, d, d}, status::aliasing);
    p = good;
    p.positions = reinterpret_cast<const std::int32_t*>(big.get() + 4);
    expect(p, {big.get(), n, d, d}, status::aliasing);
    CHECK(untouched(big));
  }
  SECTION("fewer tokens than one block: success, nothing written") {
    auto p = good;
    p.kv.rows = p.gate.rows = 3;
    expect(p, {out.get(), 0, d, d}, status::ok);
    p.kv = {nullptr, 0, width, width};
    p.gate = {nullptr, 0, width, width};
    expect(p, {nullptr, 0, d, d}, status::ok);
  }
}

TEST_CASE("rope and hadamard_rotate: bad arguments return their status and write nothing", "[gpu][rope][hadamard][validation]") {
  const device_rope_table table(yarn_table());
  const std::int64_t n = 40, d = 512;
  device_buffer<float> rows(static_cast<std::size_t>(n * d));
  rows.fill_bytes(sentinel_byte);
  const tensor_view<float> view = make_tensor_view(rows.get(), n, d);
  rope_params good;
  good.table = table.view;
  good.ratio = 4;
  const auto expect_rope = [&](tensor_view<float> v, const rope_params& p, status want) {
    CHECK(rope(v, p, nullptr) == want);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(rows));
  };
  const auto expect_hadamard = [&](tensor_view<float> v, status want) {
    CHECK(hadamard_rotate(v, nullptr) == want);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(rows));
  };
  expect_rope({nullptr, n, d, d}, good, status::null_pointer);
  expect_rope({rows.get(), -1, d, d}, good, status::invalid_argument);
  auto p = good;
  p.table.sin = nullptr;
  expect_rope(view, p, status::null_pointer);
  p = good;
  p.table.rope_dim = 0;
  expect_rope(view, p, status::unsupported_shape);
  p.table.rope_dim = 62;
  expect_rope(view, p, status::unsupported_shape);
  p = good;
  p.ratio = 0;
  expect_rope(view, p, status::invalid_argument);
  p = good;
  p.start_position = table.view.max_pos - 4 * (n - 1);
  expect_rope(view, p, status::invalid_argument);
  expect_rope({rows.get() + 2, n - 1, d, d}, good, status::misaligned);
  expect_rope({rows.get(), n / 2, d, d + 1}, good, status::misaligned);
  p = good;
  p.positions = reinterpret_cast<const std::int32_t*>(rows.get() + d);
  expect_rope(view, p, status::aliasing);
  p = good;
  p.table.cos = rows.get();
  p.table.max_pos = 8;  // two rows at positions 0 and 4 fit this table; its cos overlaps row 0
  expect_rope({rows.get(), 2, d, d}, p, status::aliasing);
  expect_rope({rows.get(), 0, d, d}, good, status::ok);

  expect_hadamard({nullptr, n, d, d}, status::null_pointer);
  expect_hadamard({rows.get(), -2, d, d}, status::invalid_argument);
  expect_hadamard({rows.get(), n, 256, 256}, status::unsupported_shape);
  expect_hadamard({rows.get(), n, 100, 100}, status::unsupported_shape);
  expect_hadamard({rows.get() + 1, n - 1, d, d}, status::misaligned);
  expect_hadamard({rows.get(), n / 2, d, d + 2}, status::misaligned);
  expect_hadamard({rows.get(), 0, d, d}, status::ok);
}
