// SPDX-License-Identifier: Apache-2.0
// Scale ([large]: in the full GPU run, not under the sanitizers; each case a few GB and seconds):
//   - append writes pool rows whose bytes lie beyond 2^31 (CSA-512 NVFP4: row 2^23 of the codes,
//     CSA-128 FP8: row 2^24) through the slot mapping, in three chunks: the one-shot bytes at
//     exactly those rows, every other byte of the 2 GB pools untouched;
//   - the write path (fused and two-kernel) into pool views placed beyond byte 2^31 of one
//     allocation: the reference bytes there, every other byte of the allocation untouched;
//   - dequant of all rows, selective and batched selective dequant of NVFP4 and FP8 pools of
//     2^24 + 4099 rows (indices above 2^24; the FP8 codes cross byte 2^31 at row 2^24);
//   - the write path at T = 2^20 tokens (CSA-512, BF16 projections, RoPE over 2^20 positions):
//     fused == two-kernel for every row, 2048 rows spread over the range (first and last
//     included) against the double reference and the host encoder.
// (test_dequant.cpp has selective dequant of > 2^31-byte pools of fewer than 2^24 rows.)
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // before device_buffer.hpp: its cudaMalloc(&T*) needs the template overload

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "append_fixtures.hpp"
#include "device_buffer.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "guarded_buffer.hpp"
#include "write_path_fixtures.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

constexpr std::int64_t two_pow_31 = std::int64_t{1} << 31;

const stream_spec csa_main{"CSA-512 main KV -> NVFP4", 4, 512, true, false, {false, true, false, true}};
const stream_spec csa_indexer{"CSA-128 indexer -> Hadamard -> FP8", 4, 128, false, true, {false, true, false, true}};

// The bytes of the three arrays of a guarded run_outputs, guard bands included.
struct pool_images {
  std::vector<std::uint8_t> a[3];
  std::int64_t guard[3];
  explicit pool_images(const run_outputs& o)
      : a{o.codes.download_all(), o.scales.download_all(), o.global.download_all()},
        guard{o.codes.guard(), o.scales.guard(), o.global.guard()} {}
};

// Moves the bytes [at, at + bytes) of `image` out (compares them with `want`, then overwrites them
// with the sentinel, so that a final count_bytes_not() over the image finds every stray write).
bool take(std::vector<std::uint8_t>& image, std::int64_t at, const std::uint8_t* want, std::int64_t bytes) {
  std::uint8_t* p = image.data() + at;
  const bool same = bytes == 0 || std::memcmp(p, want, static_cast<std::size_t>(bytes)) == 0;
  std::memset(p, sentinel_byte, static_cast<std::size_t>(bytes));
  return same;
}

std::size_t non_sentinel(const std::vector<std::uint8_t>& image) {
  return count_bytes_not(image.data(), image.size(), sentinel_byte);
}

}  // namespace

