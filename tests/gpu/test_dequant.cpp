// SPDX-License-Identifier: Apache-2.0
// The read path (dequant.hpp, SPEC §8) on the GPU against the host reference (ref::decode_*):
// bit-exact BF16 (and FP32) on random encoded rows and on every (code, block scale) byte pair,
// selective and batched selective dequant with bad / repeated indices, strided outputs with guard
// bands, empty work, every validation error (status returned, output untouched), 64-bit pool
// offsets, CUDA-graph capture and determinism.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // (not _api.h: device_buffer.hpp needs the typed cudaMalloc overload)

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <type_traits>
#include <vector>

#include "device_buffer.hpp"
#include "guarded_buffer.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "float_corpus.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

constexpr std::uint16_t sentinel_bf16 = 0xA5A5;
constexpr std::uint32_t sentinel_f32 = 0xA5A5A5A5u;

template <class T>
std::uint32_t sentinel_bits() {
  return sizeof(T) == 2 ? sentinel_bf16 : sentinel_f32;
}

std::uint32_t bits_of(std::uint16_t v) { return v; }
std::uint32_t bits_of(float v) { return to_bits(v); }

// Equal bits, or both NaN (a NaN's payload differs between the CPU and the GPU; BF16 NaN is always
// the canonical 0x7FFF on both, so BF16 is compared bit for bit).
bool same_value(std::uint16_t a, std::uint16_t b) { return a == b; }
bool same_value(float a, float b) { return to_bits(a) == to_bits(b) || (std::isnan(a) && std::isnan(b)); }

// Gaussian rows with a per-row scale 2^U(-60, 60) (g spans ~120 binades), plus special rows:
// all zero, a NaN, a +Inf, -Inf, zero blocks (block scale byte 0), subnormal-sized values, values
// near FLT_MAX, and a single non-zero value.
std::vector<float> random_rows(std::int64_t rows, std::int64_t d, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-60.0f, 60.0f);
  std::vector<float> x(static_cast<std::size_t>(rows * d));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float scale = std::exp2(exponent(rng));
    for (std::int64_t k = 0; k < d; ++k) x[r * d + k] = normal(rng) * scale;
  }
  auto row = [&](std::int64_t r) { return x.data() + r * d; };
  if (rows > 9) {
    std::fill(row(1), row(1) + d, 0.0f);
    row(2)[d / 3] = NAN;
    row(3)[d - 1] = INFINITY;
    row(4)[0] = -INFINITY;
    std::fill(row(5), row(5) + 16, 0.0f);              // block 0 zero
    std::fill(row(5) + 48, row(5) + 64, 0.0f);         // block 3 zero
    for (std::int64_t k = 0; k < d; ++k) row(6)[k] = normal(rng) * 1e-39f;  // subnormal values
    for (std::int64_t k = 0; k < d; ++k) row(7)[k] = normal(rng) * 4e37f;   // near FLT_MAX
    row(7)[5] = FLT_MAX;
    std::fill(row(8), row(8) + d, 0.0f);
    row(8)[d / 2] = -3.0f;
    for (std::int64_t k = 0; k < d; ++k) row(9)[k] = (k % 16 == 0) ? 1e30f : normal(rng);  // wide blocks
  }
  return x;
}

// Scale values for raw-byte rows: ordinary, signed zeros, subnormal, the 2^121 boundary of the
// kernel's fast path, FLT_MAX, infinities, NaNs, and random bit patterns of every exponent.
std::vector<float> scale_corpus() {
  std::vector<float> g = {1.0f, -1.0f, 0.0f, -0.0f, 0.5f, 3.0f, 1.0f / 2688.0f, 2688.0f, 7.3e-12f,
                          FLT_MIN, FLT_MIN / 2.0f, from_bits(1u), from_bits(0x00000003u), 1.5f * FLT_MIN,
                          std::ldexp(1.0f, 100), std::ldexp(1.0f, 120), std::ldexp(1.0f, 121),
                          std::nextafter(std::ldexp(1.0f, 121), 0.0f), 1.5f * std::ldexp(1.0f, 121),
                          FLT_MAX / 128.0f, std::nextafter(FLT_MAX / 128.0f, INFINITY), std::ldexp(1.0f, 126),
                          FLT_MAX, -FLT_MAX, FLT_MAX / 2688.0f, INFINITY, -INFINITY, from_bits(0x7FC00000u),
                          from_bits(0xFFC00000u), from_bits(0x7F800001u)};
  for (float v : random_bit_patterns(24, 0x5CA1Eu)) g.push_back(v);
  return g;
}

// --- NVFP4 and FP8 pools: host rows, their device copy, the host reference and the GPU calls ------

struct nvfp4_pool {
  std::int64_t rows, d;
  std::vector<std::uint8_t> codes, scales;  // [rows, d/2], [rows, d/16]
  std::vector<float> g;                     // [rows]
  device_buffer<std::uint8_t> d_codes, d_scales;
  device_buffer<float> d_g;

