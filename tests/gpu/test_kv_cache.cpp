// SPDX-License-Identifier: Apache-2.0
// compressed_kv_cache / device_kv_cache on the GPU (compressed_kv_cache.hpp):
//   - a CSA prefill (main KV + indexer keys) and an HCA prefill written through the cache: the
//     whole allocation afterwards equals the host reference encoders run on the GPU's own FP32
//     workspace rows at the appended rows, sentinel bytes everywhere else; the FP32 rows are within
//     1e-5 of the double reference; the fused and two-kernel modes store the same bytes;
//   - read back whole, selected (-1, repeats, rows past rows() inside the capacity) and batched, and
//     the indexer keys: bit-exact against ref::decode_*;
//   - a second prefill appends after the first; capacity overflow (capacity_exceeded) and every bad argument return
//     their status and change no byte, no row count, no workspace byte;
//   - a cache over explicit engine-owned arrays; capture in a CUDA graph and replay;
//   - every read output between guard bands; the two-kernel workspace holds exactly the rows and
//     amax scratch of each stream (sentinel padding), the fused mode leaves it untouched.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // before device_buffer.hpp: its cudaMalloc(&T*) needs the template overload

#include <climits>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "device_buffer.hpp"
#include "dsv4kv/compressed_kv_cache.hpp"
#include "dsv4kv/device_kv_cache.hpp"
#include "dsv4kv/kv_cache_layout.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "write_path_fixtures.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

// One prefill's projections for a layer: the main KV (d = 512) and, for CSA, the indexer keys
// (d = 128, Hadamard-rotated), with the same ratio, T and element types.
struct prefill {
  int ratio;
  bool indexer;
  compress_case main, idx;
  device_compress_case dmain, didx;
  prefill(int m, bool with_indexer, std::int64_t tokens, compress_options opt, std::uint64_t seed)
      : ratio(m),
        indexer(with_indexer),
        main(make_compress_case(m, 512, tokens, opt, seed)),
        idx(make_compress_case(m, 128, with_indexer ? tokens : 0, opt, seed + 1)),
        dmain(main),
        didx(idx) {}
  std::int64_t rows() const { return main.rows(); }
  static epilogue_options main_epilogue() {
    epilogue_options e;
    e.rope = true;
    return e;
  }
  static epilogue_options indexer_epilogue() {
    epilogue_options e;
    e.rope = true;
    e.hadamard = true;
    return e;
  }
};

// Appends p through the cache with compress_params<IN, BIAS>.
template <class IN, class BIAS>
status append_typed(compressed_kv_cache& cache, const prefill& p, rope_table_view rope, span<std::uint8_t> ws,
                    cudaStream_t stream, write_path_mode mode, fp8_scale_mode scale) {
  const compress_params<IN, BIAS> m = make_params<IN, BIAS>(p.main, p.dmain, prefill::main_epilogue(), rope);
  if (!p.indexer) return cache.append_prefill(m, ws, stream, mode);
  const compress_params<IN, BIAS> i = make_params<IN, BIAS>(p.idx, p.didx, prefill::indexer_epilogue(), rope);
  return cache.append_prefill(m, i, scale, ws, stream, mode);
}

// Appends p with the element types its case was drawn with (FP32 or BF16 projections and bias).
status append(compressed_kv_cache& cache, const prefill& p, rope_table_view rope, span<std::uint8_t> ws,
              cudaStream_t stream, write_path_mode mode = write_path_mode::two_kernel,
              fp8_scale_mode scale = fp8_scale_mode::fp32) {
  if (p.main.opt.bf16_inputs) return append_typed<std::uint16_t, std::uint16_t>(cache, p, rope, ws, stream, mode, scale);
  return append_typed<float, float>(cache, p, rope, ws, stream, mode, scale);
}