TEST_CASE("scale: append writes pool rows beyond byte 2^31 through the slot mapping", "[gpu][large][append]") {
  const device_rope_table table(yarn_table());
  for (const stream_spec* s : {&csa_main, &csa_indexer}) {
    const pool_row_bytes b = row_bytes_of(*s);
    const std::int64_t boundary = two_pow_31 / b.code;  // the first pool row whose codes start at byte >= 2^31
    const std::int64_t pool_rows = boundary + 65536, tokens = 4 * 4096 + 3;
    INFO(s->name << ": " << pool_rows << " pool rows, " << pool_rows * b.code << " bytes of codes");
    const compress_case c = make_compress_case(s->ratio, s->d, tokens, s->opt, 0x5CA1E + s->d);
    const device_compress_case dev(c);
    const std::int64_t n = c.rows(), d = c.d;

    const std::array<std::vector<std::uint8_t>, 3> want = one_shot_bytes(*s, c, dev, table.view);  // per array

    // Row i -> pool row: rows 0..15 straddle the boundary, 16..31 are the last pool rows, every
    // 97th row is skipped (-1); the other even rows lie past the boundary, the odd ones before it.
    std::vector<std::int32_t> pool_row(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t r;
      if (i < 16) {
        r = boundary - 8 + i;
      } else if (i < 32) {
        r = pool_rows - 32 + i;
      } else if (i % 97 == 96) {
        r = -1;
      } else if (i % 2 == 0) {
        r = boundary + 16 + (i / 2) * 29;
      } else {
        r = (i / 2) * 2039;
      }
      pool_row[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(r);
    }

    const run_outputs pool(pool_rows, d, s->nvfp4);  // > 2 GB of codes, every byte the sentinel
    const guarded_states states(*s, 1);
    guarded_array<std::uint32_t> flags(1);
    flags.upload({0u});
    const prepared_append plan(*s, c, dev, table.view, single_copy_plan({5001, 6000, tokens - 11001}),
                               [&](int, std::int64_t i) { return pool_row[static_cast<std::size_t>(i)]; });
    REQUIRE(plan.enqueue(pool, states.view(), flags.data(), nullptr) == status::ok);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(flags.checked()[0] == 0u);
    check_state_slot(*s, c, states.buf.checked(), 0, tokens);

    // Each written pool row holds its one-shot row; no other byte changed (guard bands included).
    pool_images img(pool);
    const std::int64_t per_row[3] = {b.code, b.scale, b.global};
    for (int a = 0; a < 3; ++a) {
      INFO("array " << a << " (codes, scales, global scales)");
      std::size_t wrong = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t r = pool_row[static_cast<std::size_t>(i)];
        if (r < 0) continue;
        wrong += !take(img.a[a], img.guard[a] + r * per_row[a], want[a].data() + i * per_row[a], per_row[a]);
      }
      CHECK(wrong == 0);
      CHECK(non_sentinel(img.a[a]) == 0);
    }
  }
}

TEST_CASE("scale: the write path into pool views placed beyond byte 2^31 of their allocation", "[gpu][large][write_path]") {
  const device_rope_table table(yarn_table());
  for (const stream_spec* s : {&csa_main, &csa_indexer}) {
    INFO(s->name);
    const compress_case c = make_compress_case(s->ratio, s->d, 4 * 4096 + 3, s->opt, 0xB16 + s->d);
    const device_compress_case dev(c);
    const std::int64_t n = c.rows(), d = c.d;
    const pool_row_bytes b = row_bytes_of(*s);
    const run_outputs ref(n, d, s->nvfp4);  // the two-kernel chain into an ordinary allocation
    {
      const guarded_workspace ws(n, d);
      REQUIRE(write_path_call(*s, c, dev, table.view, ref, ws.span_of(), write_path_mode::two_kernel, nullptr) ==
              status::ok);
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    }
    const std::vector<std::uint8_t> want[3] = {ref.codes.checked(), ref.scales.checked(), ref.global.checked()};

    // One allocation; two pools (fused, two-kernel), each array at a 256-byte boundary past 2^31.
    const std::int64_t bytes[3] = {n * b.code, n * b.scale, n * b.global};
    std::int64_t offset[2][3], at = two_pow_31 + 256;
    for (auto& pool : offset) {
      for (int a = 0; a < 3; ++a) {
        pool[a] = at;
        at = (at + bytes[a] + 255) / 256 * 256;
      }
    }
    const guarded arena(at + 4096);  // every byte the sentinel
    std::uint8_t* base = arena.data();
    const auto view_at = [&](const std::int64_t (&o)[3]) {
      return s->nvfp4 ? nvfp4_rows{base + o[0], base + o[1], reinterpret_cast<float*>(base + o[2]), n, d}
                      : nvfp4_rows{base + o[0], base + o[1], nullptr, n, d};
    };
    const guarded_workspace ws(n, d);
    const status st = with_params(c, dev, s->epilogue(), table.view, [&](const auto& p) {
      status r = status::ok;
      for (int pool = 0; pool < 2 && r == status::ok; ++pool) {
        const write_path_mode mode = pool == 0 ? write_path_mode::fused : write_path_mode::two_kernel;
        const span<std::uint8_t> w = pool == 0 ? span<std::uint8_t>{nullptr, 0} : ws.span_of();
        const nvfp4_rows v = view_at(offset[pool]);
        r = s->nvfp4 ? write_path_nvfp4(p, v, w, nullptr, mode)
                     : write_path_fp8(p, s->mode, fp8_rows{v.codes, reinterpret_cast<float*>(v.block_scales), n, d}, w,
                                      nullptr, mode);
      }
      return r;
    });
    REQUIRE(st == status::ok);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);

    std::vector<std::uint8_t> image = arena.download_all();
    for (int pool = 0; pool < 2; ++pool) {
      INFO((pool == 0 ? "fused" : "two-kernel"));
      for (int a = 0; a < 3; ++a) {
        INFO("array " << a << " at byte " << offset[pool][a]);
        CHECK(take(image, arena.guard() + offset[pool][a], want[a].data(), bytes[a]));
      }
    }
    CHECK(non_sentinel(image) == 0);  // nothing else in the 2 GB before, between or after the pools
  }
}