  nvfp4_pool(std::int64_t r, std::int64_t dd)
      : rows(r), d(dd), codes(r * dd / 2), scales(r * dd / 16), g(r), d_codes(r * dd / 2), d_scales(r * dd / 16),
        d_g(r) {}
  static const char* name() { return "nvfp4"; }
  nvfp4_rows host() { return {codes.data(), scales.data(), g.data(), rows, d}; }
  const_nvfp4_rows device() const { return {d_codes.get(), d_scales.get(), d_g.get(), rows, d}; }
  void encode(const std::vector<float>& x) {
    REQUIRE(ref::encode_nvfp4(make_tensor_view(x.data(), rows, d), host()) == status::ok);
  }
  void upload() {
    d_codes.upload(codes);
    d_scales.upload(scales);
    d_g.upload(g);
  }
  // Reference: all rows to BF16 / FP32, selected rows to BF16.
  std::vector<std::uint16_t> ref_bf16() {
    std::vector<std::uint16_t> out(rows * d);
    REQUIRE(ref::decode_nvfp4_bf16(host(), make_tensor_view(out.data(), rows, d)) == status::ok);
    return out;
  }
  std::vector<float> ref_f32() {
    std::vector<float> out(rows * d);
    REQUIRE(ref::decode_nvfp4(host(), make_tensor_view(out.data(), rows, d)) == status::ok);
    return out;
  }
  std::vector<std::uint16_t> ref_selected_bf16(const std::vector<std::int32_t>& idx) {
    std::vector<std::uint16_t> out(idx.size() * d);
    REQUIRE(ref::decode_nvfp4_selected_bf16(host(), {idx.data(), static_cast<std::int64_t>(idx.size())},
                                            make_tensor_view(out.data(), static_cast<std::int64_t>(idx.size()), d)) ==
            status::ok);
    return out;
  }
  template <class OUT>
  static status all(const_nvfp4_rows in, tensor_view<OUT> out, cudaStream_t s) {
    return dequant_nvfp4(in, out, s);
  }
  template <class OUT>
  static status selected(const_nvfp4_rows in, span<const std::int32_t> idx, tensor_view<OUT> out, cudaStream_t s) {
    return dequant_nvfp4_selected(in, idx, out, s);
  }
  template <class OUT>
  static status batched(const_nvfp4_rows in, tensor_view<const std::int32_t> idx, batched_rows_view<OUT> out,
                        cudaStream_t s) {
    return dequant_nvfp4_selected_batched(in, idx, out, s);
  }
};

struct fp8_pool {
  std::int64_t rows, d;
  std::vector<std::uint8_t> codes;  // [rows, d]
  std::vector<float> scales;        // [rows]
  device_buffer<std::uint8_t> d_codes;
  device_buffer<float> d_scales;

  fp8_pool(std::int64_t r, std::int64_t dd) : rows(r), d(dd), codes(r * dd), scales(r), d_codes(r * dd), d_scales(r) {}
  static const char* name() { return "fp8"; }
  fp8_rows host() { return {codes.data(), scales.data(), rows, d}; }
  const_fp8_rows device() const { return {d_codes.get(), d_scales.get(), rows, d}; }
  // Rows alternate between the two scale modes.
  void encode(const std::vector<float>& x) {
    for (std::int64_t r = 0; r < rows; ++r) {
      ref::encode_fp8_row({x.data() + r * d, d}, r % 2 ? fp8_scale_mode::pow2 : fp8_scale_mode::fp32,
                          codes.data() + r * d, scales.data() + r);
    }
  }
  void upload() {
    d_codes.upload(codes);
    d_scales.upload(scales);
  }
  std::vector<std::uint16_t> ref_bf16() {
    std::vector<std::uint16_t> out(rows * d);
    REQUIRE(ref::decode_fp8_bf16(host(), make_tensor_view(out.data(), rows, d)) == status::ok);
    return out;
  }
  std::vector<float> ref_f32() {
    std::vector<float> out(rows * d);
    REQUIRE(ref::decode_fp8(host(), make_tensor_view(out.data(), rows, d)) == status::ok);
    return out;
  }
  std::vector<std::uint16_t> ref_selected_bf16(const std::vector<std::int32_t>& idx) {
    std::vector<std::uint16_t> out(idx.size() * d);
    REQUIRE(ref::decode_fp8_selected_bf16(host(), {idx.data(), static_cast<std::int64_t>(idx.size())},
                                          make_tensor_view(out.data(), static_cast<std::int64_t>(idx.size()), d)) ==
            status::ok);
    return out;
  }
  template <class OUT>
  static status all(const_fp8_rows in, tensor_view<OUT> out, cudaStream_t s) {
    return dequant_fp8(in, out, s);
  }
  template <class OUT>
  static status selected(const_fp8_rows in, span<const std::int32_t> idx, tensor_view<OUT> out, cudaStream_t s) {
    return dequant_fp8_selected(in, idx, out, s);
  }
  template <class OUT>
  static status batched(const_fp8_rows in, tensor_view<const std::int32_t> idx, batched_rows_view<OUT> out,
                        cudaStream_t s) {
    return dequant_fp8_selected_batched(in, idx, out, s);
  }
};