// Copies `count` T from device memory.
template <class T>
std::vector<T> from_device(const T* p, std::int64_t count) {
  std::vector<T> h(static_cast<std::size_t>(count));
  if (count > 0) DSV4KV_TEST_CUDA(cudaMemcpy(h.data(), p, h.size() * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

// The whole allocation of a device_kv_cache, as bytes.
std::vector<std::uint8_t> image_of(const device_kv_cache& c) {
  return from_device(static_cast<const std::uint8_t*>(c.storage()), c.layout().total_bytes);
}

// A freshly created cache (storage and workspace filled with the sentinel byte).
device_kv_cache make_cache(const kv_cache_shape& shape, std::int64_t max_append_rows) {
  device_kv_cache c;
  REQUIRE(device_kv_cache::create(shape, max_append_rows, c) == status::ok);
  if (c.layout().total_bytes > 0) {
    DSV4KV_TEST_CUDA(cudaMemset(c.storage(), sentinel_byte, static_cast<std::size_t>(c.layout().total_bytes)));
  }
  if (c.workspace().size > 0) {
    DSV4KV_TEST_CUDA(cudaMemset(c.workspace().data, sentinel_byte, static_cast<std::size_t>(c.workspace().size)));
  }
  return c;
}

// The host image of what a cache allocation must hold: sentinel bytes, plus reference-encoded rows.
struct expected_image {
  kv_cache_layout layout;
  std::vector<std::uint8_t> bytes;
  explicit expected_image(const kv_cache_layout& l)
      : layout(l), bytes(static_cast<std::size_t>(l.total_bytes), static_cast<std::uint8_t>(sentinel_byte)) {}
  kv_cache_views views() { return kv_cache_views_at(layout, bytes.data()); }
  // Encodes FP32 rows [n, d] with the host reference at rows [first, first + n) of each stream.
  void put(std::int64_t first, const std::vector<float>& main_rows, const std::vector<float>& idx_rows,
           fp8_scale_mode scale) {
    const kv_cache_views v = views();
    const std::int64_t n = static_cast<std::int64_t>(main_rows.size()) / 512;
    const nvfp4_rows m{v.main.row_codes(first), v.main.row_block_scales(first), v.main.global_scales + first, n, 512};
    REQUIRE(ref::encode_nvfp4({main_rows.data(), n, 512, 512}, m) == status::ok);
    if (layout.shape.indexer_d > 0) {
      const fp8_rows i{v.indexer.row_codes(first), v.indexer.scales + first, n, 128};
      REQUIRE(ref::encode_fp8({idx_rows.data(), n, 128, 128}, scale, i) == status::ok);
    }
  }
  // The stored rows [0, rows) as read-only views over the image.
  const_nvfp4_rows main_rows(std::int64_t rows) {
    const kv_cache_views v = views();
    return {v.main.codes, v.main.block_scales, v.main.global_scales, rows, 512};
  }
  const_fp8_rows indexer_rows(std::int64_t rows) {
    const kv_cache_views v = views();
    return {v.indexer.codes, v.indexer.scales, rows, 128};
  }
};

// The FP32 rows a two-kernel append of n rows left in the workspace (main, indexer).
std::vector<float> ws_main_rows(const compressed_kv_cache& c, span<std::uint8_t> ws, std::int64_t n) {
  return from_device(c.workspace_main_rows(ws, n).data, n * 512);
}
std::vector<float> ws_indexer_rows(const compressed_kv_cache& c, span<std::uint8_t> ws, std::int64_t n) {
  return c.has_indexer() ? from_device(c.workspace_indexer_rows(ws, n).data, n * 128) : std::vector<float>{};
}

// What a two-kernel append of n rows wrote into a cache workspace that held only sentinel bytes
// before: the main KV's FP32 rows (main_rows) and amax scratch at offset 0, then (CSA) the
// indexer's at the offset workspace_indexer_rows() names, each amax scratch at the next
// write_path_workspace_alignment boundary after its rows (write_path.hpp); every other byte of the
// workspace is still the sentinel.
void check_workspace_layout(const compressed_kv_cache& c, span<std::uint8_t> ws, std::int64_t n,
                            const std::vector<float>& main_rows, const std::vector<float>& idx_rows) {
  std::vector<std::uint8_t> image = from_device(ws.data, ws.size);
  const auto take = [&](std::int64_t at, const void* want, std::int64_t bytes) {
    REQUIRE(at + bytes <= static_cast<std::int64_t>(image.size()));
    if (bytes == 0) return;
    CHECK(std::memcmp(image.data() + at, want, static_cast<std::size_t>(bytes)) == 0);
    std::memset(image.data() + at, sentinel_byte, static_cast<std::size_t>(bytes));
  };
  const auto stream_part = [&](std::int64_t at, const std::vector<float>& rows, std::int64_t d) {
    const std::int64_t rows_bytes = n * d * static_cast<std::int64_t>(sizeof(float)), a = write_path_workspace_alignment;
    const std::vector<float> amax = packed_row_amax(rows.data(), n, d, d);
    take(at, rows.data(), rows_bytes);
    take(at + (rows_bytes + a - 1) / a * a, amax.data(), n * static_cast<std::int64_t>(sizeof(float)));
  };
  stream_part(0, main_rows, c.main_d());
  if (c.has_indexer() && n > 0) {
    const auto* idx = reinterpret_cast<const std::uint8_t*>(c.workspace_indexer_rows(ws, n).data);
    stream_part(idx - ws.data, idx_rows, c.indexer_d());
  }
  CHECK(count_bytes_not(image.data(), image.size(), sentinel_byte) == 0);
}

// The BF16 reads of a cache with `rows` rows against the reference decoders on the expected image.
void check_reads(const compressed_kv_cache& cache, expected_image& want, std::int64_t rows, cudaStream_t stream,
                 std::uint32_t seed) {
  REQUIRE(cache.rows() == rows);
  const const_nvfp4_rows ref_main = want.main_rows(rows);

  // All rows.
  const guarded_array<std::uint16_t> all(rows, 512, 512);
  REQUIRE(cache.read_main(all.view(), stream) == status::ok);
  std::vector<std::uint16_t> ref_all(static_cast<std::size_t>(rows * 512));
  REQUIRE(ref::decode_nvfp4_bf16(ref_main, make_tensor_view(ref_all.data(), rows, 512)) == status::ok);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(all.checked() == ref_all);

  // Selected: both ends, repeats, -1, rows past rows() inside the capacity, INT32_MAX, random.
  std::mt19937 rng(seed);
  std::vector<std::int32_t> idx = {0, static_cast<std::int32_t>(rows - 1), -1, static_cast<std::int32_t>(rows),
                                   static_cast<std::int32_t>(cache.capacity() - 1), INT32_MAX, 5, 5, INT32_MIN};
  std::uniform_int_distribution<std::int32_t> pick(-1, static_cast<std::int32_t>(rows - 1));
  while (idx.size() < 64) idx.push_back(pick(rng));
  const std::int64_t k = static_cast<std::int64_t>(idx.size());
  const device_buffer<std::int32_t> d_idx(idx);
  const guarded_array<std::uint16_t> sel(k, 512, 512 + 64);  // strided: sentinel gaps between rows
  REQUIRE(cache.read_main_selected({d_idx.get(), k}, sel.view(), stream) == status::ok);
  std::vector<std::uint16_t> ref_sel(static_cast<std::size_t>(k * 512));
  REQUIRE(ref::decode_nvfp4_selected_bf16(ref_main, {idx.data(), k}, make_tensor_view(ref_sel.data(), k, 512)) ==
          status::ok);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(sel.checked() == ref_sel);

  // Batched: 8 query tokens x 64 indices (the same list rotated per token), token stride > k rows.
  const std::int64_t tokens = 8, token_stride = (k + 3) * 512;
  std::vector<std::int32_t> bidx(static_cast<std::size_t>(tokens * k));
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (std::int64_t j = 0; j < k; ++j) bidx[t * k + j] = idx[(j + 7 * t) % k];
  }
  const device_buffer<std::int32_t> d_bidx(bidx);
  // One guarded row per query token holding its k rows; the 3 rows after them stay sentinel.
  const guarded_array<std::uint16_t> bsel(tokens, k * 512, token_stride);
  REQUIRE(cache.read_main_selected_batched({d_bidx.get(), tokens, k, k},
                                           {bsel.data(), tokens, k, 512, 512, token_stride}, stream) == status::ok);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  const std::vector<std::uint16_t> got = bsel.checked();  // [tokens, k * 512]; the gaps checked
  for (std::int64_t t = 0; t < tokens; ++t) {
    INFO("query token " << t);
    std::vector<std::uint16_t> ref_t(static_cast<std::size_t>(k * 512));
    REQUIRE(ref::decode_nvfp4_selected_bf16(ref_main, {bidx.data() + t * k, k},
                                            make_tensor_view(ref_t.data(), k, 512)) == status::ok);
    CHECK(std::vector<std::uint16_t>(got.begin() + t * k * 512, got.begin() + (t + 1) * k * 512) == ref_t);
  }

  // Indexer keys.
  if (cache.has_indexer()) {
    const guarded_array<std::uint16_t> keys(rows, 128, 128);
    REQUIRE(cache.read_indexer(keys.view(), stream) == status::ok);
    std::vector<std::uint16_t> ref_keys(static_cast<std::size_t>(rows * 128));
    REQUIRE(ref::decode_fp8_bf16(want.indexer_rows(rows), make_tensor_view(ref_keys.data(), rows, 128)) == status::ok);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    CHECK(keys.checked() == ref_keys);
  }
}

struct stream_guard {
  cudaStream_t s = nullptr;
  stream_guard() { REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess); }
  ~stream_guard() { (void)cudaStreamDestroy(s); }
};

}  // namespace

