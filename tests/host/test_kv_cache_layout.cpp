// SPDX-License-Identifier: Apache-2.0
// kv_cache_layout.hpp and the host-only half of compressed_kv_cache.hpp (creation, accessors):
//   - layout: every array at a multiple of kv_cache_alignment, in order, disjoint, exactly the
//     bytes of its rows, padding < alignment per array; every row slice meets the kernels'
//     alignment; bad shapes rejected with the output unchanged; usable at compile time;
//   - accounting: 292 vs 1024 and 132 vs 256 bytes per row, ratios 256/73 and 64/33;
//   - compressed_kv_cache::create over one allocation or explicit views: every validation status;
//   - the round trip on the host reference: two prefills written through the layout's views with
//     ref::encode_*, read back whole and selected with ref::decode_*; nothing outside the written
//     rows changes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <random>
#include <vector>

#include "dsv4kv/compressed_kv_cache.hpp"
#include "dsv4kv/kv_cache_layout.hpp"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "dsv4kv/ref/write_path.hpp"
#include "dsv4kv/rope_table.hpp"

using namespace dsv4kv;

namespace {

constexpr std::uint8_t sentinel = 0xA5;

// A host buffer whose data() is aligned to kv_cache_alignment.
struct aligned_bytes {
  std::vector<std::uint8_t> raw;
  std::uint8_t* base = nullptr;
  explicit aligned_bytes(std::int64_t bytes, std::uint8_t fill = sentinel)
      : raw(static_cast<std::size_t>(bytes + kv_cache_alignment), fill) {
    const auto p = reinterpret_cast<std::uintptr_t>(raw.data());
    base = raw.data() + (kv_cache_alignment - p % kv_cache_alignment) % kv_cache_alignment;
  }
};

std::vector<kv_cache_part> parts_of(const kv_cache_layout& l) {
  return {l.main_codes, l.main_block_scales, l.main_global_scales, l.indexer_codes, l.indexer_scales};
}

constexpr kv_cache_layout layout_or_empty(kv_cache_shape s) {
  kv_cache_layout l{};
  (void)make_kv_cache_layout(s, l);
  return l;
}
// The layout is a constant expression: an engine can size static pools with it.
static_assert(layout_or_empty(csa_layer_shape(4096)).total_bytes ==
              4096 * 256 + 4096 * 32 + 4096 * 4 + 4096 * 128 + 4096 * 4);
static_assert(layout_or_empty(hca_layer_shape(3)).indexer_codes.bytes == 0);

}  // namespace

TEST_CASE("kv cache layout: aligned, ordered, disjoint arrays of exactly the rows' bytes", "[kv_cache][layout]") {
  for (const bool indexer : {true, false}) {
    for (const std::int64_t capacity : std::initializer_list<std::int64_t>{0, 1, 3, 7, 1000, 8193, 1 << 20, kv_cache_max_capacity}) {
      INFO("capacity " << capacity << (indexer ? ", CSA" : ", HCA"));
      const kv_cache_shape shape = indexer ? csa_layer_shape(capacity) : hca_layer_shape(capacity);
      kv_cache_layout l;
      REQUIRE(make_kv_cache_layout(shape, l) == status::ok);
      CHECK(l.shape.capacity == capacity);
      const nvfp4_buffer_sizes main = nvfp4_buffer_bytes(capacity, 512);
      const fp8_buffer_sizes idx = fp8_buffer_bytes(indexer ? capacity : 0, 128);
      CHECK(l.main_codes.bytes == main.codes);
      CHECK(l.main_block_scales.bytes == main.block_scales);
      CHECK(l.main_global_scales.bytes == main.global_scales);
      CHECK(l.indexer_codes.bytes == idx.codes);
      CHECK(l.indexer_scales.bytes == idx.scales);
      std::int64_t end = 0, payload = 0;
      for (const kv_cache_part& p : parts_of(l)) {
        CHECK(p.offset % kv_cache_alignment == 0);
        CHECK(p.offset >= end);  // in order, no overlap
        CHECK(p.offset - end < kv_cache_alignment);  // padding only
        end = p.offset + p.bytes;
        payload += p.bytes;
      }
      CHECK(l.total_bytes >= end);
      CHECK(l.total_bytes % kv_cache_alignment == 0);
      CHECK(l.total_bytes - payload < 5 * kv_cache_alignment);
      CHECK(payload == capacity * kv_cache_bytes_per_row(shape).total());
    }
  }
}