// Raw bytes for every (code, scale byte) pair, each combined with every value of scale_corpus().
// NVFP4: block b of a row gets scale byte (part * blocks + b) and codes 0..15 in order.
void fill_raw(nvfp4_pool& p, const std::vector<float>& gs) {
  const std::int64_t blocks = p.d / 16, parts = 256 / blocks;
  REQUIRE(p.rows == parts * static_cast<std::int64_t>(gs.size()));
  for (std::int64_t r = 0; r < p.rows; ++r) {
    p.g[r] = gs[r / parts];
    for (std::int64_t b = 0; b < blocks; ++b) {
      p.scales[r * blocks + b] = static_cast<std::uint8_t>((r % parts) * blocks + b);
      for (int k = 0; k < 8; ++k) p.codes[r * p.d / 2 + b * 8 + k] = static_cast<std::uint8_t>((2 * k) | ((2 * k + 1) << 4));
    }
  }
}
// FP8: codes 0..255 in order, one scale per row.
void fill_raw(fp8_pool& p, const std::vector<float>& gs) {
  const std::int64_t parts = p.d >= 256 ? 1 : 256 / p.d;
  REQUIRE(p.rows == parts * static_cast<std::int64_t>(gs.size()));
  for (std::int64_t r = 0; r < p.rows; ++r) {
    p.scales[r] = gs[r / parts];
    for (std::int64_t k = 0; k < p.d; ++k) p.codes[r * p.d + k] = static_cast<std::uint8_t>(((r % parts) * p.d + k) % 256);
  }
}
template <class POOL>
std::int64_t raw_rows(std::int64_t d, std::size_t scales) {
  const std::int64_t per = std::is_same_v<POOL, nvfp4_pool> ? 256 / (d / 16) : (d >= 256 ? 1 : 256 / d);
  return per * static_cast<std::int64_t>(scales);
}

// Every element of the rows of a guarded output (tests/common/guarded_buffer.hpp) equals
// want[r * d + k] (NaN-aware for FP32); no byte outside the rows (guard bands, gaps) was written.
template <class T>
void check_output(const guarded_array<T>& out, const std::vector<T>& want, const char* what) {
  DSV4KV_TEST_CUDA(cudaDeviceSynchronize());
  INFO(what);
  const std::vector<T> got = out.checked();
  REQUIRE(got.size() == want.size());
  std::size_t bad_value = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!same_value(got[i], want[i]) && ++bad_value <= 5) {
      std::printf("%s: row %lld col %lld: gpu %08x, reference %08x\n", what, static_cast<long long>(i / out.cols()),
                  static_cast<long long>(i % out.cols()), bits_of(got[i]), bits_of(want[i]));
    }
  }
  CHECK(bad_value == 0);
}

// Full-pool reference in OUT's type.
template <class OUT, class POOL>
std::vector<OUT> reference_all(POOL& p) {
  if constexpr (std::is_same_v<OUT, float>) {
    return p.ref_f32();
  } else {
    return p.ref_bf16();
  }
}
// Selected-rows reference in OUT's type (FP32: picked from the full-pool reference, +0 when invalid).
template <class OUT, class POOL>
std::vector<OUT> reference_selected(POOL& p, const std::vector<std::int32_t>& idx) {
  if constexpr (std::is_same_v<OUT, float>) {
    const std::vector<float> all = p.ref_f32();
    std::vector<float> out(idx.size() * p.d, 0.0f);
    for (std::size_t i = 0; i < idx.size(); ++i) {
      if (idx[i] >= 0 && idx[i] < p.rows) std::copy_n(all.begin() + idx[i] * p.d, p.d, out.begin() + i * p.d);
    }
    return out;
  } else {
    return p.ref_selected_bf16(idx);
  }
}

template <class OUT, class POOL>
void check_all_rows(POOL& p, std::int64_t pad, const char* what) {
  guarded_array<OUT> out(p.rows, p.d, p.d + pad);
  REQUIRE(POOL::all(p.device(), out.view(), nullptr) == status::ok);
  check_output(out, reference_all<OUT>(p), what);
}

// Random indices into [0, rows) with every kind of bad index, repeats and reversed runs mixed in.
std::vector<std::int32_t> random_indices(std::int64_t k, std::int64_t rows, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(k));
  for (auto& i : idx) i = rows > 0 ? static_cast<std::int32_t>(rng() % rows) : 0;
  const auto r32 = static_cast<std::int32_t>(rows);
  const std::int32_t specials[] = {-1, r32, r32 + 1, -2, INT32_MIN, INT32_MAX, -7, 0, r32 - 1, -1, INT32_MIN + 1};
  for (std::size_t s = 0; s < std::size(specials); ++s) {
    if (s * 7 < idx.size()) idx[s * 7] = specials[s];
  }
  for (std::size_t i = 100; i + 8 < idx.size() && i < 140; ++i) idx[i] = idx[99];  // repeats
  for (std::size_t i = 200; i < idx.size() && i < 260; ++i) idx[i] = static_cast<std::int32_t>(rows - 1 - (i - 200) % (rows > 0 ? rows : 1));
  return idx;
}

template <class OUT, class POOL>
void check_selected(POOL& p, std::int64_t k, std::int64_t pad, std::uint32_t seed, const char* what) {
  const std::vector<std::int32_t> idx = random_indices(k, p.rows, seed);
  device_buffer<std::int32_t> d_idx(idx);
  guarded_array<OUT> out(k, p.d, p.d + pad);
  REQUIRE(POOL::selected(p.device(), {d_idx.get(), k}, out.view(), nullptr) == status::ok);
  check_output(out, reference_selected<OUT>(p, idx), what);
}