TEST_CASE("kv cache: one prefill round trip, bit-exact against the host reference", "[gpu][kv_cache]") {
  const device_rope_table table(yarn_table());
  const stream_guard stream;
  struct config {
    const char* name;
    int ratio;
    bool indexer;
    std::int64_t tokens, capacity;
    compress_options opt;
    fp8_scale_mode scale;
  };
  const config configs[] = {
      {"CSA layer, FP32 projections, FP8 fp32 scales", 4, true, 4097, 1100, {false, true, false, true}, fp8_scale_mode::fp32},
      {"CSA layer, BF16 projections, FP8 pow2 scales", 4, true, 1031, 257, {true, true, true, true}, fp8_scale_mode::pow2},
      {"HCA layer, BF16 projections", 128, false, 8192 + 77, 70, {true, true, true, true}, fp8_scale_mode::fp32},
      {"HCA layer, FP32 projections, fewer tokens than one block", 128, false, 127, 4, {false, true, false, true},
       fp8_scale_mode::fp32},
  };
  std::uint64_t seed = 900;
  for (const config& cfg : configs) {
    INFO(cfg.name);
    const prefill p(cfg.ratio, cfg.indexer, cfg.tokens, cfg.opt, seed += 10);
    const std::int64_t n = p.rows();
    const kv_cache_shape shape = cfg.indexer ? csa_layer_shape(cfg.capacity) : hca_layer_shape(cfg.capacity);
    device_kv_cache owned = make_cache(shape, n);
    compressed_kv_cache& cache = owned.cache();
    const span<std::uint8_t> ws = owned.workspace();
    CHECK(ws.size == cache.workspace_bytes(n));

    REQUIRE(append(cache, p, table.view, ws, stream.s, write_path_mode::two_kernel, cfg.scale) == status::ok);
    REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
    CHECK(cache.rows() == n);
    CHECK(cache.free_rows() == cfg.capacity - n);

    // The FP32 rows: the write path's accuracy against the double reference (SPEC §9).
    const std::vector<float> main_rows = ws_main_rows(cache, ws, n), idx_rows = ws_indexer_rows(cache, ws, n);
    check_workspace_layout(cache, ws, n, main_rows, idx_rows);
    CHECK(max_relative_error(main_rows.data(), 512, reference_rows(p.main, prefill::main_epilogue()), n, 512) <=
          compress_tolerance);
    if (cfg.indexer) {
      CHECK(max_relative_error(idx_rows.data(), 128, reference_rows(p.idx, prefill::indexer_epilogue()), n, 128) <=
            compress_tolerance);
    }

    // The stored bytes: the reference encoding of those rows at rows [0, n), nothing else touched.
    expected_image want(owned.layout());
    want.put(0, main_rows, idx_rows, cfg.scale);
    CHECK(image_of(owned) == want.bytes);
    check_reads(cache, want, n, stream.s, static_cast<std::uint32_t>(seed));

    // The fused mode (the default) stores the same bytes.
    device_kv_cache fused = make_cache(shape, n);
    REQUIRE(append(fused.cache(), p, table.view, fused.workspace(), stream.s, write_path_mode::fused, cfg.scale) ==
            status::ok);
    REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
    CHECK(fused.cache().rows() == n);
    CHECK(image_of(fused) == want.bytes);
    CHECK(all_bytes_are(from_device(fused.workspace().data, fused.workspace().size), sentinel_byte));  // unused
  }
}

