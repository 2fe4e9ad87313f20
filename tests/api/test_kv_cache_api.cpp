// SPDX-License-Identifier: Apache-2.0
// compressed_kv_cache validation on the CPU: every rejection append_prefill and the reads document,
// through can_implement_append_prefill and through the entries themselves (which reject before
// launching anything, so no GPU is needed), with the row count unchanged; empty appends return ok
// without a launch. Pointers are fake device addresses: the validation never reads them.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <limits>

#include "dsv4kv/compressed_kv_cache.hpp"
#include "dsv4kv/kv_cache_layout.hpp"
#include "dsv4kv/write_path.hpp"
#include "fake_address.hpp"

using namespace dsv4kv;

namespace {

constexpr cudaStream_t stream = nullptr;
constexpr std::int64_t tokens = 4096;  // -> 1024 rows at ratio 4, 32 at ratio 128

// Projections of one stream at fake addresses from `mib` on: kv, gate, bias, norm; a shared RoPE table.
compress_params<float, float> params(int ratio, std::int64_t d, std::int64_t mib, bool hadamard) {
  const std::int64_t width = compress_input_width(ratio, d);
  compress_params<float, float> p;
  p.ratio = ratio;
  p.kv = {fake<const float>(mib), tokens, width, width};
  p.gate = {fake<const float>(mib + 100), tokens, width, width};
  p.position_bias = fake<const float>(mib + 200);
  p.norm_weight = fake<const float>(mib + 210);
  p.rope = {fake<const float>(50), fake<const float>(60), 8192, 64};  // [8192, 32] each: 1 MiB
  p.hadamard = hadamard;
  return p;
}

struct fixture {
  kv_cache_layout csa_layout, hca_layout;
  compressed_kv_cache csa, hca;
  compress_params<float, float> main = params(4, 512, 1000, false), idx = params(4, 128, 2000, true);
  compress_params<float, float> hca_main = params(128, 512, 3000, false);
  std::uint8_t* cache_base = fake<std::uint8_t>(10000);
  span<std::uint8_t> ws{fake<std::uint8_t>(20000), 0}, hca_ws{fake<std::uint8_t>(30000), 0};
  fixture() {
    REQUIRE(make_kv_cache_layout(csa_layer_shape(1100), csa_layout) == status::ok);
    REQUIRE(make_kv_cache_layout(hca_layer_shape(40), hca_layout) == status::ok);
    REQUIRE(compressed_kv_cache::create(cache_base, csa_layout.total_bytes, csa_layout, csa) == status::ok);
    REQUIRE(compressed_kv_cache::create(fake<std::uint8_t>(15000), hca_layout.total_bytes, hca_layout, hca) == status::ok);
    ws.size = csa.workspace_bytes(1024);
    hca_ws.size = hca.workspace_bytes(32);
  }
  // The status of a CSA append through can_implement and through the entry (which must agree and,
  // for any status but ok, launch nothing); the row count must not move.
  status csa_status(const compress_params<float, float>& m, const compress_params<float, float>& i,
                    span<std::uint8_t> w, write_path_mode mode = write_path_mode::two_kernel,
                    fp8_scale_mode scale = fp8_scale_mode::fp32) {
    const status s = csa.can_implement_append_prefill(m, i, scale, w, mode);
    if (s != status::ok) CHECK(csa.append_prefill(m, i, scale, w, stream, mode) == s);
    CHECK(csa.rows() == 0);
    return s;
  }
  status hca_status(const compress_params<float, float>& m, span<std::uint8_t> w,
                    write_path_mode mode = write_path_mode::two_kernel) {
    const status s = hca.can_implement_append_prefill(m, w, mode);
    if (s != status::ok) CHECK(hca.append_prefill(m, w, stream, mode) == s);
    CHECK(hca.rows() == 0);
    return s;
  }
};

}  // namespace