// Batched: `tokens` index lists of k (index row stride k + 5); each token's k rows sit after
// `window` rows of a per-token buffer of window + k + 1 rows (so tokens are slices with gaps).
template <class OUT, class POOL>
void check_batched(POOL& p, std::int64_t tokens, std::int64_t k, std::uint32_t seed, const char* what) {
  const std::int64_t index_stride = k + 5, window = 3, pad = 8, row_stride = p.d + pad;
  const std::int64_t token_rows = window + k + 1, token_stride = token_rows * row_stride;
  std::vector<std::int32_t> idx(static_cast<std::size_t>(tokens * index_stride), -1);
  const std::vector<std::int32_t> random = random_indices(tokens * k, p.rows, seed);
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::copy_n(random.begin() + t * k, k, idx.begin() + t * index_stride);
  }
  device_buffer<std::int32_t> d_idx(idx);
  guarded_array<OUT> buf(tokens * token_rows, p.d, row_stride);  // the whole per-token buffers
  batched_rows_view<OUT> out{buf.view().data + window * row_stride, tokens, k, p.d, row_stride, token_stride};
  REQUIRE(POOL::batched(p.device(), {d_idx.get(), tokens, k, index_stride}, out, nullptr) == status::ok);
  // Expected buffer: each token's rows [window, window + k) from the reference, others sentinel.
  std::vector<OUT> want(static_cast<std::size_t>(tokens * token_rows * p.d));
  std::uint32_t s = sentinel_bits<OUT>();
  for (auto& w : want) std::memcpy(&w, &s, sizeof(OUT));
  const std::vector<OUT> ref = reference_selected<OUT>(p, random);
  for (std::int64_t t = 0; t < tokens; ++t) {
    std::copy_n(ref.begin() + t * k * p.d, k * p.d, want.begin() + (t * token_rows + window) * p.d);
  }
  check_output(buf, want, what);
}

template <class POOL>
void run_random_pool_checks(std::int64_t d) {
  POOL p(4097, d);  // not a multiple of any tile
  p.encode(random_rows(p.rows, d, 0xC0FFEEu + static_cast<std::uint32_t>(d)));
  p.upload();
  INFO(POOL::name() << " d=" << d);
  check_all_rows<std::uint16_t>(p, 0, "all rows bf16, dense");
  check_all_rows<std::uint16_t>(p, 24, "all rows bf16, strided");
  check_all_rows<float>(p, 0, "all rows f32, dense");
  check_all_rows<float>(p, 12, "all rows f32, strided");
  check_selected<std::uint16_t>(p, 3001, 0, 11u, "selected bf16, dense");
  check_selected<std::uint16_t>(p, 3001, 40, 12u, "selected bf16, strided");
  check_selected<float>(p, 1003, 4, 13u, "selected f32, strided");
  check_batched<std::uint16_t>(p, 5, 129, 14u, "batched bf16");
  check_batched<std::uint16_t>(p, 3, 1, 15u, "batched bf16, k = 1");
  check_batched<float>(p, 4, 37, 16u, "batched f32");

  // Special rows decode as the reference says, and explicitly: NaN rows to NaN, zero rows to +0.
  const std::vector<std::uint16_t> ref = p.ref_bf16();
  for (std::int64_t r : {2, 3, 4}) {
    for (std::int64_t k = 0; k < d; ++k) REQUIRE(ref[r * d + k] == 0x7FFF);
  }
  for (std::int64_t k = 0; k < d; ++k) REQUIRE(ref[1 * d + k] == 0);
}

template <class POOL>
void run_raw_byte_checks(std::int64_t d) {
  const std::vector<float> gs = scale_corpus();
  POOL p(raw_rows<POOL>(d, gs.size()), d);
  fill_raw(p, gs);
  p.upload();
  INFO(POOL::name() << " d=" << d << " raw bytes");
  check_all_rows<std::uint16_t>(p, 0, "raw bytes bf16");
  check_all_rows<float>(p, 0, "raw bytes f32");
  check_selected<std::uint16_t>(p, 2 * p.rows, 8, 21u, "raw bytes selected bf16");
}

// Calls `call` (which must fail with `want`) and checks that the bytes of `watched` did not change
// and that no CUDA error was left behind.
template <class T>
void expect_rejected(status want, const device_buffer<T>& watched, const std::function<status()>& call) {
  const std::vector<T> before = watched.download();
  CHECK(call() == want);
  DSV4KV_TEST_CUDA(cudaDeviceSynchronize());
  CHECK(cudaGetLastError() == cudaSuccess);
  const std::vector<T> after = watched.download();
  CHECK(std::memcmp(before.data(), after.data(), before.size() * sizeof(T)) == 0);
}

}  // namespace

TEST_CASE("dequant of encoded rows equals the host reference bit for bit", "[gpu][dequant]") {
  for (std::int64_t d : {128, 512}) {
    run_random_pool_checks<nvfp4_pool>(d);
    run_random_pool_checks<fp8_pool>(d);
  }
}

TEST_CASE("dequant of every code and block-scale byte under extreme global scales equals the reference",
          "[gpu][dequant]") {
  for (std::int64_t d : {128, 512}) {
    run_raw_byte_checks<nvfp4_pool>(d);
    run_raw_byte_checks<fp8_pool>(d);
  }
}