TEST_CASE("kv cache layout: every row slice meets the kernels' alignment", "[kv_cache][layout]") {
  // Write path: NVFP4 codes 2, FP8 codes 4, scales 4; dequant: NVFP4 codes 4, FP8 codes 8, scales 4.
  for (const kv_cache_shape shape : {csa_layer_shape(37), kv_cache_shape{37, 16, 16}, kv_cache_shape{37, 128, 512}}) {
    kv_cache_layout l;
    REQUIRE(make_kv_cache_layout(shape, l) == status::ok);
    aligned_bytes mem(l.total_bytes);
    const kv_cache_views v = kv_cache_views_at(l, mem.base);
    CHECK(v.main.codes == mem.base + l.main_codes.offset);
    CHECK(v.main.block_scales == mem.base + l.main_block_scales.offset);
    CHECK(reinterpret_cast<std::uint8_t*>(v.main.global_scales) == mem.base + l.main_global_scales.offset);
    CHECK(v.indexer.codes == mem.base + l.indexer_codes.offset);
    CHECK(reinterpret_cast<std::uint8_t*>(v.indexer.scales) == mem.base + l.indexer_scales.offset);
    CHECK((v.main.rows == 37 && v.main.d == shape.main_d && v.indexer.rows == 37 && v.indexer.d == shape.indexer_d));
    for (std::int64_t r = 0; r < 37; ++r) {
      CHECK(detail::is_aligned(v.main.row_codes(r), 4));
      CHECK(detail::is_aligned(v.main.global_scales + r, 4));
      CHECK(detail::is_aligned(v.indexer.row_codes(r), 8));
      CHECK(detail::is_aligned(v.indexer.scales + r, 4));
    }
  }
  // No indexer: null views; an empty cache: null pointers everywhere.
  kv_cache_layout l;
  REQUIRE(make_kv_cache_layout(hca_layer_shape(5), l) == status::ok);
  aligned_bytes mem(l.total_bytes);
  const kv_cache_views v = kv_cache_views_at(l, mem.base);
  CHECK((v.indexer.codes == nullptr && v.indexer.scales == nullptr && v.indexer.rows == 0 && v.indexer.d == 0));
  REQUIRE(make_kv_cache_layout(csa_layer_shape(0), l) == status::ok);
  CHECK(l.total_bytes == 0);
  const kv_cache_views e = kv_cache_views_at(l, mem.base);
  CHECK((e.main.codes == nullptr && e.main.global_scales == nullptr && e.indexer.codes == nullptr));
}

TEST_CASE("kv cache layout: bad shapes are rejected and change nothing", "[kv_cache][layout]") {
  kv_cache_layout l;
  REQUIRE(make_kv_cache_layout(csa_layer_shape(9), l) == status::ok);
  const kv_cache_layout before = l;
  for (const kv_cache_shape bad : {kv_cache_shape{-1, 512, 128}, kv_cache_shape{kv_cache_max_capacity + 1, 512, 128},
                                   kv_cache_shape{8, 0, 128}, kv_cache_shape{8, 24, 128}, kv_cache_shape{8, -16, 128},
                                   kv_cache_shape{8, kv_cache_max_dim + 16, 128}, kv_cache_shape{8, 512, 8},
                                   kv_cache_shape{8, 512, -16}, kv_cache_shape{8, 512, kv_cache_max_dim + 16}}) {
    INFO("capacity " << bad.capacity << ", main_d " << bad.main_d << ", indexer_d " << bad.indexer_d);
    CHECK(check_kv_cache_shape(bad) == status::invalid_argument);
    CHECK(make_kv_cache_layout(bad, l) == status::invalid_argument);
    CHECK(same_layout(l, before));
  }
}