namespace {

// A pool of `rows` rows whose row r holds one of P distinct encoded rows, pattern(r): a wrong row
// index (truncated to 24 or 31 bits, rounded through a float, off by one) reads another pattern.
constexpr std::int64_t patterns = 4093;  // prime
std::int64_t pattern(std::int64_t r) {
  return static_cast<std::int64_t>((static_cast<std::uint64_t>(r) * 40503u + (static_cast<std::uint64_t>(r) >> 12)) %
                                   static_cast<std::uint64_t>(patterns));
}

// P rows of d values: Gaussian times 2^U(-20, 20) per row.
std::vector<float> pattern_values(std::int64_t d, std::uint64_t seed) {
  split_mix_rng rng(seed);
  std::vector<float> x(static_cast<std::size_t>(patterns * d));
  for (std::int64_t p = 0; p < patterns; ++p) {
    const float scale = std::ldexp(1.0f, static_cast<int>(rng.next() % 41) - 20);
    for (std::int64_t j = 0; j < d; ++j) x[static_cast<std::size_t>(p * d + j)] = rng.normal() * scale;
  }
  return x;
}

// Host arrays of a big pool and the BF16 decode of each pattern.
struct big_pool {
  bool nvfp4;
  std::int64_t rows, d;
  std::vector<std::uint8_t> codes, scales;  // FP8: scales holds the FP32 scales' bytes
  std::vector<float> global;
  std::vector<std::uint16_t> decoded;  // [P, d]
  big_pool(bool is_nvfp4, std::int64_t r, std::int64_t dd) : nvfp4(is_nvfp4), rows(r), d(dd) {
    const std::vector<float> x = pattern_values(d, 0xB1690u + (is_nvfp4 ? 1u : 2u));
    const std::int64_t code = nvfp4 ? d / 2 : d, scale = nvfp4 ? d / 16 : 4;
    std::vector<std::uint8_t> pc(static_cast<std::size_t>(patterns * code)), ps(static_cast<std::size_t>(patterns * scale));
    std::vector<float> pg(static_cast<std::size_t>(patterns));
    decoded.resize(static_cast<std::size_t>(patterns * d));
    const tensor_view<const float> xv{x.data(), patterns, d, d};
    const tensor_view<std::uint16_t> dv = make_tensor_view(decoded.data(), patterns, d);
    if (nvfp4) {
      REQUIRE(ref::encode_nvfp4(xv, {pc.data(), ps.data(), pg.data(), patterns, d}) == status::ok);
      REQUIRE(ref::decode_nvfp4_bf16({pc.data(), ps.data(), pg.data(), patterns, d}, dv) == status::ok);
    } else {
      auto* sf = reinterpret_cast<float*>(ps.data());
      for (std::int64_t p = 0; p < patterns; ++p) {
        ref::encode_fp8_row({x.data() + p * d, d}, p % 2 ? fp8_scale_mode::pow2 : fp8_scale_mode::fp32,
                            pc.data() + p * d, sf + p);
      }
      REQUIRE(ref::decode_fp8_bf16({pc.data(), sf, patterns, d}, dv) == status::ok);
    }
    codes.resize(static_cast<std::size_t>(rows * code));
    scales.resize(static_cast<std::size_t>(rows * scale));
    if (nvfp4) global.resize(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t p = pattern(r);
      std::memcpy(codes.data() + r * code, pc.data() + p * code, static_cast<std::size_t>(code));
      std::memcpy(scales.data() + r * scale, ps.data() + p * scale, static_cast<std::size_t>(scale));
      if (nvfp4) global[static_cast<std::size_t>(r)] = pg[static_cast<std::size_t>(p)];
    }
  }
  // The BF16 row a dequant must give for index i (+0 outside [0, rows)).
  const std::uint16_t* expected(std::int64_t i) const {
    static const std::vector<std::uint16_t> zeros(512, 0);
    return i >= 0 && i < rows ? decoded.data() + pattern(i) * d : zeros.data();
  }
};

}  // namespace