TEST_CASE("selective dequant: bad indices give zero rows, empty and pool-less calls", "[gpu][dequant]") {
  nvfp4_pool p(33, 512);
  p.encode(random_rows(p.rows, p.d, 7u));
  p.upload();
  const std::int32_t rows = 33;
  const std::vector<std::int32_t> idx = {-1, rows, rows + 1, -2, INT32_MIN, INT32_MAX, 5, 5, 5, 32, 0, -1};
  device_buffer<std::int32_t> d_idx(idx);
  const auto k = static_cast<std::int64_t>(idx.size());

  SECTION("only the valid rows are decoded, the rest are +0") {
    guarded_array<std::uint16_t> out(k, 512, 512 + 8);
    REQUIRE(dequant_nvfp4_selected(p.device(), {d_idx.get(), k}, out.view(), nullptr) == status::ok);
    std::vector<std::uint16_t> want = p.ref_selected_bf16(idx);
    for (std::size_t i = 0; i < idx.size(); ++i) {
      if (idx[i] < 0 || idx[i] >= rows) {
        for (int c = 0; c < 512; ++c) REQUIRE(want[i * 512 + c] == 0);
      }
    }
    check_output(out, want, "bad indices");
  }
  SECTION("k = 0 launches nothing and writes nothing") {
    guarded_array<std::uint16_t> out(0, 512, 512);
    REQUIRE(dequant_nvfp4_selected(p.device(), {d_idx.get(), 0}, out.view(), nullptr) == status::ok);
    REQUIRE(dequant_nvfp4_selected(p.device(), {nullptr, 0}, tensor_view<std::uint16_t>{nullptr, 0, 512, 512}, nullptr) ==
            status::ok);
    check_output(out, {}, "k = 0");
  }
  SECTION("rows = 0: all-rows dequant is a no-op; selected rows from an empty pool are zero rows") {
    const const_nvfp4_rows empty{nullptr, nullptr, nullptr, 0, 512};
    REQUIRE(dequant_nvfp4(empty, tensor_view<std::uint16_t>{nullptr, 0, 512, 512}, nullptr) == status::ok);
    guarded_array<std::uint16_t> out(k, 512, 512);
    REQUIRE(dequant_nvfp4_selected(empty, {d_idx.get(), k}, out.view(), nullptr) == status::ok);
    check_output(out, std::vector<std::uint16_t>(k * 512, 0), "empty pool");
    const const_fp8_rows empty8{nullptr, nullptr, 0, 128};
    guarded_array<float> out8(k, 128, 128);
    REQUIRE(dequant_fp8_selected(empty8, {d_idx.get(), k}, out8.view(), nullptr) == status::ok);
    check_output(out8, std::vector<float>(k * 128, 0.0f), "empty fp8 pool");
  }
  SECTION("tokens = 0 in a batched call") {
    REQUIRE(dequant_nvfp4_selected_batched(p.device(), {d_idx.get(), 0, k, k},
                                           batched_rows_view<std::uint16_t>{nullptr, 0, k, 512, 512, 0},
                                           nullptr) == status::ok);
  }
}

