// SPDX-License-Identifier: Apache-2.0
// GPU NVFP4 and FP8 row quantization (the two-kernel amax -> quantize chain, SPEC §5-6) against
// the host reference encoders, bit for bit, on the same FP32 input; output guard bands; bad
// arguments leave every output byte unchanged.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // before device_buffer.hpp: its cudaMalloc(&T*) needs the template overload

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "device_buffer.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/quantize_fp8.hpp"
#include "dsv4kv/quantize_nvfp4.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "float_corpus.hpp"
#include "write_path_fixtures.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

// Rows [n, d] in a buffer of row stride d + 4 covering the cases of SPEC §5-6: realistic data
// over a huge range of row scales, zero rows, NaN / +Inf / -Inf rows, subnormal rows (S_enc
// clamped to FLT_MAX), rows near FLT_MAX, rows whose small blocks get a zero block scale, E2M1 and
// E4M3 ties, one-hot rows, random finite bit patterns.
std::vector<float> make_rows(std::int64_t n, std::int64_t d, std::int64_t stride, std::uint64_t seed) {
  fast_rng rng(seed);
  std::vector<float> x(static_cast<std::size_t>(n * stride), 12345.0f);  // padding: never read as data
  for (std::int64_t r = 0; r < n; ++r) {
    float* row = x.data() + r * stride;
    const int kind = static_cast<int>(r % 12);
    const float row_scale = std::ldexp(1.0f, static_cast<int>(rng.next() % 61) - 30);
    for (std::int64_t j = 0; j < d; ++j) {
      float v = rng.normal() * row_scale * rng.log_uniform(0.25, 4.0);
      switch (kind) {
        case 2: v = 0.0f; break;
        case 6: {  // subnormal
          const std::uint32_t sign = (rng.next() & 1u) ? 0x80000000u : 0u;
          v = from_bits(sign | static_cast<std::uint32_t>(rng.next() % 0x00800000u));
          break;
        }
        case 7: v = (rng.next() & 1u ? -1.0f : 1.0f) * FLT_MAX * static_cast<float>(0.5 + 0.5 * rng.uniform()); break;
        case 8: if ((j / 16) % 3 == 1) v *= 1e-30f; break;
        case 9: v = e2m1_decode(static_cast<std::uint8_t>(rng.next() % 16)) * 1.25f * row_scale; break;
        case 10: v = j == static_cast<std::int64_t>(rng.next() % static_cast<std::uint64_t>(d)) ? row_scale : 0.0f; break;
        case 11: {
          std::uint32_t u;
          do { u = static_cast<std::uint32_t>(rng.next()); } while ((u & 0x7F800000u) == 0x7F800000u);
          v = from_bits(u);
          break;
        }
        default: break;
      }
      row[j] = v;
    }
    const std::int64_t at = static_cast<std::int64_t>(rng.next() % static_cast<std::uint64_t>(d));
    if (kind == 3) row[at] = from_bits(rng.next() & 1u ? 0x7FC00000u : 0xFFC00001u);
    if (kind == 4) row[at] = std::numeric_limits<float>::infinity();
    if (kind == 5) row[at] = -std::numeric_limits<float>::infinity();
  }
  return x;
}

struct nvfp4_device_out {
  guarded codes, scales, global, amax;
  nvfp4_device_out(std::int64_t n, std::int64_t d)
      : codes(n * d / 2), scales(n * d / 16), global(n * 4), amax(n * 4) {}
  nvfp4_rows rows(std::int64_t n, std::int64_t d) const { return {codes.data(), scales.data(), global.f32(), n, d}; }
};

struct fp8_device_out {
  guarded codes, scales, amax;
  fp8_device_out(std::int64_t n, std::int64_t d) : codes(n * d), scales(n * 4), amax(n * 4) {}
  fp8_rows rows(std::int64_t n, std::int64_t d) const { return {codes.data(), scales.f32(), n, d}; }
};

}  // namespace

