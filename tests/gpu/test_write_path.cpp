// SPDX-License-Identifier: Apache-2.0
// The whole GPU write path (write_path_nvfp4 / write_path_fp8) for the three model streams of
// SPEC §2, at T in {0, 1, m-1, m, m+1, 4097, 65536}:
//   - the FP32 rows it left in the workspace are within 1e-5 of the double reference (compress ->
//     RMSNorm -> RoPE -> Hadamard), the only stage with a tolerance;
//   - the NVFP4 / FP8 bytes equal the host reference encoder run on those same FP32 rows;
//   - two runs and a CUDA-graph replay give identical bytes; bad arguments write nothing;
//   - outputs and workspace sit between guard bands; the workspace holds the FP32 rows and each
//     row's amax scratch and nothing else (its padding keeps the sentinel).
// These run the two-kernel chain (its FP32 rows are in the workspace); the fused default is
// compared with it byte for byte in test_write_path_fused.cpp.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // before device_buffer.hpp: its cudaMalloc(&T*) needs the template overload

#include <cstdint>
#include <vector>

#include "device_buffer.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "dsv4kv/write_path.hpp"
#include "write_path_fixtures.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

struct stream_config {
  const char* name;
  int ratio;
  std::int64_t d;
  bool nvfp4;                 // else FP8
  bool hadamard;              // indexer keys
  compress_options opt;
  fp8_scale_mode mode = fp8_scale_mode::fp32;
};

const stream_config csa_main{"CSA-512 main KV -> NVFP4", 4, 512, true, false, {false, true, false, true}};
const stream_config hca_main{"HCA-512 main KV -> NVFP4, BF16 projections", 128, 512, true, false, {true, true, true, true}};
const stream_config csa_indexer{"CSA-128 indexer -> Hadamard -> FP8", 4, 128, false, true, {false, true, false, true}};
const stream_config csa_indexer_pow2{"CSA-128 indexer, BF16 projections -> Hadamard -> FP8 pow2", 4, 128, false, true,
                                     {true, true, true, true}, fp8_scale_mode::pow2};


// Runs the stream's pipeline on `stream` (no synchronisation) as the two-kernel chain, whose FP32
// rows stay in the workspace for the checks (the fused default is compared with it byte for byte
// in test_write_path_fused.cpp).
status run_pipeline(const stream_config& cfg, const compress_case& c, const device_compress_case& dev,
                    const device_rope_table& table, const run_outputs& out, span<std::uint8_t> ws, cudaStream_t stream) {
  constexpr write_path_mode two_kernel = write_path_mode::two_kernel;
  epilogue_options e;
  e.rope = true;
  e.hadamard = cfg.hadamard;
  return with_params(c, dev, e, table.view, [&](const auto& p) {
    return cfg.nvfp4 ? write_path_nvfp4(p, out.nvfp4_view(), ws, stream, two_kernel)
                     : write_path_fp8(p, cfg.mode, out.fp8_view(), ws, stream, two_kernel);
  });
}

// Host reference bytes of encoding `rows` [n, d] in the stream's format (codes, scales, global).
std::vector<std::uint8_t> reference_bytes(const stream_config& cfg, const std::vector<float>& rows, std::int64_t n,
                                          std::int64_t d) {
  const tensor_view<const float> x{rows.data(), n, d, d};
  std::vector<std::uint8_t> codes, scales, global;
  if (cfg.nvfp4) {
    codes.resize(static_cast<std::size_t>(n * d / 2));
    scales.resize(static_cast<std::size_t>(n * d / 16));
    std::vector<float> g(static_cast<std::size_t>(n));
    REQUIRE(ref::encode_nvfp4(x, {codes.data(), scales.data(), g.data(), n, d}) == status::ok);
    global = bytes_of(g);
  } else {
    codes.resize(static_cast<std::size_t>(n * d));
    std::vector<float> s(static_cast<std::size_t>(n));
    REQUIRE(ref::encode_fp8(x, cfg.mode, {codes.data(), s.data(), n, d}) == status::ok);
    scales = bytes_of(s);
  }
  codes.insert(codes.end(), scales.begin(), scales.end());
  codes.insert(codes.end(), global.begin(), global.end());
  return codes;
}