TEST_CASE("dequant rejects bad arguments, launches nothing and changes no byte", "[gpu][dequant]") {
  nvfp4_pool p(64, 128);
  p.encode(random_rows(p.rows, p.d, 3u));
  p.upload();
  fp8_pool q(64, 128);
  q.encode(random_rows(q.rows, q.d, 4u));
  q.upload();
  const std::vector<std::int32_t> idx = {1, 2, 3, 63, -1, 7, 8, 9};
  device_buffer<std::int32_t> d_idx(idx);
  const std::int64_t k = 8;
  device_buffer<std::uint16_t> out(64 * 128 + 64);
  out.fill_bytes(sentinel_byte);
  device_buffer<float> out32(64 * 128 + 64);
  out32.fill_bytes(sentinel_byte);
  const cudaStream_t s = nullptr;
  const const_nvfp4_rows in = p.device();
  const const_fp8_rows in8 = q.device();
  const tensor_view<std::uint16_t> good{out.get(), 64, 128, 128};
  const tensor_view<std::uint16_t> good_k{out.get(), k, 128, 128};
  const span<const std::int32_t> good_idx{d_idx.get(), k};

  REQUIRE(dequant_nvfp4(in, good, s) == status::ok);  // the baseline call is fine
  DSV4KV_TEST_CUDA(cudaDeviceSynchronize());
  out.fill_bytes(sentinel_byte);

  SECTION("null pointers") {
    auto with = [&](auto f) { const_nvfp4_rows r = in; f(r); return r; };
    expect_rejected(status::null_pointer, out, [&] { return dequant_nvfp4(in, tensor_view<std::uint16_t>{nullptr, 64, 128, 128}, s); });
    expect_rejected(status::null_pointer, out, [&] { return dequant_nvfp4(with([](auto& r) { r.codes = nullptr; }), good, s); });
    expect_rejected(status::null_pointer, out, [&] { return dequant_nvfp4(with([](auto& r) { r.block_scales = nullptr; }), good, s); });
    expect_rejected(status::null_pointer, out, [&] { return dequant_nvfp4(with([](auto& r) { r.global_scales = nullptr; }), good, s); });
    expect_rejected(status::null_pointer, out, [&] { return dequant_nvfp4_selected(in, {nullptr, k}, good_k, s); });
    expect_rejected(status::null_pointer, out, [&] { return dequant_fp8(const_fp8_rows{nullptr, in8.scales, 64, 128}, good, s); });
    expect_rejected(status::null_pointer, out, [&] { return dequant_fp8(const_fp8_rows{in8.codes, nullptr, 64, 128}, good, s); });
    expect_rejected(status::null_pointer, out, [&] {
      return dequant_fp8_selected_batched(in8, {nullptr, 2, 4, 4}, batched_rows_view<std::uint16_t>{out.get(), 2, 4, 128, 128, 512}, s);
    });
  }
  SECTION("sizes, shapes and strides") {
    auto with = [&](auto f) { const_nvfp4_rows r = in; f(r); return r; };
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4(with([](auto& r) { r.rows = -1; }), {out.get(), -1, 128, 128}, s); });
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4(with([](auto& r) { r.d = -16; }), {out.get(), 64, -16, 128}, s); });
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4(with([](auto& r) { r.d = 0; }), {out.get(), 64, 0, 128}, s); });
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4(with([](auto& r) { r.d = 100; }), {out.get(), 64, 100, 128}, s); });
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4(in, {out.get(), 64, 64, 128}, s); });   // cols != d
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4(in, {out.get(), 63, 128, 128}, s); });  // rows != rows
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4(in, {out.get(), 64, 128, 120}, s); });  // stride < d
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4_selected(in, {d_idx.get(), -1}, {out.get(), -1, 128, 128}, s); });
    expect_rejected(status::invalid_argument, out, [&] { return dequant_nvfp4_selected(in, good_idx, {out.get(), k - 1, 128, 128}, s); });
    expect_rejected(status::invalid_argument, out, [&] { return dequant_fp8(const_fp8_rows{in8.codes, in8.scales, 64, 0}, {out.get(), 64, 0, 128}, s); });
    expect_rejected(status::invalid_argument, out, [&] { return dequant_fp8(const_fp8_rows{in8.codes, in8.scales, -2, 128}, {out.get(), -2, 128, 128}, s); });
    // batched: shape mismatch, index stride < k, overlapping tokens, more than 2^31 - 1 rows
    expect_rejected(status::invalid_argument, out, [&] {
      return dequant_nvfp4_selected_batched(in, {d_idx.get(), 2, 4, 4}, batched_rows_view<std::uint16_t>{out.get(), 3, 4, 128, 128, 512}, s);
    });
    expect_rejected(status::invalid_argument, out, [&] {
      return dequant_nvfp4_selected_batched(in, {d_idx.get(), 2, 4, 3}, batched_rows_view<std::uint16_t>{out.get(), 2, 4, 128, 128, 512}, s);
    });
    expect_rejected(status::invalid_argument, out, [&] {
      return dequant_nvfp4_selected_batched(in, {d_idx.get(), 2, 4, 4}, batched_rows_view<std::uint16_t>{out.get(), 2, 4, 128, 128, 256}, s);
    });
    expect_rejected(status::invalid_argument, out, [&] {
      return dequant_nvfp4_selected_batched(in, {d_idx.get(), 65536, 65536, 65536},
                                            batched_rows_view<std::uint16_t>{out.get(), 65536, 65536, 128, 128, 65536 * 128}, s);
    });
  }
  SECTION("valid widths without a kernel") {
    device_buffer<std::uint8_t> codes(64 * 256), scales(64 * 16);
    device_buffer<float> g(64);
    expect_rejected(status::unsupported_shape, out, [&] {
      return dequant_nvfp4(const_nvfp4_rows{codes.get(), scales.get(), g.get(), 32, 256}, {out.get(), 32, 256, 256}, s);
    });
    expect_rejected(status::unsupported_shape, out, [&] {
      return dequant_nvfp4_selected(const_nvfp4_rows{codes.get(), scales.get(), g.get(), 64, 256}, good_idx, {out.get(), k, 256, 256}, s);
    });
    expect_rejected(status::unsupported_shape, out, [&] { return dequant_fp8(const_fp8_rows{codes.get(), g.get(), 32, 136}, {out.get(), 32, 136, 136}, s); });
    expect_rejected(status::unsupported_shape, out, [&] { return dequant_fp8(const_fp8_rows{codes.get(), g.get(), 32, 100}, {out.get(), 32, 100, 104}, s); });
  }
  SECTION("misalignment") {
    auto with = [&](auto f) { const_nvfp4_rows r = in; f(r); return r; };
    expect_rejected(status::misaligned, out, [&] { return dequant_nvfp4(in, {out.get() + 1, 64, 128, 128}, s); });
    expect_rejected(status::misaligned, out, [&] { return dequant_nvfp4(with([](auto& r) { r.rows = 32; }), {out.get() + 4, 32, 128, 128}, s); });
    expect_rejected(status::misaligned, out, [&] { return dequant_nvfp4(with([](auto& r) { r.rows = 32; }), {out.get(), 32, 128, 132}, s); });
    expect_rejected(status::misaligned, out32, [&] { return dequant_nvfp4(with([](auto& r) { r.rows = 32; }), tensor_view<float>{out32.get(), 32, 128, 130}, s); });
    expect_rejected(status::misaligned, out32, [&] { return dequant_nvfp4(with([](auto& r) { r.rows = 32; }), tensor_view<float>{out32.get() + 2, 32, 128, 128}, s); });
    expect_rejected(status::misaligned, out, [&] { return dequant_nvfp4(with([](auto& r) { r.codes += 2; r.rows = 32; }), {out.get(), 32, 128, 128}, s); });
    expect_rejected(status::misaligned, out, [&] {
      return dequant_nvfp4(with([](auto& r) { r.global_scales = reinterpret_cast<const float*>(reinterpret_cast<const char*>(r.global_scales) + 2); r.rows = 32; }),
                           {out.get(), 32, 128, 128}, s);
    });
    expect_rejected(status::misaligned, out, [&] { return dequant_fp8(const_fp8_rows{in8.codes + 4, in8.scales, 32, 128}, {out.get(), 32, 128, 128}, s); });
    expect_rejected(status::misaligned, out, [&] {
      return dequant_nvfp4_selected(in, {reinterpret_cast<const std::int32_t*>(reinterpret_cast<const char*>(d_idx.get()) + 2), 4}, {out.get(), 4, 128, 128}, s);
    });
    expect_rejected(status::misaligned, out, [&] {  // token stride of 4 elements (8 bytes)
      return dequant_nvfp4_selected_batched(in, {d_idx.get(), 2, 1, 1}, batched_rows_view<std::uint16_t>{out.get(), 2, 1, 128, 128, 132}, s);
    });
  }
  SECTION("output overlapping an input") {
    // One arena holds a pool's arrays and an index list; outputs pointing into them are rejected.
    // Layout (bytes): codes [0, 4096), block scales [4096, 4608), global scales [4608, 4864),
    // indices [4864, 4880); every output view below is 16-byte aligned and inside the arena.
    device_buffer<std::uint8_t> arena(65536);
    arena.fill_bytes(sentinel_byte);
    std::uint8_t* base = arena.get();
    const const_nvfp4_rows a{base, base + 4096, reinterpret_cast<const float*>(base + 4608), 64, 128};
    const auto* a_idx = reinterpret_cast<const std::int32_t*>(base + 4864);
    auto at = [&](std::int64_t byte) { return reinterpret_cast<std::uint16_t*>(base + byte); };
    expect_rejected(status::aliasing, arena, [&] { return dequant_nvfp4(a, {at(1024), 64, 128, 128}, s); });
    expect_rejected(status::aliasing, arena, [&] { return dequant_nvfp4(a, {at(4096 + 256), 64, 128, 128}, s); });
    expect_rejected(status::aliasing, arena, [&] { return dequant_nvfp4(a, {at(4608 + 128), 64, 128, 128}, s); });
    // [4624, 4880) ends inside the indices; the pool here is p's, elsewhere in device memory.
    expect_rejected(status::aliasing, arena, [&] { return dequant_nvfp4_selected(in, {a_idx, 1}, {at(4624), 1, 128, 128}, s); });
    expect_rejected(status::aliasing, arena, [&] {
      return dequant_nvfp4_selected_batched(in, {a_idx, 1, 1, 1}, batched_rows_view<std::uint16_t>{at(4624), 1, 1, 128, 128, 128}, s);
    });
    const const_fp8_rows a8{base, reinterpret_cast<const float*>(base + 8192), 16, 128};  // codes [0, 2048)
    expect_rejected(status::aliasing, arena, [&] { return dequant_fp8(a8, {at(1024), 16, 128, 128}, s); });
    expect_rejected(status::aliasing, arena, [&] { return dequant_fp8(a8, tensor_view<float>{reinterpret_cast<float*>(base + 8192 - 64), 16, 128, 128}, s); });
  }
  // The pool and outputs are untouched by all of the above; a good call still works.
  REQUIRE(dequant_fp8_selected(in8, good_idx, good_k, s) == status::ok);
  DSV4KV_TEST_CUDA(cudaDeviceSynchronize());
}