TEST_CASE("scale: dequant of all rows, selected and batched rows of pools with more than 2^24 rows",
          "[gpu][large][dequant]") {
  const std::int64_t rows = (std::int64_t{1} << 24) + 4099, d = 128, big = std::int64_t{1} << 24;
  for (const bool nvfp4 : {true, false}) {
    INFO((nvfp4 ? "NVFP4" : "FP8") << " d=128, " << rows << " rows");
    big_pool host(nvfp4, rows, d);
    const device_buffer<std::uint8_t> codes(host.codes), scales(host.scales);
    const device_buffer<float> global(host.global);
    const const_nvfp4_rows in4{codes.get(), scales.get(), global.get(), rows, d};
    const const_fp8_rows in8{codes.get(), reinterpret_cast<const float*>(scales.get()), rows, d};
    host.codes = {};
    host.scales = {};

    // Selected: around 2^24, the last rows, random rows above 2^24 and anywhere, bad indices, repeats.
    split_mix_rng rng(0x1DEu + nvfp4);
    std::vector<std::int32_t> idx;
    for (std::int64_t i = big - 8; i < big + 8; ++i) idx.push_back(static_cast<std::int32_t>(i));
    for (std::int64_t i = rows - 16; i < rows; ++i) idx.push_back(static_cast<std::int32_t>(i));
    for (int i = 0; i < 2048; ++i) idx.push_back(static_cast<std::int32_t>(big + static_cast<std::int64_t>(rng.next() % 4099)));
    for (int i = 0; i < 2048; ++i) idx.push_back(static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(rows)));
    for (const std::int32_t extra : {-1, static_cast<std::int32_t>(rows), INT32_MAX, static_cast<std::int32_t>(big + 1)}) {
      idx.push_back(extra);
    }
    const auto k = static_cast<std::int64_t>(idx.size());
    const device_buffer<std::int32_t> d_idx(idx);
    const guarded_array<std::uint16_t> sel(k, d, d + 8);
    REQUIRE((nvfp4 ? dequant_nvfp4_selected(in4, {d_idx.get(), k}, sel.view(), nullptr)
                   : dequant_fp8_selected(in8, {d_idx.get(), k}, sel.view(), nullptr)) == status::ok);
    // Batched: 8 query tokens of 1000 indices above 2^24 (index stride 1003), token stride 1002 rows.
    const std::int64_t tokens = 8, kb = 1000, index_stride = kb + 3, token_rows = kb + 2;
    std::vector<std::int32_t> bidx(static_cast<std::size_t>(tokens * index_stride), -7);
    for (auto& i : bidx) i = static_cast<std::int32_t>(big + static_cast<std::int64_t>(rng.next() % 4099));
    const device_buffer<std::int32_t> d_bidx(bidx);
    const guarded_array<std::uint16_t> bat(tokens, kb * d, token_rows * d);
    const batched_rows_view<std::uint16_t> bv{bat.data(), tokens, kb, d, d, token_rows * d};
    REQUIRE((nvfp4 ? dequant_nvfp4_selected_batched(in4, {d_bidx.get(), tokens, kb, index_stride}, bv, nullptr)
                   : dequant_fp8_selected_batched(in8, {d_bidx.get(), tokens, kb, index_stride}, bv, nullptr)) ==
            status::ok);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    const std::size_t row_bytes = static_cast<std::size_t>(d) * sizeof(std::uint16_t);
    {
      const std::vector<std::uint16_t> got = sel.checked();
      std::size_t wrong = 0;
      for (std::int64_t i = 0; i < k; ++i) wrong += std::memcmp(got.data() + i * d, host.expected(idx[static_cast<std::size_t>(i)]), row_bytes) != 0;
      CHECK(wrong == 0);
    }
    {
      const std::vector<std::uint16_t> got = bat.checked();  // [tokens, kb * d]; the gaps checked
      std::size_t wrong = 0;
      for (std::int64_t t = 0; t < tokens; ++t) {
        for (std::int64_t j = 0; j < kb; ++j) {
          wrong += std::memcmp(got.data() + (t * kb + j) * d,
                               host.expected(bidx[static_cast<std::size_t>(t * index_stride + j)]), row_bytes) != 0;
        }
      }
      CHECK(wrong == 0);
    }

    // All rows: [rows, 128] BF16, 4.3 GB.
    const guarded_array<std::uint16_t> all(rows, d, d);
    REQUIRE((nvfp4 ? dequant_nvfp4(in4, all.view(), nullptr) : dequant_fp8(in8, all.view(), nullptr)) == status::ok);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    const std::vector<std::uint8_t> image = all.download_all();
    CHECK(all.damaged_bytes(image) == 0);
    std::size_t wrong = 0;
    std::int64_t first_wrong = -1;
    for (std::int64_t r = 0; r < rows; ++r) {
      if (std::memcmp(image.data() + all.guard() + r * static_cast<std::int64_t>(row_bytes), host.expected(r), row_bytes) != 0) {
        if (first_wrong < 0) first_wrong = r;
        ++wrong;
      }
    }
    INFO("first wrong row " << first_wrong);
    CHECK(wrong == 0);
  }
}