TEST_CASE("kv cache: a second prefill appends after the first; reset starts over", "[gpu][kv_cache]") {
  const device_rope_table table(yarn_table());
  const stream_guard stream;
  for (const bool csa : {true, false}) {
    INFO((csa ? "CSA layer" : "HCA layer"));
    const int m = csa ? 4 : 128;
    const prefill a(m, csa, csa ? 1001 : 128 * 40 + 3, {false, true, false, true}, 41);
    const prefill b(m, csa, csa ? 515 : 128 * 17 + 100, {false, true, false, true}, 43);
    const std::int64_t na = a.rows(), nb = b.rows(), capacity = na + nb + 5;
    device_kv_cache owned = make_cache(csa ? csa_layer_shape(capacity) : hca_layer_shape(capacity), na);
    compressed_kv_cache& cache = owned.cache();
    const span<std::uint8_t> ws = owned.workspace();
    expected_image want(owned.layout());

    REQUIRE(append(cache, a, table.view, ws, stream.s) == status::ok);
    REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
    want.put(0, ws_main_rows(cache, ws, na), ws_indexer_rows(cache, ws, na), fp8_scale_mode::fp32);
    REQUIRE(append(cache, b, table.view, ws, stream.s) == status::ok);
    REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
    want.put(na, ws_main_rows(cache, ws, nb), ws_indexer_rows(cache, ws, nb), fp8_scale_mode::fp32);
    CHECK(cache.rows() == na + nb);
    CHECK(cache.free_rows() == 5);
    CHECK(image_of(owned) == want.bytes);
    check_reads(cache, want, na + nb, stream.s, 77);

    // reset(): the next prefill lands at row 0 again (rows past it keep the old bytes).
    cache.reset();
    CHECK((cache.rows() == 0 && cache.main_rows().rows == 0 && cache.indexer_rows().rows == 0));
    REQUIRE(append(cache, b, table.view, ws, stream.s) == status::ok);
    REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
    CHECK(cache.rows() == nb);
    want.put(0, ws_main_rows(cache, ws, nb), ws_indexer_rows(cache, ws, nb), fp8_scale_mode::fp32);
    CHECK(image_of(owned) == want.bytes);
  }
}