TEST_CASE("selective dequant addresses pools larger than 2^31 bytes with 64-bit offsets", "[gpu][dequant][large]") {
  // NVFP4 d = 512: 256 code bytes per row, so row 2^23 starts at byte 2^31. FP8 d = 512: row 2^22.
  const std::int64_t d = 512;
  auto run = [&](auto& small, std::int64_t boundary_row, auto allocate_and_call) {
    const std::int64_t pool_rows = boundary_row + 4096;
    small.encode(random_rows(small.rows, d, 99u));
    // Pool rows: [boundary - 8, boundary + 8) and [pool_rows - 16, pool_rows) hold the 32 rows.
    std::vector<std::int64_t> at(32);
    for (int i = 0; i < 16; ++i) at[i] = boundary_row - 8 + i;
    for (int i = 16; i < 32; ++i) at[i] = pool_rows - 32 + i;
    std::vector<std::int32_t> idx, host_idx;
    for (int i = 31; i >= 0; --i) {  // reversed, with a repeat and a bad index
      idx.push_back(static_cast<std::int32_t>(at[i]));
      host_idx.push_back(i);
    }
    idx.push_back(static_cast<std::int32_t>(at[9]));
    host_idx.push_back(9);
    idx.push_back(static_cast<std::int32_t>(pool_rows));
    host_idx.push_back(-1);
    const std::vector<std::uint16_t> want = small.ref_selected_bf16(host_idx);
    allocate_and_call(pool_rows, at, idx, want);
  };

  SECTION("nvfp4") {
    nvfp4_pool small(32, d);
    run(small, std::int64_t{1} << 23, [&](std::int64_t pool_rows, const std::vector<std::int64_t>& at,
                                          const std::vector<std::int32_t>& idx, const std::vector<std::uint16_t>& want) {
      std::uint8_t *codes = nullptr, *scales = nullptr;
      float* g = nullptr;
      if (cudaMalloc(&codes, pool_rows * d / 2) != cudaSuccess) {
        (void)cudaGetLastError();
        WARN("not enough device memory for a > 2^31-byte pool: skipped");
        return;
      }
      DSV4KV_TEST_CUDA(cudaMalloc(&scales, pool_rows * d / 16));
      DSV4KV_TEST_CUDA(cudaMalloc(&g, pool_rows * 4));
      for (int i = 0; i < 32; ++i) {
        DSV4KV_TEST_CUDA(cudaMemcpy(codes + at[i] * d / 2, small.codes.data() + i * d / 2, d / 2, cudaMemcpyHostToDevice));
        DSV4KV_TEST_CUDA(cudaMemcpy(scales + at[i] * d / 16, small.scales.data() + i * d / 16, d / 16, cudaMemcpyHostToDevice));
        DSV4KV_TEST_CUDA(cudaMemcpy(g + at[i], small.g.data() + i, 4, cudaMemcpyHostToDevice));
      }
      device_buffer<std::int32_t> d_idx(idx);
      const auto k = static_cast<std::int64_t>(idx.size());
      guarded_array<std::uint16_t> out(k, d, d);
      const status st = dequant_nvfp4_selected({codes, scales, g, pool_rows, d}, {d_idx.get(), k}, out.view(), nullptr);
      CHECK(st == status::ok);
      check_output(out, want, "nvfp4 pool > 2^31 bytes");
      cudaFree(codes);
      cudaFree(scales);
      cudaFree(g);
    });
  }
  SECTION("fp8") {
    fp8_pool small(32, d);
    run(small, std::int64_t{1} << 22, [&](std::int64_t pool_rows, const std::vector<std::int64_t>& at,
                                          const std::vector<std::int32_t>& idx, const std::vector<std::uint16_t>& want) {
      std::uint8_t* codes = nullptr;
      float* sc = nullptr;
      if (cudaMalloc(&codes, pool_rows * d) != cudaSuccess) {
        (void)cudaGetLastError();
        WARN("not enough device memory for a > 2^31-byte pool: skipped");
        return;
      }
      DSV4KV_TEST_CUDA(cudaMalloc(&sc, pool_rows * 4));
      for (int i = 0; i < 32; ++i) {
        DSV4KV_TEST_CUDA(cudaMemcpy(codes + at[i] * d, small.codes.data() + i * d, d, cudaMemcpyHostToDevice));
        DSV4KV_TEST_CUDA(cudaMemcpy(sc + at[i], small.scales.data() + i, 4, cudaMemcpyHostToDevice));
      }
      device_buffer<std::int32_t> d_idx(idx);
      const auto k = static_cast<std::int64_t>(idx.size());
      guarded_array<std::uint16_t> out(k, d, d);
      const status st = dequant_fp8_selected({codes, sc, pool_rows, d}, {d_idx.get(), k}, out.view(), nullptr);
      CHECK(st == status::ok);
      check_output(out, want, "fp8 pool > 2^31 bytes");
      cudaFree(codes);
      cudaFree(sc);
    });
  }
}