TEST_CASE("kv cache accounting: bytes per row against BF16, exactly", "[kv_cache][layout]") {
  const kv_cache_row_bytes csa = kv_cache_bytes_per_row(csa_layer_shape(1));
  CHECK(csa.main == 292);  // 256 B codes + 32 B block scales + 4 B global scale
  CHECK(csa.main_bf16 == 1024);
  CHECK(csa.indexer == 132);  // 128 B codes + 4 B scale
  CHECK(csa.indexer_bf16 == 256);
  CHECK(csa.total() == 424);
  CHECK(csa.total_bf16() == 1280);
  CHECK(compression_ratio(csa.main_bf16, csa.main) == 256.0 / 73.0);  // 3.5068...
  CHECK(compression_ratio(csa.indexer_bf16, csa.indexer) == 64.0 / 33.0);  // 1.9393...
  CHECK(compression_ratio(csa.total_bf16(), csa.total()) == 160.0 / 53.0);  // 3.0188...
  CHECK(std::round(100.0 * compression_ratio(1024, 292)) == 351.0);
  CHECK(std::round(100.0 * compression_ratio(256, 132)) == 194.0);
  CHECK(compression_ratio(1, 0) == 0.0);
  const kv_cache_row_bytes hca = kv_cache_bytes_per_row(hca_layer_shape(1));
  CHECK((hca.main == 292 && hca.indexer == 0 && hca.indexer_bf16 == 0 && hca.total_bf16() == 1024));
}

TEST_CASE("compressed_kv_cache: creation over one allocation and over explicit views", "[kv_cache][create]") {
  kv_cache_layout l;
  REQUIRE(make_kv_cache_layout(csa_layer_shape(100), l) == status::ok);
  aligned_bytes mem(l.total_bytes + 512);
  compressed_kv_cache c;
  REQUIRE(compressed_kv_cache::create(mem.base, l.total_bytes, l, c) == status::ok);
  CHECK((c.capacity() == 100 && c.rows() == 0 && c.free_rows() == 100 && c.has_indexer()));
  CHECK((c.main_d() == 512 && c.indexer_d() == 128));
  CHECK((c.main_rows().rows == 0 && c.indexer_rows().rows == 0));
  CHECK(c.main_storage().codes == mem.base + l.main_codes.offset);
  CHECK(reinterpret_cast<std::uint8_t*>(c.indexer_storage().scales) == mem.base + l.indexer_scales.offset);

  // Every failure leaves `out` as it was.
  const auto unchanged = [&] { CHECK((c.capacity() == 100 && c.main_storage().codes == mem.base)); };
  CHECK(compressed_kv_cache::create(mem.base, l.total_bytes - 1, l, c) == status::invalid_argument);
  unchanged();
  CHECK(compressed_kv_cache::create(nullptr, l.total_bytes, l, c) == status::null_pointer);
  unchanged();
  CHECK(compressed_kv_cache::create(mem.base + 16, l.total_bytes, l, c) == status::misaligned);
  unchanged();
  kv_cache_layout tampered = l;
  tampered.indexer_codes.offset -= kv_cache_alignment;  // overlaps the main KV's global scales
  CHECK(compressed_kv_cache::create(mem.base, l.total_bytes, tampered, c) == status::invalid_argument);
  unchanged();
  tampered = l;
  tampered.shape.capacity = -1;
  CHECK(compressed_kv_cache::create(mem.base, l.total_bytes, tampered, c) == status::invalid_argument);
  unchanged();

  // Explicit views: an engine's own arrays.
  const kv_cache_views v = kv_cache_views_at(l, mem.base);
  compressed_kv_cache e;
  REQUIRE(compressed_kv_cache::create(v.main, v.indexer, e) == status::ok);
  CHECK((e.capacity() == 100 && e.has_indexer()));
  REQUIRE(compressed_kv_cache::create(v.main, fp8_rows{}, e) == status::ok);  // HCA: no indexer
  CHECK((e.capacity() == 100 && !e.has_indexer() && e.indexer_rows().rows == 0 && e.indexer_d() == 0));
  fp8_rows idx = v.indexer;
  idx.rows = 99;
  CHECK(compressed_kv_cache::create(v.main, idx, e) == status::invalid_argument);
  idx = v.indexer;
  idx.d = 100;
  CHECK(compressed_kv_cache::create(v.main, idx, e) == status::invalid_argument);
  nvfp4_rows m = v.main;
  m.d = 500;
  CHECK(compressed_kv_cache::create(m, v.indexer, e) == status::invalid_argument);
  m = v.main;
  m.rows = -1;
  CHECK(compressed_kv_cache::create(m, fp8_rows{}, e) == status::invalid_argument);
  m = v.main;
  m.block_scales = nullptr;
  CHECK(compressed_kv_cache::create(m, v.indexer, e) == status::null_pointer);
  idx = v.indexer;
  idx.scales = nullptr;
  CHECK(compressed_kv_cache::create(v.main, idx, e) == status::null_pointer);
  m = v.main;
  m.global_scales = reinterpret_cast<float*>(mem.base + l.main_global_scales.offset + 4);
  CHECK(compressed_kv_cache::create(m, v.indexer, e) == status::misaligned);
  idx = v.indexer;
  idx.codes = mem.base + l.indexer_codes.offset + 8;
  CHECK(compressed_kv_cache::create(v.main, idx, e) == status::misaligned);
  idx = v.indexer;
  idx.codes = v.main.codes + 16;  // inside the main KV codes
  CHECK(compressed_kv_cache::create(v.main, idx, e) == status::aliasing);
  m = v.main;
  m.block_scales = v.main.codes;
  CHECK(compressed_kv_cache::create(m, fp8_rows{}, e) == status::aliasing);
  // Capacity 0 with null pointers is a valid empty cache.
  compressed_kv_cache z;
  REQUIRE(compressed_kv_cache::create(nvfp4_rows{nullptr, nullptr, nullptr, 0, 512}, fp8_rows{nullptr, nullptr, 0, 128},
                                      z) == status::ok);
  CHECK((z.capacity() == 0 && z.has_indexer() && z.free_rows() == 0));
  CHECK((compressed_kv_cache{}.capacity() == 0 && !compressed_kv_cache{}.has_indexer()));
}