TEST_CASE("kv cache api: valid appends pass validation in both modes", "[api][kv_cache]") {
  fixture f;
  for (const write_path_mode mode : {write_path_mode::two_kernel, write_path_mode::fused}) {
    CHECK(f.csa_status(f.main, f.idx, f.ws, mode) == status::ok);
    CHECK(f.csa_status(f.main, f.idx, f.ws, mode, fp8_scale_mode::pow2) == status::ok);
    CHECK(f.hca_status(f.hca_main, f.hca_ws, mode) == status::ok);
  }
  // The fused mode neither uses nor checks the workspace.
  for (const span<std::uint8_t> ignored : {span<std::uint8_t>{}, span<std::uint8_t>{f.ws.data + 1, 3},
                                           span<std::uint8_t>{nullptr, -5}}) {
    CHECK(f.csa_status(f.main, f.idx, ignored, write_path_mode::fused) == status::ok);
    CHECK(f.hca_status(f.hca_main, ignored, write_path_mode::fused) == status::ok);
  }
  // A workspace that is larger than needed is fine; 0-row appends are ok without a launch.
  CHECK(f.csa_status(f.main, f.idx, {f.ws.data, f.ws.size + 4096}) == status::ok);
  auto m = f.main, i = f.idx;
  m.kv.rows = m.gate.rows = i.kv.rows = i.gate.rows = 3;
  CHECK(f.csa.append_prefill(m, i, fp8_scale_mode::fp32, {}, stream, write_path_mode::two_kernel) == status::ok);
  auto h = f.hca_main;
  h.kv.rows = h.gate.rows = 127;
  CHECK(f.hca.append_prefill(h, {}, stream) == status::ok);
  CHECK((f.csa.rows() == 0 && f.hca.rows() == 0));
}

TEST_CASE("kv cache api: the overload, the ratio and the token counts", "[api][kv_cache]") {
  fixture f;
  CHECK(f.csa.can_implement_append_prefill(f.main, f.ws) == status::invalid_argument);  // CSA layer: indexer needed
  CHECK(f.csa.append_prefill(f.main, f.ws, stream) == status::invalid_argument);
  CHECK(f.hca.can_implement_append_prefill(f.hca_main, f.idx, fp8_scale_mode::fp32, f.hca_ws) ==
        status::invalid_argument);
  CHECK(f.hca.append_prefill(f.hca_main, f.idx, fp8_scale_mode::fp32, f.hca_ws, stream) == status::invalid_argument);
  // A default cache has no storage: any row overflows its capacity of 0.
  CHECK(compressed_kv_cache{}.can_implement_append_prefill(f.hca_main, f.hca_ws) == status::capacity_exceeded);

  auto i = f.idx;
  i.kv.rows = i.gate.rows = tokens - 4;
  CHECK(f.csa_status(f.main, i, f.ws) == status::invalid_argument);
  i = f.idx;
  i.ratio = 128;
  CHECK(f.csa_status(f.main, i, f.ws) == status::invalid_argument);
  auto m = f.main;
  m.ratio = 8;
  CHECK(f.csa_status(m, f.idx, f.ws) == status::unsupported_shape);
  m.ratio = 0;
  CHECK(f.csa_status(m, f.idx, f.ws) == status::unsupported_shape);
  m = f.main;
  m.kv.rows = -4;
  CHECK(f.csa_status(m, f.idx, f.ws) == status::invalid_argument);
  CHECK(f.csa_status(f.main, f.idx, f.ws, static_cast<write_path_mode>(7)) == status::invalid_argument);
  CHECK(f.csa_status(f.main, f.idx, f.ws, write_path_mode::two_kernel, static_cast<fp8_scale_mode>(9)) ==
        status::invalid_argument);
}