TEST_CASE("kv cache: capacity overflow returns capacity_exceeded and changes nothing", "[gpu][kv_cache][validation]") {
  const device_rope_table table(yarn_table());
  const stream_guard stream;
  const compress_options opt{false, true, false, true};
  const prefill a(4, true, 1001, opt, 51);  // 250 rows
  const prefill b(4, true, 515, opt, 53);   // 128 rows
  const prefill c(4, true, 203, opt, 55);   // 50 rows
  const prefill one(4, true, 4, opt, 57);   // 1 row
  const prefill none(4, true, 3, opt, 59);  // 0 rows
  device_kv_cache owned = make_cache(csa_layer_shape(300), 250);
  compressed_kv_cache& cache = owned.cache();
  const span<std::uint8_t> ws = owned.workspace();
  REQUIRE(append(cache, a, table.view, ws, stream.s) == status::ok);
  REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
  const std::vector<std::uint8_t> after_a = image_of(owned);
  DSV4KV_TEST_CUDA(cudaMemset(ws.data, sentinel_byte, static_cast<std::size_t>(ws.size)));

  for (const write_path_mode mode : {write_path_mode::two_kernel, write_path_mode::fused}) {
    CHECK(append(cache, b, table.view, ws, stream.s, mode) == status::capacity_exceeded);  // 250 + 128 > 300
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(cache.rows() == 250);
    CHECK(image_of(owned) == after_a);
    CHECK(all_bytes_are(from_device(ws.data, ws.size), sentinel_byte));
  }
  REQUIRE(append(cache, c, table.view, ws, stream.s) == status::ok);  // exactly fills it
  REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
  CHECK((cache.rows() == 300 && cache.free_rows() == 0));
  const std::vector<std::uint8_t> full = image_of(owned);
  CHECK(append(cache, one, table.view, ws, stream.s) == status::capacity_exceeded);
  CHECK(append(cache, none, table.view, ws, stream.s) == status::ok);  // 0 rows always fit
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(cache.rows() == 300);
  CHECK(image_of(owned) == full);

  // An HCA cache and an empty (default) cache.
  const prefill h(128, false, 128 * 3, opt, 61);
  device_kv_cache hca = make_cache(hca_layer_shape(2), 3);
  CHECK(append(hca.cache(), h, table.view, hca.workspace(), stream.s) == status::capacity_exceeded);
  compressed_kv_cache empty;
  CHECK(append(empty, h, table.view, hca.workspace(), stream.s) == status::capacity_exceeded);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(hca.cache().rows() == 0);
  CHECK(all_bytes_are(image_of(hca), sentinel_byte));
}