TEST_CASE("quantize_nvfp4: bytes equal ref::encode_nvfp4 on the same FP32 rows", "[gpu][quantize][nvfp4]") {
  std::uint64_t seed = 10;
  for (const std::int64_t d : {16, 128, 512, 1040, 2048}) {
    for (const std::int64_t n : {0, 1, 7, 4097}) {
      INFO("rows=" << n << " d=" << d);
      const std::int64_t stride = d + 4;
      const std::vector<float> x = make_rows(n, d, stride, ++seed);
      const device_buffer<float> dx(x);
      nvfp4_device_out out(n, d);
      REQUIRE(quantize_nvfp4({dx.get(), n, d, stride}, out.rows(n, d), out.amax.f32(), nullptr) == status::ok);
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);

      std::vector<std::uint8_t> codes(static_cast<std::size_t>(n * d / 2)), scales(static_cast<std::size_t>(n * d / 16));
      std::vector<float> global(static_cast<std::size_t>(n));
      REQUIRE(ref::encode_nvfp4({x.data(), n, d, stride}, {codes.data(), scales.data(), global.data(), n, d}) == status::ok);
      CHECK(out.codes.checked() == codes);
      CHECK(out.scales.checked() == scales);
      CHECK(out.global.checked() == bytes_of(global));
      CHECK(out.amax.checked() == bytes_of(packed_row_amax(x.data(), n, d, stride)));
    }
  }
}

TEST_CASE("quantize_fp8: bytes equal ref::encode_fp8 on the same FP32 rows, both scale modes", "[gpu][quantize][fp8]") {
  std::uint64_t seed = 50;
  for (const fp8_scale_mode mode : {fp8_scale_mode::fp32, fp8_scale_mode::pow2}) {
    for (const std::int64_t d : {16, 128, 512, 1040}) {
      for (const std::int64_t n : {0, 1, 7, 4097}) {
        INFO("rows=" << n << " d=" << d << " mode=" << static_cast<int>(mode));
        const std::int64_t stride = d + 4;
        const std::vector<float> x = make_rows(n, d, stride, ++seed);
        const device_buffer<float> dx(x);
        fp8_device_out out(n, d);
        REQUIRE(quantize_fp8({dx.get(), n, d, stride}, mode, out.rows(n, d), out.amax.f32(), nullptr) == status::ok);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);

        std::vector<std::uint8_t> codes(static_cast<std::size_t>(n * d));
        std::vector<float> scales(static_cast<std::size_t>(n));
        REQUIRE(ref::encode_fp8({x.data(), n, d, stride}, mode, {codes.data(), scales.data(), n, d}) == status::ok);
        CHECK(out.codes.checked() == codes);
        CHECK(out.scales.checked() == bytes_of(scales));
        CHECK(out.amax.checked() == bytes_of(packed_row_amax(x.data(), n, d, stride)));
      }
    }
  }
}

TEST_CASE("quantize: two runs give identical bytes", "[gpu][quantize]") {
  const std::int64_t n = 4097, d = 512;
  const std::vector<float> x = make_rows(n, d, d, 7);
  const device_buffer<float> dx(x);
  nvfp4_device_out a(n, d), b(n, d);
  REQUIRE(quantize_nvfp4({dx.get(), n, d, d}, a.rows(n, d), a.amax.f32(), nullptr) == status::ok);
  REQUIRE(quantize_nvfp4({dx.get(), n, d, d}, b.rows(n, d), b.amax.f32(), nullptr) == status::ok);
  fp8_device_out c(n, d), e(n, d);
  REQUIRE(quantize_fp8({dx.get(), n, d, d}, fp8_scale_mode::fp32, c.rows(n, d), c.amax.f32(), nullptr) == status::ok);
  REQUIRE(quantize_fp8({dx.get(), n, d, d}, fp8_scale_mode::fp32, e.rows(n, d), e.amax.f32(), nullptr) == status::ok);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(a.codes.checked() == b.codes.checked());
  CHECK(a.scales.checked() == b.scales.checked());
  CHECK(a.global.checked() == b.global.checked());
  CHECK(c.codes.checked() == e.codes.checked());
  CHECK(c.scales.checked() == e.scales.checked());
}