TEST_CASE("kv cache api: capacity overflow", "[api][kv_cache]") {
  fixture f;
  kv_cache_layout small;
  REQUIRE(make_kv_cache_layout(csa_layer_shape(1023), small) == status::ok);
  compressed_kv_cache c;
  REQUIRE(compressed_kv_cache::create(f.cache_base, small.total_bytes, small, c) == status::ok);
  for (const write_path_mode mode : {write_path_mode::two_kernel, write_path_mode::fused}) {
    CHECK(c.can_implement_append_prefill(f.main, f.idx, fp8_scale_mode::fp32, f.ws, mode) == status::capacity_exceeded);
    CHECK(c.append_prefill(f.main, f.idx, fp8_scale_mode::fp32, f.ws, stream, mode) == status::capacity_exceeded);
  }
  CHECK(c.rows() == 0);
  REQUIRE(make_kv_cache_layout(csa_layer_shape(1024), small) == status::ok);  // exactly enough
  REQUIRE(compressed_kv_cache::create(f.cache_base, small.total_bytes, small, c) == status::ok);
  CHECK(c.can_implement_append_prefill(f.main, f.idx, fp8_scale_mode::fp32, f.ws) == status::ok);
  CHECK(f.hca_status(f.hca_main, f.hca_ws) == status::ok);
  auto h = f.hca_main;
  h.kv.rows = h.gate.rows = 41 * 128;  // 41 rows into 40
  CHECK(f.hca_status(h, {f.hca_ws.data, f.hca.workspace_bytes(41)}) == status::capacity_exceeded);
}

TEST_CASE("kv cache api: bad arguments of either stream, in both modes", "[api][kv_cache]") {
  fixture f;
  for (const write_path_mode mode : {write_path_mode::two_kernel, write_path_mode::fused}) {
    INFO((mode == write_path_mode::fused ? "fused" : "two-kernel"));
    auto i = f.idx;
    i.kv.data = nullptr;
    CHECK(f.csa_status(f.main, i, f.ws, mode) == status::null_pointer);
    i = f.idx;
    i.norm_weight = f.idx.norm_weight + 1;
    CHECK(f.csa_status(f.main, i, f.ws, mode) == status::misaligned);
    i = f.idx;
    i.eps = std::numeric_limits<float>::quiet_NaN();
    CHECK(f.csa_status(f.main, i, f.ws, mode) == status::invalid_argument);
    i = f.idx;
    i.rope.rope_dim = 6;
    CHECK(f.csa_status(f.main, i, f.ws, mode) == status::unsupported_shape);
    i = f.idx;
    i.rope.max_pos = 100;  // positions up to 4092 needed
    CHECK(f.csa_status(f.main, i, f.ws, mode) == status::invalid_argument);
    CHECK(f.csa_status(f.main, f.idx, f.ws, mode, static_cast<fp8_scale_mode>(9)) == status::invalid_argument);
    auto m = f.main;
    m.kv.cols = 512;  // CSA needs c*d = 1024 columns
    m.gate.cols = 512;
    CHECK(f.csa_status(m, f.idx, f.ws, mode) == status::invalid_argument);
    m = f.main;
    m.gate.data = nullptr;
    CHECK(f.csa_status(m, f.idx, f.ws, mode) == status::null_pointer);
    auto h = f.hca_main;
    h.kv.data = f.hca_main.kv.data + 1;
    CHECK(f.hca_status(h, f.hca_ws, mode) == status::misaligned);
  }
}

TEST_CASE("kv cache api: the workspace", "[api][kv_cache]") {
  fixture f;
  CHECK(f.csa_status(f.main, f.idx, {f.ws.data, f.ws.size - 1}) == status::invalid_argument);
  CHECK(f.csa_status(f.main, f.idx, {f.ws.data, -1}) == status::invalid_argument);
  CHECK(f.csa_status(f.main, f.idx, {nullptr, f.ws.size}) == status::null_pointer);
  CHECK(f.csa_status(f.main, f.idx, {f.ws.data + 8, f.ws.size}) == status::misaligned);
  CHECK(f.hca_status(f.hca_main, {f.hca_ws.data, f.hca_ws.size - 16}) == status::invalid_argument);
  // The two-kernel workspace: the main KV's part, then the indexer's at a 256-byte boundary.
  CHECK(f.csa.workspace_bytes(1024) ==
        detail::round_up_to(write_path_workspace_bytes(1024, 512), kv_cache_alignment) +
            write_path_workspace_bytes(1024, 128));
  CHECK(f.hca.workspace_bytes(32) == write_path_workspace_bytes(32, 512));
  CHECK(f.csa.workspace_main_rows(f.ws, 1024).data == reinterpret_cast<float*>(f.ws.data));
  CHECK(reinterpret_cast<std::uint8_t*>(f.csa.workspace_indexer_rows(f.ws, 1024).data) ==
        f.ws.data + detail::round_up_to(write_path_workspace_bytes(1024, 512), kv_cache_alignment));
  CHECK(f.csa.workspace_indexer_rows(f.ws, 1024).cols == 128);
}