TEST_CASE("kv cache: bad arguments launch nothing and change nothing", "[gpu][kv_cache][validation]") {
  const device_rope_table table(yarn_table());
  const stream_guard stream;
  const compress_options opt{false, true, false, true};
  const prefill p(4, true, 257, opt, 71);  // 64 rows
  const std::int64_t n = p.rows();
  device_kv_cache owned = make_cache(csa_layer_shape(100), n + 8);
  compressed_kv_cache& cache = owned.cache();
  const span<std::uint8_t> ws{owned.workspace().data, cache.workspace_bytes(n)};
  device_kv_cache hca = make_cache(hca_layer_shape(100), n);
  const auto nothing_changed = [&] {
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK((cache.rows() == 0 && hca.cache().rows() == 0));
    CHECK(all_bytes_are(image_of(owned), sentinel_byte));
    CHECK(all_bytes_are(image_of(hca), sentinel_byte));
    CHECK(all_bytes_are(from_device(owned.workspace().data, owned.workspace().size), sentinel_byte));
  };
  const rope_table_view rope = table.view;
  const auto main = make_params<float, float>(p.main, p.dmain, prefill::main_epilogue(), rope);
  const auto idx = make_params<float, float>(p.idx, p.didx, prefill::indexer_epilogue(), rope);
  const auto csa_append = [&](const compress_params<float, float>& m, const compress_params<float, float>& i,
                              span<std::uint8_t> w, write_path_mode mode = write_path_mode::two_kernel) {
    return cache.append_prefill(m, i, fp8_scale_mode::fp32, w, stream.s, mode);
  };
  const auto as_floats = [](const void* q) { return static_cast<const float*>(q); };

  SECTION("the overload must match the layer") {
    CHECK(cache.append_prefill(main, ws, stream.s) == status::invalid_argument);  // CSA cache, no indexer given
    CHECK(hca.cache().append_prefill(main, idx, fp8_scale_mode::fp32, hca.workspace(), stream.s) ==
          status::invalid_argument);
  }
  SECTION("main and indexer must agree on ratio and tokens") {
    auto i = idx;
    i.kv.rows -= 4;
    i.gate.rows -= 4;
    CHECK(csa_append(main, i, ws) == status::invalid_argument);
    i = idx;
    i.ratio = 128;
    CHECK(csa_append(main, i, ws) == status::invalid_argument);
    auto m = main;
    m.ratio = 8;
    CHECK(csa_append(m, idx, ws) == status::unsupported_shape);
    m = main;
    m.kv.rows = -4;
    CHECK(csa_append(m, idx, ws) == status::invalid_argument);
  }
  SECTION("a bad indexer argument stops the main KV write too") {
    auto i = idx;
    i.kv.data = nullptr;
    CHECK(csa_append(main, i, ws) == status::null_pointer);
    i = idx;
    i.norm_weight = idx.norm_weight + 1;
    CHECK(csa_append(main, i, ws) == status::misaligned);
    i = idx;
    i.eps = std::numeric_limits<float>::quiet_NaN();
    CHECK(csa_append(main, i, ws) == status::invalid_argument);
    i = idx;
    i.hadamard = true;
    i.rope.rope_dim = 6;
    CHECK(csa_append(main, i, ws) == status::unsupported_shape);
    CHECK(cache.append_prefill(main, idx, static_cast<fp8_scale_mode>(9), ws, stream.s) == status::invalid_argument);
    CHECK(csa_append(main, idx, ws, static_cast<write_path_mode>(7)) == status::invalid_argument);
  }
  SECTION("the workspace: size, null, alignment") {
    CHECK(csa_append(main, idx, {ws.data, ws.size - 1}) == status::invalid_argument);
    CHECK(csa_append(main, idx, {nullptr, ws.size}) == status::null_pointer);
    CHECK(csa_append(main, idx, {ws.data + 4, ws.size}) == status::misaligned);
    CHECK(hca.cache().append_prefill(make_params<float, float>(p.main, p.dmain, prefill::main_epilogue(), rope),
                                     {hca.workspace().data, hca.workspace().size - 16}, stream.s,
                                     write_path_mode::two_kernel) == status::invalid_argument);
  }
  SECTION("aliasing: inputs in the cache or the workspace, the workspace in the cache") {
    auto* storage = static_cast<std::uint8_t*>(owned.storage());
    const kv_cache_layout& l = owned.layout();
    // The workspace over the cache (even over rows the append would not write).
    CHECK(csa_append(main, idx, {storage, ws.size}) == status::aliasing);
    // An indexer input inside the main KV codes: the first write path would clobber it.
    auto i = idx;
    i.norm_weight = as_floats(storage + l.main_codes.offset + 256 * 90);
    CHECK(csa_append(main, i, ws) == status::aliasing);
    // A main-KV input inside the indexer's part of the workspace.
    auto m = main;
    m.norm_weight = as_floats(ws.data + ws.size - 1024);
    CHECK(csa_append(m, idx, ws) == status::aliasing);
    // An input inside unwritten rows of the cache.
    i = idx;
    i.position_bias = as_floats(storage + l.indexer_codes.offset + 128 * 99);
    CHECK(csa_append(main, i, ws) == status::aliasing);
    // HCA: an input in the cache.
    auto hm = main;
    hm.ratio = 128;
    hm.kv = {as_floats(static_cast<std::uint8_t*>(hca.storage())), 128, 512, 512};
    hm.gate = hm.kv;
    hm.position_bias = nullptr;
    CHECK(hca.cache().append_prefill(hm, hca.workspace(), stream.s) == status::aliasing);
  }
  SECTION("reads: shapes, alignment, aliasing; an empty read is ok") {
    device_buffer<std::uint16_t> out(static_cast<std::size_t>(8 * 512 + 8));
    out.fill_bytes(sentinel_byte);
    CHECK(cache.read_main(make_tensor_view(out.get(), 0, 512), stream.s) == status::ok);  // 0 rows written
    CHECK(cache.read_main(make_tensor_view(out.get(), 1, 512), stream.s) == status::invalid_argument);
    CHECK(hca.cache().read_indexer(make_tensor_view(out.get(), 0, 128), stream.s) == status::invalid_argument);
    const std::int32_t* null_idx = nullptr;
    CHECK(cache.read_main_selected({null_idx, 1}, make_tensor_view(out.get(), 1, 512), stream.s) ==
          status::null_pointer);
    const device_buffer<std::int32_t> some(std::vector<std::int32_t>{0, -1});
    CHECK(cache.read_main_selected({some.get(), 2}, make_tensor_view(out.get() + 1, 2, 512), stream.s) ==
          status::misaligned);
    auto* in_cache = reinterpret_cast<std::uint16_t*>(owned.storage());
    CHECK(cache.read_main_selected({some.get(), 2}, make_tensor_view(in_cache, 2, 512), stream.s) ==
          status::aliasing);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(out));
  }
  nothing_changed();
}