TEST_CASE("scale: the write path at T = 2^20 tokens, fused == two-kernel, sampled rows against the reference",
          "[gpu][large][write_path]") {
  const int m = 4;
  const std::int64_t tokens = std::int64_t{1} << 20, d = 512, n = tokens / m;
  const compress_options opt{true, true, true, true};  // BF16 projections and bias, norm
  compress_case model = make_compress_case(m, d, 0, opt, 0x1A1A);  // bias and norm weight only
  const std::int64_t width = model.width;
  const device_compress_case dev_model(model);

  // Projections as BF16, four values per 64-bit draw: kv = u * channel scale, gate = u * spread +
  // offset, u uniform in [-2, 2) (the channel parameters drawn as in make_compress_case).
  std::vector<std::uint16_t> kv(static_cast<std::size_t>(tokens * width)), gate(kv.size());
  {
    split_mix_rng rng(0x1B1B);
    std::vector<float> scale(static_cast<std::size_t>(width)), spread(scale.size()), offset(scale.size());
    for (std::int64_t j = 0; j < width; ++j) {
      scale[static_cast<std::size_t>(j)] = rng.log_uniform(0.25, 4.0);
      spread[static_cast<std::size_t>(j)] = rng.log_uniform(0.05, 8.0);
      offset[static_cast<std::size_t>(j)] = 2.0f * rng.normal();
    }
    const auto u = [](std::uint64_t bits) { return static_cast<float>(static_cast<std::int64_t>(bits & 0xFFFF) - 32768) * (1.0f / 16384.0f); };
    for (std::size_t i = 0; i < kv.size(); i += 2) {
      const std::uint64_t r = rng.next();
      const std::size_t j = i % static_cast<std::size_t>(width);  // width is even: i, i + 1 share a token
      kv[i] = bf16_encode(u(r) * scale[j]);
      kv[i + 1] = bf16_encode(u(r >> 16) * scale[j + 1]);
      gate[i] = bf16_encode(u(r >> 32) * spread[j] + offset[j]);
      gate[i + 1] = bf16_encode(u(r >> 48) * spread[j + 1] + offset[j + 1]);
    }
  }
  const device_buffer<std::uint16_t> d_kv(kv), d_gate(gate);
  rope_table big_table;
  REQUIRE(make_yarn_rope_table(tokens + 8192, 64, big_table) == status::ok);
  const device_rope_table table(big_table);

  compress_params<std::uint16_t, std::uint16_t> p;
  p.ratio = m;
  p.kv = {d_kv.get(), tokens, width, width};
  p.gate = {d_gate.get(), tokens, width, width};
  p.position_bias = dev_model.bias_bits.get();
  p.norm_weight = dev_model.norm.get();
  p.rope = table.view;
  const run_outputs two(n, d, true), fused(n, d, true);
  const guarded_workspace ws(n, d);
  REQUIRE(write_path_nvfp4(p, two.nvfp4_view(), ws.span_of(), nullptr, write_path_mode::two_kernel) == status::ok);
  REQUIRE(write_path_nvfp4(p, fused.nvfp4_view(), {nullptr, 0}, nullptr, write_path_mode::fused) == status::ok);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  const std::vector<std::uint8_t> want = two.all_bytes();
  CHECK(first_difference(fused.all_bytes(), want) == -1);
  const std::vector<float> rows32 = ws.checked_rows();  // also: each row's amax scratch, the padding

  // 2048 rows spread over [0, n) (first and last included) against the double reference: row i
  // from the 2m tokens of blocks i-1 and i (just block 0 for row 0), RoPE at i*m.
  constexpr std::int64_t samples = 2048;
  std::vector<float> got(static_cast<std::size_t>(samples * d));
  std::vector<double> ref_rows(got.size());
  for (std::int64_t k = 0; k < samples; ++k) {
    const std::int64_t i = k * (n - 1) / (samples - 1);
    const std::int64_t first = i == 0 ? 0 : (i - 1) * m, count = i == 0 ? m : 2 * m;
    compress_case sub = model;
    sub.tokens = count;
    sub.kv.resize(static_cast<std::size_t>(count * width));
    sub.gate.resize(sub.kv.size());
    for (std::int64_t e = 0; e < count * width; ++e) {
      sub.kv[static_cast<std::size_t>(e)] = bf16_decode(kv[static_cast<std::size_t>(first * width + e)]);
      sub.gate[static_cast<std::size_t>(e)] = bf16_decode(gate[static_cast<std::size_t>(first * width + e)]);
    }
    epilogue_options e;
    e.rope = true;
    e.start_position = first;
    const std::vector<double> r = reference_rows(sub, e, nullptr, &big_table);
    std::copy_n(r.begin() + (i == 0 ? 0 : d), d, ref_rows.begin() + k * d);
    std::copy_n(rows32.begin() + i * d, d, got.begin() + k * d);
  }
  const double err = max_relative_error(got.data(), d, ref_rows, samples, d);
  INFO("max relative error of 2048 sampled rows against the double reference " << err);
  CHECK(err <= compress_tolerance);

  // Their bytes: the host encoder on the GPU's FP32 rows.
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(samples * d / 2)), scales(static_cast<std::size_t>(samples * d / 16));
  std::vector<float> g(static_cast<std::size_t>(samples));
  REQUIRE(ref::encode_nvfp4({got.data(), samples, d, d}, {codes.data(), scales.data(), g.data(), samples, d}) == status::ok);
  const std::vector<std::uint8_t> c2 = two.codes.checked(), s2 = two.scales.checked(), g2 = two.global.checked();
  std::size_t wrong = 0;
  for (std::int64_t k = 0; k < samples; ++k) {
    const std::int64_t i = k * (n - 1) / (samples - 1);
    wrong += std::memcmp(c2.data() + i * d / 2, codes.data() + k * d / 2, static_cast<std::size_t>(d / 2)) != 0;
    wrong += std::memcmp(s2.data() + i * d / 16, scales.data() + k * d / 16, static_cast<std::size_t>(d / 16)) != 0;
    wrong += std::memcmp(g2.data() + i * 4, &g[static_cast<std::size_t>(k)], 4) != 0;
  }
  CHECK(wrong == 0);
}