std::vector<std::int64_t> token_counts(int m, bool with_65536) {
  std::vector<std::int64_t> t = {0, 1, m - 1, m, m + 1, 4097};
  if (with_65536) t.push_back(65536);
  return t;
}

}  // namespace

TEST_CASE("write path: the three model streams against the reference", "[gpu][write_path]") {
  const device_rope_table table(yarn_table());
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  std::uint64_t seed = 500;
  for (const stream_config* cfg : {&csa_main, &hca_main, &csa_indexer, &csa_indexer_pow2}) {
    for (const std::int64_t tokens : token_counts(cfg->ratio, cfg != &csa_indexer_pow2)) {
      INFO(cfg->name << ", T=" << tokens);
      const compress_case c = make_compress_case(cfg->ratio, cfg->d, tokens, cfg->opt, ++seed);
      const device_compress_case dev(c);
      const std::int64_t n = c.rows(), d = c.d;
      const guarded_workspace ws(n, d);
      CHECK(ws.size >= n * d * 4 + n * 4);
      const run_outputs out(n, d, cfg->nvfp4);
      REQUIRE(run_pipeline(*cfg, c, dev, table, out, ws.span_of(), stream) == status::ok);
      REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);

      const std::vector<float> rows = ws.checked_rows();  // guard bands, padding, amax scratch checked
      epilogue_options e;
      e.rope = true;
      e.hadamard = cfg->hadamard;
      const double err = max_relative_error(rows.data(), d, reference_rows(c, e), n, d);
      INFO("compress max relative error " << err);
      CHECK(err <= compress_tolerance);
      CHECK(out.all_bytes() == reference_bytes(*cfg, rows, n, d));
    }
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

TEST_CASE("write path: two runs and a CUDA graph replay give identical bytes", "[gpu][write_path][graph]") {
  const device_rope_table table(yarn_table());
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  for (const stream_config* cfg : {&csa_main, &hca_main, &csa_indexer}) {
    INFO(cfg->name);
    const compress_case c = make_compress_case(cfg->ratio, cfg->d, 4097, cfg->opt, 7000 + cfg->ratio);
    const device_compress_case dev(c);
    const std::int64_t n = c.rows(), d = c.d;
    const guarded_workspace ws(n, d);
    const span<std::uint8_t> w = ws.span_of();

    const run_outputs first(n, d, cfg->nvfp4), second(n, d, cfg->nvfp4);
    run_outputs replay(n, d, cfg->nvfp4);
    REQUIRE(run_pipeline(*cfg, c, dev, table, first, w, stream) == status::ok);
    REQUIRE(run_pipeline(*cfg, c, dev, table, second, w, stream) == status::ok);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    const std::vector<std::uint8_t> want = first.all_bytes();
    CHECK(second.all_bytes() == want);

    // Capture: nothing runs until the graph is launched; each replay gives the same bytes.
    cudaGraph_t graph = nullptr;
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
    const status captured = run_pipeline(*cfg, c, dev, table, replay, w, stream);
    REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
    REQUIRE(captured == status::ok);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    CHECK(untouched(replay.codes));
    check_graph_replays(graph, stream, replay, want);
    (void)ws.checked_rows();  // the workspace's guard bands and padding after all the runs
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

TEST_CASE("write path: bad arguments return their status and write nothing", "[gpu][write_path][validation]") {
  const device_rope_table table(yarn_table());
  const compress_case c = make_compress_case(4, 512, 64, csa_main.opt, 31337);
  const device_compress_case dev(c);
  const std::int64_t n = c.rows(), d = c.d, ws_bytes = write_path_workspace_bytes(n, d);
  const guarded ws(ws_bytes);
  const run_outputs out(n, d, true);
  const run_outputs out8(n, 128, false);
  epilogue_options e;
  e.rope = true;
  const compress_params<float, float> p = make_params<float, float>(c, dev, e, table.view);
  const span<std::uint8_t> good_ws{ws.data(), ws_bytes};

  const auto nothing_written = [&] {
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(ws));
    CHECK(untouched(out.codes));
    CHECK(untouched(out.scales));
    CHECK(untouched(out.global));
    CHECK(untouched(out8.codes));
    CHECK(untouched(out8.scales));
  };
  // The workspace (two-kernel chain only; the fused default does not use it).
  constexpr write_path_mode two_kernel = write_path_mode::two_kernel;
  CHECK(write_path_nvfp4(p, out.nvfp4_view(), {ws.data(), ws_bytes - 4}, nullptr, two_kernel) == status::invalid_argument);
  nothing_written();
  CHECK(write_path_nvfp4(p, out.nvfp4_view(), {nullptr, ws_bytes}, nullptr, two_kernel) == status::null_pointer);
  nothing_written();
  CHECK(write_path_nvfp4(p, out.nvfp4_view(), {ws.data() + 4, ws_bytes}, nullptr, two_kernel) == status::misaligned);
  nothing_written();
  CHECK(write_path_nvfp4(p, out.nvfp4_view(), good_ws, nullptr, static_cast<write_path_mode>(2)) ==
        status::invalid_argument);
  nothing_written();
  auto bad = p;
  bad.ratio = 8;
  CHECK(write_path_nvfp4(bad, out.nvfp4_view(), good_ws, nullptr) == status::unsupported_shape);
  nothing_written();
  bad = p;
  bad.kv.data = nullptr;
  CHECK(write_path_nvfp4(bad, out.nvfp4_view(), good_ws, nullptr) == status::null_pointer);
  nothing_written();
  nvfp4_rows rows = out.nvfp4_view();
  rows.rows = n - 1;
  CHECK(write_path_nvfp4(p, rows, good_ws, nullptr) == status::invalid_argument);
  nothing_written();
  rows = out.nvfp4_view();
  rows.block_scales = nullptr;
  CHECK(write_path_nvfp4(p, rows, good_ws, nullptr) == status::null_pointer);
  nothing_written();
  // Workspace overlapping an input, an output overlapping an input or the workspace.
  CHECK(write_path_nvfp4(p, out.nvfp4_view(),
                         {reinterpret_cast<std::uint8_t*>(const_cast<float*>(p.kv.data)), ws_bytes},
                         nullptr, two_kernel) == status::aliasing);
  nothing_written();
  rows = out.nvfp4_view();
  rows.codes = reinterpret_cast<std::uint8_t*>(const_cast<float*>(p.gate.data));
  CHECK(write_path_nvfp4(p, rows, good_ws, nullptr) == status::aliasing);
  nothing_written();
  rows = out.nvfp4_view();
  rows.global_scales = reinterpret_cast<float*>(ws.data() + 64);
  CHECK(write_path_nvfp4(p, rows, good_ws, nullptr, two_kernel) == status::aliasing);
  nothing_written();
  rows = out.nvfp4_view();
  rows.block_scales = reinterpret_cast<std::uint8_t*>(const_cast<float*>(p.norm_weight));
  CHECK(write_path_nvfp4(p, rows, good_ws, nullptr) == status::aliasing);
  nothing_written();
  // FP8: bad mode; a 512-wide compress into 128-wide FP8 rows.
  const compress_case ci = make_compress_case(4, 128, 64, csa_indexer.opt, 31338);
  const device_compress_case devi(ci);
  const compress_params<float, float> pi = make_params<float, float>(ci, devi, e, table.view);
  CHECK(write_path_fp8(pi, static_cast<fp8_scale_mode>(3), out8.fp8_view(), good_ws, nullptr) == status::invalid_argument);
  nothing_written();
  CHECK(write_path_fp8(p, fp8_scale_mode::fp32, out8.fp8_view(), good_ws, nullptr) == status::invalid_argument);
  nothing_written();
  // Fewer tokens than one block: success, nothing written.
  bad = p;
  bad.kv.rows = bad.gate.rows = 3;
  rows = out.nvfp4_view();
  rows.rows = 0;
  CHECK(write_path_nvfp4(bad, rows, {nullptr, 0}, nullptr) == status::ok);
  nothing_written();
}