TEST_CASE("kv cache: over explicit engine-owned arrays", "[gpu][kv_cache]") {
  const device_rope_table table(yarn_table());
  const stream_guard stream;
  const prefill p(4, true, 402, {false, true, false, true}, 81);  // 100 rows
  const std::int64_t n = p.rows(), capacity = 128;
  // Five separate allocations with guard bands, as an engine with its own pools might hold them.
  const guarded codes(capacity * 256), scales(capacity * 32), g(capacity * 4), icodes(capacity * 128), is(capacity * 4);
  compressed_kv_cache cache;
  REQUIRE(compressed_kv_cache::create({codes.data(), scales.data(), g.f32(), capacity, 512},
                                      {icodes.data(), is.f32(), capacity, 128}, cache) == status::ok);
  const guarded ws(cache.workspace_bytes(n));  // guard bands around the engine's workspace too
  const span<std::uint8_t> w{ws.data(), cache.workspace_bytes(n)};
  REQUIRE(append(cache, p, table.view, w, stream.s) == status::ok);
  REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
  const std::vector<float> mr = ws_main_rows(cache, w, n), ir = ws_indexer_rows(cache, w, n);
  kv_cache_layout l;
  REQUIRE(make_kv_cache_layout(csa_layer_shape(capacity), l) == status::ok);
  expected_image want(l);
  want.put(0, mr, ir, fp8_scale_mode::fp32);
  const kv_cache_views v = want.views();
  const auto part = [](const std::uint8_t* p0, std::int64_t bytes) { return std::vector<std::uint8_t>(p0, p0 + bytes); };
  CHECK(codes.checked() == part(v.main.codes, capacity * 256));  // checked(): guard bands intact
  CHECK(scales.checked() == part(v.main.block_scales, capacity * 32));
  CHECK(g.checked() == part(reinterpret_cast<const std::uint8_t*>(v.main.global_scales), capacity * 4));
  CHECK(icodes.checked() == part(v.indexer.codes, capacity * 128));
  CHECK(is.checked() == part(reinterpret_cast<const std::uint8_t*>(v.indexer.scales), capacity * 4));
  check_reads(cache, want, n, stream.s, 5);
  CHECK(ws.damaged_bytes(ws.download_all()) == 0);
}