TEST_CASE("quantize_nvfp4: bad arguments return their status and write nothing", "[gpu][quantize][nvfp4][validation]") {
  const std::int64_t n = 33, d = 128;
  const device_buffer<float> dx(make_rows(n, d, d, 3));
  nvfp4_device_out out(n, d);
  const tensor_view<const float> x{dx.get(), n, d, d};
  const nvfp4_rows good = out.rows(n, d);
  float* amax = out.amax.f32();
  const auto expect = [&](tensor_view<const float> xv, const nvfp4_rows& o, float* scratch, status want) {
    CHECK(quantize_nvfp4(xv, o, scratch, nullptr) == want);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(out.codes));
    CHECK(untouched(out.scales));
    CHECK(untouched(out.global));
    CHECK(untouched(out.amax));
  };
  auto o = good;
  expect({nullptr, n, d, d}, good, amax, status::null_pointer);
  o.codes = nullptr;
  expect(x, o, amax, status::null_pointer);
  o = good;
  o.block_scales = nullptr;
  expect(x, o, amax, status::null_pointer);
  o = good;
  o.global_scales = nullptr;
  expect(x, o, amax, status::null_pointer);
  expect(x, good, nullptr, status::null_pointer);
  o = good;
  o.rows = -1;
  expect({dx.get(), -1, d, d}, o, amax, status::invalid_argument);
  o = good;
  o.rows = n - 1;
  expect(x, o, amax, status::invalid_argument);
  o = good;
  o.d = 24;  // not a multiple of 16
  expect({dx.get(), n, 24, d}, o, amax, status::unsupported_shape);
  o.d = 0;
  expect({dx.get(), n, 0, d}, o, amax, status::unsupported_shape);
  expect({dx.get() + 1, n - 1, d, d}, {good.codes, good.block_scales, good.global_scales, n - 1, d}, amax, status::misaligned);
  expect({dx.get(), n / 2, d, d + 2}, {good.codes, good.block_scales, good.global_scales, n / 2, d}, amax, status::misaligned);
  o = good;
  o.codes = good.codes + 1;
  expect(x, o, amax, status::misaligned);
  o = good;
  o.global_scales = reinterpret_cast<float*>(out.global.data() + 2);
  expect(x, o, amax, status::misaligned);
  expect(x, good, reinterpret_cast<float*>(out.amax.data() + 1), status::misaligned);
  // Overlaps: output with input, outputs with each other, scratch with an output.
  o = good;
  o.codes = reinterpret_cast<std::uint8_t*>(const_cast<float*>(dx.get())) + 64;
  expect(x, o, amax, status::aliasing);
  o = good;
  o.block_scales = good.codes + 16;
  expect(x, o, amax, status::aliasing);
  expect(x, good, good.global_scales + 3, status::aliasing);
  // No rows: success, nothing launched.
  expect({dx.get(), 0, d, d}, {good.codes, good.block_scales, good.global_scales, 0, d}, amax, status::ok);
}

TEST_CASE("quantize_fp8: bad arguments return their status and write nothing", "[gpu][quantize][fp8][validation]") {
  const std::int64_t n = 33, d = 128;
  const device_buffer<float> dx(make_rows(n, d, d, 4));
  fp8_device_out out(n, d);
  const tensor_view<const float> x{dx.get(), n, d, d};
  const fp8_rows good = out.rows(n, d);
  float* amax = out.amax.f32();
  const auto expect = [&](tensor_view<const float> xv, fp8_scale_mode mode, const fp8_rows& o, float* scratch,
                          status want) {
    CHECK(quantize_fp8(xv, mode, o, scratch, nullptr) == want);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(out.codes));
    CHECK(untouched(out.scales));
    CHECK(untouched(out.amax));
  };
  const fp8_scale_mode m = fp8_scale_mode::fp32;
  auto o = good;
  expect(x, static_cast<fp8_scale_mode>(7), good, amax, status::invalid_argument);
  expect({nullptr, n, d, d}, m, good, amax, status::null_pointer);
  o.codes = nullptr;
  expect(x, m, o, amax, status::null_pointer);
  o = good;
  o.scales = nullptr;
  expect(x, m, o, amax, status::null_pointer);
  expect(x, m, good, nullptr, status::null_pointer);
  o = good;
  o.rows = n + 1;
  expect(x, m, o, amax, status::invalid_argument);
  o = good;
  o.d = 40;
  expect({dx.get(), n, 40, d}, m, o, amax, status::unsupported_shape);
  expect({dx.get() + 2, n - 1, d, d}, m, {good.codes, good.scales, n - 1, d}, amax, status::misaligned);
  o = good;
  o.codes = good.codes + 2;
  expect(x, m, o, amax, status::misaligned);
  o = good;
  o.scales = reinterpret_cast<float*>(out.scales.data() + 1);
  expect(x, m, o, amax, status::misaligned);
  o = good;
  o.codes = reinterpret_cast<std::uint8_t*>(const_cast<float*>(dx.get()));
  expect(x, m, o, amax, status::aliasing);
  o = good;
  o.scales = reinterpret_cast<float*>(good.codes + 64);
  expect(x, m, o, amax, status::aliasing);
  expect(x, m, good, good.scales + 1, status::aliasing);
  expect({dx.get(), 0, d, d}, m, {good.codes, good.scales, 0, d}, amax, status::ok);
}