namespace {

// Synthetic projections of one prefill (FP32, host): kv ~ N(0,1) * per-channel scale, gate with a
// per-channel spread, as the demo draws them.
struct host_prefill {
  std::vector<float> kv, gate, norm;
  ref::write_path_problem problem(int ratio, std::int64_t tokens, std::int64_t width, rope_table_view rope,
                                  bool hadamard) const {
    ref::write_path_problem p;
    p.ratio = ratio;
    p.kv = {kv.data(), tokens, width, width};
    p.gate = {gate.data(), tokens, width, width};
    p.norm_weight = norm.data();
    p.rope = rope;
    p.hadamard = hadamard;
    return p;
  }
};

host_prefill make_prefill(std::int64_t tokens, std::int64_t width, std::int64_t d, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01;
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  host_prefill h;
  std::vector<float> scale(width), spread(width);
  for (auto& s : scale) s = std::exp2(u(rng));
  for (auto& s : spread) s = std::exp2(u(rng));
  h.kv.resize(static_cast<std::size_t>(tokens * width));
  h.gate.resize(h.kv.size());
  for (std::int64_t i = 0; i < tokens * width; ++i) {
    h.kv[i] = n01(rng) * scale[i % width];
    h.gate[i] = n01(rng) * spread[i % width];
  }
  h.norm.resize(static_cast<std::size_t>(d));
  for (auto& w : h.norm) w = 1.0f + 0.1f * n01(rng);
  return h;
}

// relative RMSE and smallest row cosine of decoded BF16 rows against FP32 rows [n, d].
void check_quality(const std::vector<float>& want, const std::vector<std::uint16_t>& got, std::int64_t n,
                   std::int64_t d, double max_rel_rmse) {
  double err = 0, norm = 0, min_cos = 1;
  for (std::int64_t r = 0; r < n; ++r) {
    double dot = 0, a2 = 0, b2 = 0;
    for (std::int64_t k = 0; k < d; ++k) {
      const double a = want[r * d + k], b = bf16_decode(got[r * d + k]);
      err += (a - b) * (a - b);
      norm += a * a;
      dot += a * b;
      a2 += a * a;
      b2 += b * b;
    }
    min_cos = std::min(min_cos, dot / std::sqrt(a2 * b2));
  }
  INFO("relative RMSE " << std::sqrt(err / norm) << ", smallest row cosine " << min_cos);
  CHECK(std::sqrt(err / norm) <= max_rel_rmse);
  CHECK(min_cos >= 0.99);
}

}  // namespace