TEST_CASE("kv cache api: aliasing between inputs, the cache and the workspace", "[api][kv_cache]") {
  fixture f;
  const kv_cache_layout& l = f.csa_layout;
  // The workspace inside the cache (over rows this append would not write, too).
  CHECK(f.csa_status(f.main, f.idx, {f.cache_base + l.indexer_codes.offset, f.ws.size}) == status::aliasing);
  for (const write_path_mode mode : {write_path_mode::two_kernel, write_path_mode::fused}) {
    // An indexer input in the main KV's rows: the main write path would overwrite it first.
    auto i = f.idx;
    i.norm_weight = reinterpret_cast<const float*>(f.cache_base + l.main_codes.offset);
    CHECK(f.csa_status(f.main, i, f.ws, mode) == status::aliasing);
    // An input in unwritten rows of the cache.
    i = f.idx;
    i.position_bias = reinterpret_cast<const float*>(f.cache_base + l.main_global_scales.offset + 4 * 1088);
    CHECK(f.csa_status(f.main, i, f.ws, mode) == status::aliasing);
  }
  // A main-KV input in the indexer's part of the workspace.
  auto m = f.main;  // (two-kernel: the fused mode has no workspace)
  m.norm_weight = reinterpret_cast<const float*>(f.ws.data + f.ws.size - 2048);
  CHECK(f.csa_status(m, f.idx, f.ws) == status::aliasing);
  // HCA: the RoPE table inside the cache.
  auto h = f.hca_main;
  h.rope.sin = reinterpret_cast<const float*>(fake<std::uint8_t>(15000));
  CHECK(f.hca_status(h, f.hca_ws) == status::aliasing);
}

TEST_CASE("kv cache api: reads", "[api][kv_cache]") {
  fixture f;
  // Nothing written: an empty read is ok (no launch), anything else a shape error.
  CHECK(f.csa.read_main(make_tensor_view(fake<bf16_bits>(40000), 0, 512), stream) == status::ok);
  CHECK(f.csa.read_main(make_tensor_view(fake<bf16_bits>(40000), 1, 512), stream) == status::invalid_argument);
  CHECK(f.csa.read_indexer(make_tensor_view(fake<bf16_bits>(40000), 0, 128), stream) == status::ok);
  CHECK(f.hca.read_indexer(make_tensor_view(fake<bf16_bits>(40000), 0, 128), stream) == status::invalid_argument);
  // An output inside the cache storage, even past the written rows.
  auto* in_cache = reinterpret_cast<bf16_bits*>(f.cache_base + f.csa_layout.indexer_codes.offset);
  const std::int32_t* idx = fake<const std::int32_t>(41000);
  CHECK(f.csa.read_main_selected({idx, 4}, make_tensor_view(in_cache, 4, 512), stream) == status::aliasing);
  CHECK(f.csa.read_main_selected_batched({idx, 2, 2, 2}, {in_cache, 2, 2, 512, 512, 1024}, stream) ==
        status::aliasing);
  CHECK(f.csa.read_main_selected({idx, 4}, make_tensor_view(fake<bf16_bits>(40000, 2), 4, 512), stream) ==
        status::misaligned);
  CHECK(f.csa.read_main_selected({nullptr, 4}, make_tensor_view(fake<bf16_bits>(40000), 4, 512), stream) ==
        status::null_pointer);
}