TEST_CASE("kv cache: an append captured in a CUDA graph writes on replay", "[gpu][kv_cache][graph]") {
  const device_rope_table table(yarn_table());
  const stream_guard stream;
  const prefill p(4, true, 64, {false, true, false, true}, 91);  // decode-sized: 16 rows
  const std::int64_t n = p.rows();
  device_kv_cache eager = make_cache(csa_layer_shape(32), n);
  device_kv_cache replayed = make_cache(csa_layer_shape(32), n);
  REQUIRE(append(eager.cache(), p, table.view, eager.workspace(), stream.s, write_path_mode::fused) == status::ok);
  REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
  const std::vector<std::uint8_t> want = image_of(eager);

  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal) == cudaSuccess);
  const status captured = append(replayed.cache(), p, table.view, replayed.workspace(), stream.s, write_path_mode::fused);
  REQUIRE(cudaStreamEndCapture(stream.s, &graph) == cudaSuccess);
  REQUIRE(captured == status::ok);
  CHECK(replayed.cache().rows() == n);  // host bookkeeping advances at capture
  REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
  CHECK(all_bytes_are(image_of(replayed), sentinel_byte));  // nothing ran yet
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (int launch = 0; launch < 2; ++launch) {
    DSV4KV_TEST_CUDA(cudaMemset(replayed.storage(), sentinel_byte, static_cast<std::size_t>(replayed.layout().total_bytes)));
    REQUIRE(cudaGraphLaunch(exec, stream.s) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(stream.s) == cudaSuccess);
    CHECK(image_of(replayed) == want);
  }
  REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
  REQUIRE(cudaGraphDestroy(graph) == cudaSuccess);
}

TEST_CASE("device_kv_cache: creation, sizes, ownership", "[gpu][kv_cache]") {
  device_kv_cache c;
  REQUIRE(device_kv_cache::create(csa_layer_shape(1000), 300, c) == status::ok);
  CHECK(c.storage() != nullptr);
  CHECK(detail::is_aligned(c.storage(), kv_cache_alignment));
  CHECK((c.cache().capacity() == 1000 && c.cache().rows() == 0 && c.cache().has_indexer()));
  CHECK(c.workspace().size == c.cache().workspace_bytes(300));
  CHECK(c.cache().workspace_bytes(300) >= 300 * (512 + 128 + 2) * 4);
  CHECK(c.cache().workspace_bytes(0) == 0);
  void* const storage = c.storage();

  // Failures leave `c` as it was.
  CHECK(device_kv_cache::create(kv_cache_shape{-1, 512, 128}, 1, c) == status::invalid_argument);
  CHECK(device_kv_cache::create(csa_layer_shape(10), -1, c) == status::invalid_argument);
  CHECK(device_kv_cache::create(hca_layer_shape(std::int64_t{1} << 31), 0, c) == status::invalid_argument);
  CHECK(c.storage() == storage);
  CHECK(cudaGetLastError() == cudaSuccess);

  device_kv_cache moved(std::move(c));
  CHECK((moved.storage() == storage && c.storage() == nullptr && c.cache().capacity() == 0));
  device_kv_cache empty;
  REQUIRE(device_kv_cache::create(hca_layer_shape(0), 0, empty) == status::ok);
  CHECK((empty.storage() == nullptr && empty.workspace().size == 0 && !empty.cache().has_indexer()));
}