TEST_CASE("kv cache round trip on the host reference: two prefills, whole and selected reads", "[kv_cache][ref]") {
  rope_table table;
  REQUIRE(make_yarn_rope_table(1024, 64, table) == status::ok);
  kv_cache_layout l;
  REQUIRE(make_kv_cache_layout(csa_layer_shape(400), l) == status::ok);
  aligned_bytes mem(l.total_bytes);
  const kv_cache_views v = kv_cache_views_at(l, mem.base);

  // Prefill A (1001 tokens -> 250 rows), then prefill B (515 tokens -> 128 rows) after it.
  std::int64_t written = 0;
  std::vector<float> main_rows, index_rows;  // FP32 rows of both prefills, [written, d]
  std::uint32_t seed = 11;
  for (const std::int64_t tokens : {1001LL, 515LL}) {
    const std::int64_t n = compressed_row_count(tokens, csa_ratio);
    for (const bool indexer : {false, true}) {
      const std::int64_t d = indexer ? 128 : 512, width = compress_input_width(csa_ratio, d);
      const host_prefill h = make_prefill(tokens, width, d, ++seed);
      std::vector<float> rows(static_cast<std::size_t>(n * d));
      REQUIRE(ref::write_path_rows(h.problem(csa_ratio, tokens, width, table.view(), indexer),
                                   make_tensor_view(rows.data(), n, d)) == status::ok);
      const tensor_view<const float> x{rows.data(), n, d, d};
      if (indexer) {
        const fp8_rows out{v.indexer.row_codes(written), v.indexer.scales + written, n, d};
        REQUIRE(ref::encode_fp8(x, fp8_scale_mode::fp32, out) == status::ok);
        index_rows.insert(index_rows.end(), rows.begin(), rows.end());
      } else {
        const nvfp4_rows out{v.main.row_codes(written), v.main.row_block_scales(written),
                             v.main.global_scales + written, n, d};
        REQUIRE(ref::encode_nvfp4(x, out) == status::ok);
        main_rows.insert(main_rows.end(), rows.begin(), rows.end());
      }
    }
    written += n;
  }
  REQUIRE(written == 378);

  // Nothing outside rows [0, written) of each array, nor the padding, was touched.
  const auto untouched = [&](const std::uint8_t* from, const std::uint8_t* to) {
    return std::all_of(from, to, [](std::uint8_t b) { return b == sentinel; });
  };
  CHECK(untouched(v.main.row_codes(written), mem.base + l.main_block_scales.offset));
  CHECK(untouched(v.main.row_block_scales(written), mem.base + l.main_global_scales.offset));
  CHECK(untouched(reinterpret_cast<std::uint8_t*>(v.main.global_scales + written), mem.base + l.indexer_codes.offset));
  CHECK(untouched(v.indexer.row_codes(written), mem.base + l.indexer_scales.offset));
  CHECK(untouched(reinterpret_cast<std::uint8_t*>(v.indexer.scales + written), mem.base + l.total_bytes));

  // Read back through the written rows only (what compressed_kv_cache::main_rows() describes).
  const const_nvfp4_rows main{v.main.codes, v.main.block_scales, v.main.global_scales, written, 512};
  const const_fp8_rows index{v.indexer.codes, v.indexer.scales, written, 128};
  std::vector<std::uint16_t> all(static_cast<std::size_t>(written * 512)), keys(static_cast<std::size_t>(written * 128));
  REQUIRE(ref::decode_nvfp4_bf16(main, make_tensor_view(all.data(), written, 512)) == status::ok);
  REQUIRE(ref::decode_fp8_bf16(index, make_tensor_view(keys.data(), written, 128)) == status::ok);
  check_quality(main_rows, all, written, 512, 0.12);   // NVFP4: ~0.095 on Gaussian-like rows
  check_quality(index_rows, keys, written, 128, 0.04);  // FP8-E4M3: ~0.026

  // Selected: rows of both prefills, repeats, -1 and rows past the written ones -> zero rows.
  const std::vector<std::int32_t> idx = {0, 249, 250, 377, -1, 17, 17, 378, 399, 1 << 30};
  std::vector<std::uint16_t> sel(idx.size() * 512, 0xFFFF);
  REQUIRE(ref::decode_nvfp4_selected_bf16(main, {idx.data(), static_cast<std::int64_t>(idx.size())},
                                          make_tensor_view(sel.data(), static_cast<std::int64_t>(idx.size()), 512)) ==
          status::ok);
  for (std::size_t j = 0; j < idx.size(); ++j) {
    INFO("index " << idx[j]);
    const bool valid = idx[j] >= 0 && idx[j] < written;
    for (std::int64_t k = 0; k < 512; ++k) {
      const std::uint16_t want = valid ? all[idx[j] * 512 + k] : 0;
      if (sel[j * 512 + k] != want) {
        FAIL_CHECK("element " << k << ": " << sel[j * 512 + k] << " != " << want);
        break;
      }
    }
  }
}