TEST_CASE("dequant is deterministic and replays identically from a CUDA graph", "[gpu][dequant]") {
  nvfp4_pool p(2053, 512);
  p.encode(random_rows(p.rows, p.d, 5u));
  p.upload();
  fp8_pool q(2053, 128);
  q.encode(random_rows(q.rows, q.d, 6u));
  q.upload();
  const std::int64_t tokens = 4, k = 257;
  const std::vector<std::int32_t> idx = random_indices(tokens * k, p.rows, 8u);
  device_buffer<std::int32_t> d_idx(idx);
  const std::int64_t rows = tokens * k;
  guarded_array<std::uint16_t> a(rows, 512, 512), b(rows, 512, 512), a8(rows, 128, 128), b8(rows, 128, 128);

  cudaStream_t stream;
  DSV4KV_TEST_CUDA(cudaStreamCreate(&stream));  // blocking: ordered with the sentinel memsets
  auto enqueue = [&](std::uint16_t* out, std::uint16_t* out8) {
    REQUIRE(dequant_nvfp4_selected(p.device(), {d_idx.get(), tokens * k}, {out, tokens * k, 512, 512}, stream) == status::ok);
    REQUIRE(dequant_fp8_selected_batched(q.device(), {d_idx.get(), tokens, k, k},
                                         batched_rows_view<std::uint16_t>{out8, tokens, k, 128, 128, k * 128}, stream) ==
            status::ok);
  };
  enqueue(a.data(), a8.data());
  enqueue(b.data(), b8.data());
  DSV4KV_TEST_CUDA(cudaStreamSynchronize(stream));
  const std::vector<std::uint16_t> want = a.checked(), want8 = a8.checked();
  CHECK((b.checked() == want));  // two runs, same bytes
  CHECK((b8.checked() == want8));
  CHECK((want == p.ref_selected_bf16(idx)));
  CHECK((want8 == q.ref_selected_bf16(idx)));

  // Capture into a graph (global mode: no illegal call may happen while capturing), replay twice.
  b.reset();
  b8.reset();
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  DSV4KV_TEST_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  enqueue(b.data(), b8.data());
  DSV4KV_TEST_CUDA(cudaStreamEndCapture(stream, &graph));
  DSV4KV_TEST_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(b.untouched());  // capturing ran nothing
  for (int replay = 0; replay < 2; ++replay) {
    DSV4KV_TEST_CUDA(cudaGraphLaunch(exec, stream));
    DSV4KV_TEST_CUDA(cudaStreamSynchronize(stream));
    CHECK((b.checked() == want));
    CHECK((b8.checked() == want8));
    b.reset();
    b8.reset();
  }
  DSV4KV_TEST_CUDA(cudaGraphExecDestroy(exec));
  DSV4KV_TEST_CUDA(cudaGraphDestroy(graph));
  DSV4KV_TEST_CUDA(cudaStreamDestroy(stream));
}
