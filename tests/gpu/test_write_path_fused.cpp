// SPDX-License-Identifier: Apache-2.0
// The fused write path (write_path_mode::fused, the default of write_path_nvfp4 / write_path_fp8:
// one kernel, compress -> norm -> RoPE -> (Hadamard) -> quantize, row amax inside the CTA) gives
// exactly the bytes of the two-kernel chain (write_path_mode::two_kernel, whose FP32 rows
// test_write_path.cpp checks against the double reference and whose bytes it checks against the
// host encoder), for every stream configuration, element type and optional input, at
// T in {0, 1, m-1, m, m+1, 4097, 65536}; also with RoPE offsets, explicit positions, non-finite
// and all-zero rows; it never writes outside its outputs nor touches the workspace; it replays
// in a CUDA graph; bad arguments write nothing.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // before device_buffer.hpp: its cudaMalloc(&T*) needs the template overload

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "device_buffer.hpp"
#include "dsv4kv/write_path.hpp"
#include "write_path_fixtures.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

struct fused_config {
  const char* name;
  int ratio;
  std::int64_t d;
  bool nvfp4;     // else FP8
  bool hadamard;  // indexer keys
  compress_options opt;
  fp8_scale_mode mode = fp8_scale_mode::fp32;
  bool large = false;  // also run T = 65536
};

// compress_options: {bf16_inputs, bias, bf16_bias, norm}.
const fused_config configs[] = {
    {"CSA-512 -> NVFP4, FP32 projections", 4, 512, true, false, {false, true, false, true}, fp8_scale_mode::fp32, true},
    {"CSA-512 -> NVFP4, BF16 projections, no bias, no norm", 4, 512, true, false, {true, false, false, false}},
    {"HCA-512 -> NVFP4, BF16 projections and bias", 128, 512, true, false, {true, true, true, true},
     fp8_scale_mode::fp32, true},
    {"HCA-512 -> NVFP4, FP32 projections, BF16 bias, no norm", 128, 512, true, false, {false, true, true, false}},
    {"CSA-128 indexer -> Hadamard -> FP8 fp32 scale", 4, 128, false, true, {false, true, false, true},
     fp8_scale_mode::fp32, true},
    {"CSA-128 indexer, BF16 -> Hadamard -> FP8 pow2 scale", 4, 128, false, true, {true, true, true, true},
     fp8_scale_mode::pow2},
    {"CSA-128 indexer, FP32, no bias / norm -> Hadamard -> FP8 pow2", 4, 128, false, true, {false, false, false, false},
     fp8_scale_mode::pow2},
    {"CSA-128 -> NVFP4 (no Hadamard)", 4, 128, true, false, {false, true, false, true}},
    {"HCA-128 -> FP8 fp32 scale", 128, 128, false, false, {true, true, false, true}},
};


// One write path call of the configuration on `stream` (no synchronisation).
status run(const fused_config& cfg, const compress_case& c, const device_compress_case& dev, const epilogue_options& e,
           const device_rope_table& table, const run_outputs& out, span<std::uint8_t> ws, write_path_mode mode,
           cudaStream_t stream) {
  return with_params(c, dev, e, table.view, [&](const auto& p) {
    return cfg.nvfp4 ? write_path_nvfp4(p, out.nvfp4_view(), ws, stream, mode)
                     : write_path_fp8(p, cfg.mode, out.fp8_view(), ws, stream, mode);
  });
}

// Requires got == want, reporting the first differing byte (not the arrays: they are megabytes).
void require_equal_bytes(const std::vector<std::uint8_t>& got, const std::vector<std::uint8_t>& want) {
  REQUIRE(got.size() == want.size());
  std::size_t first_diff = want.size();
  for (std::size_t i = 0; i < want.size() && first_diff == want.size(); ++i) {
    if (got[i] != want[i]) first_diff = i;
  }
  INFO("first differing byte " << first_diff << " of " << want.size());
  CHECK(first_diff == want.size());
}

// Runs the two-kernel chain and the fused path on the same case; requires identical bytes, the
// guard bands intact, and a sentinel workspace handed to the fused path untouched.
void require_same_bytes(const fused_config& cfg, const compress_case& c, const epilogue_options& e,
                        const device_rope_table& table, cudaStream_t stream) {
  const device_compress_case dev(c);
  const std::int64_t n = c.rows(), d = c.d;
  guarded_workspace ws(n, d);
  const run_outputs two(n, d, cfg.nvfp4), fused(n, d, cfg.nvfp4);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // the sentinel fills (legacy stream) are done
  REQUIRE(run(cfg, c, dev, e, table, two, ws.span_of(), write_path_mode::two_kernel, stream) == status::ok);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  (void)ws.checked_rows();  // the two-kernel chain wrote only the rows and amax of its workspace
  ws.buf.reset();
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  REQUIRE(run(cfg, c, dev, e, table, fused, ws.span_of(), write_path_mode::fused, stream) == status::ok);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  const std::vector<std::uint8_t> want = two.all_bytes(), got = fused.all_bytes();
  CHECK(untouched(ws.buf));
  require_equal_bytes(got, want);
  if (n > 0) CHECK_FALSE(all_bytes_are(got, sentinel_byte));  // the rows were written
}

}  // namespace

TEST_CASE("fused write path: the two-kernel chain's bytes for every configuration and size", "[gpu][write_path][fused]") {
  const device_rope_table table(yarn_table());
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  std::uint64_t seed = 9100;
  for (const fused_config& cfg : configs) {
    std::vector<std::int64_t> sizes = {0, 1, cfg.ratio - 1, cfg.ratio, cfg.ratio + 1, 4097};
    if (cfg.large) sizes.push_back(65536);
    for (const std::int64_t tokens : sizes) {
      INFO(cfg.name << ", T=" << tokens);
      epilogue_options e;
      e.rope = true;
      e.hadamard = cfg.hadamard;
      require_same_bytes(cfg, make_compress_case(cfg.ratio, cfg.d, tokens, cfg.opt, ++seed), e, table, stream);
    }
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

TEST_CASE("fused write path: RoPE offsets, explicit positions, no RoPE, non-finite and zero rows",
          "[gpu][write_path][fused]") {
  const device_rope_table table(yarn_table());
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  for (const fused_config& cfg : {configs[0], configs[2], configs[4]}) {
    const std::int64_t tokens = 40 * cfg.ratio + 3;
    std::vector<std::int32_t> pos(static_cast<std::size_t>(tokens / cfg.ratio));
    for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<std::int32_t>((i * 7919) % 70000);
    pos[3] = static_cast<std::int32_t>(yarn_table().max_pos);  // out of the table: NaN channels, NaN scale
    const device_buffer<std::int32_t> dpos(pos);
    for (int variant = 0; variant < 4; ++variant) {
      INFO(cfg.name << ", variant " << variant << " (0: no RoPE, 1: start position, 2: explicit positions, "
                    << "3: NaN / Inf / zero blocks)");
      compress_case c = make_compress_case(cfg.ratio, cfg.d, tokens, cfg.opt, 777 + cfg.ratio + variant);
      epilogue_options e;
      e.hadamard = cfg.hadamard;
      e.rope = variant != 0;
      if (variant == 1) e.start_position = 12345;
      if (variant == 2) e.positions = dpos.get();
      if (variant == 3) {
        const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
        const auto set_token = [&](std::int64_t t, float kv, bool gate_too) {
          for (std::int64_t j = 0; j < c.width; ++j) {
            c.kv[t * c.width + j] = kv;
            if (gate_too) c.gate[t * c.width + j] = kv;
            if (c.opt.bf16_inputs) {
              c.kv_bits[t * c.width + j] = bf16_encode(kv);
              if (gate_too) c.gate_bits[t * c.width + j] = bf16_encode(kv);
            }
          }
        };
        set_token(2 * cfg.ratio + 1, nan, false);  // a NaN value
        set_token(5 * cfg.ratio, inf, false);      // an infinite value
        set_token(9 * cfg.ratio + 2, -inf, true);  // an infinite value and score
        for (int u = 0; u < 2 * cfg.ratio; ++u) set_token(20 * cfg.ratio + u, 0.0f, false);  // zero rows
      }
      require_same_bytes(cfg, c, e, table, stream);
    }
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

TEST_CASE("fused write path: row-strided projections give the dense projections' bytes",
          "[gpu][write_path][fused][stride]") {
  // A padded row (stride > c*d, e.g. the kv and gate columns of one fused GEMM output) must give
  // the same bytes as dense rows, and no row may read the padding. Sizes: an odd row count (the
  // last CTA's second row group is empty) and more CTAs than fit the device at once.
  const device_rope_table table(yarn_table());
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  for (const fused_config& cfg : {configs[0], configs[1], configs[2], configs[4], configs[5]}) {
    for (const std::int64_t tokens : {std::int64_t{4} * 37 + 2, std::int64_t{40000} + 1}) {
      INFO(cfg.name << ", T=" << tokens);
      const compress_case c = make_compress_case(cfg.ratio, cfg.d, tokens, cfg.opt, 5150 + tokens + cfg.ratio);
      const device_compress_case dev(c);
      const std::int64_t n = c.rows(), d = c.d;
      epilogue_options e;
      e.rope = true;
      e.hadamard = cfg.hadamard;
      const run_outputs dense(n, d, cfg.nvfp4), strided(n, d, cfg.nvfp4);
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
      REQUIRE(run(cfg, c, dev, e, table, dense, {nullptr, 0}, write_path_mode::fused, stream) == status::ok);
      const status st = with_params(c, dev, e, table.view, [&](auto p) {
        using IN = std::remove_cv_t<std::remove_pointer_t<decltype(p.kv.data)>>;
        const std::int64_t stride = c.width + 12;  // elements; a multiple of 4 (vector loads)
        const std::size_t pitch = static_cast<std::size_t>(stride) * sizeof(IN);
        const std::size_t row_bytes = static_cast<std::size_t>(c.width) * sizeof(IN);
        device_buffer<IN> kv(static_cast<std::size_t>(tokens * stride)), gate(static_cast<std::size_t>(tokens * stride));
        kv.fill_bytes(0x7F);  // the padding holds huge values (0x7F7F...: ~3.4e38) no row may read
        gate.fill_bytes(0x7F);
        REQUIRE(cudaMemcpy2D(kv.get(), pitch, p.kv.data, row_bytes, row_bytes, static_cast<std::size_t>(tokens),
                             cudaMemcpyDeviceToDevice) == cudaSuccess);
        REQUIRE(cudaMemcpy2D(gate.get(), pitch, p.gate.data, row_bytes, row_bytes, static_cast<std::size_t>(tokens),
                             cudaMemcpyDeviceToDevice) == cudaSuccess);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // device-to-device copies may return before they end
        p.kv = {kv.get(), tokens, c.width, stride};
        p.gate = {gate.get(), tokens, c.width, stride};
        const status r = cfg.nvfp4 ? write_path_nvfp4(p, strided.nvfp4_view(), {nullptr, 0}, stream)
                                   : write_path_fp8(p, cfg.mode, strided.fp8_view(), {nullptr, 0}, stream);
        REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
        return r;
      });
      REQUIRE(st == status::ok);
      const std::vector<std::uint8_t> want = dense.all_bytes(), got = strided.all_bytes();
      require_equal_bytes(got, want);
      CHECK_FALSE(all_bytes_are(want, sentinel_byte));
    }
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

TEST_CASE("fused write path: two runs and CUDA graph replays give identical bytes", "[gpu][write_path][fused][graph]") {
  const device_rope_table table(yarn_table());
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  for (const fused_config& cfg : {configs[0], configs[2], configs[4]}) {
    INFO(cfg.name);
    const compress_case c = make_compress_case(cfg.ratio, cfg.d, 4097, cfg.opt, 4242 + cfg.ratio);
    const device_compress_case dev(c);
    const std::int64_t n = c.rows(), d = c.d;
    epilogue_options e;
    e.rope = true;
    e.hadamard = cfg.hadamard;
    const run_outputs first(n, d, cfg.nvfp4), second(n, d, cfg.nvfp4);
    run_outputs replay(n, d, cfg.nvfp4);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    REQUIRE(run(cfg, c, dev, e, table, first, {nullptr, 0}, write_path_mode::fused, stream) == status::ok);
    REQUIRE(run(cfg, c, dev, e, table, second, {nullptr, 0}, write_path_mode::fused, stream) == status::ok);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    const std::vector<std::uint8_t> want = first.all_bytes();
    CHECK(second.all_bytes() == want);

    cudaGraph_t graph = nullptr;
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
    const status captured = run(cfg, c, dev, e, table, replay, {nullptr, 0}, write_path_mode::fused, stream);
    REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
    REQUIRE(captured == status::ok);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    CHECK(untouched(replay.codes));  // capture ran nothing
    check_graph_replays(graph, stream, replay, want);
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

TEST_CASE("fused write path: bad arguments return their status and write nothing", "[gpu][write_path][fused][validation]") {
  const device_rope_table table(yarn_table());
  const compress_case c = make_compress_case(4, 512, 64, configs[0].opt, 31339);
  const device_compress_case dev(c);
  const std::int64_t n = c.rows(), d = c.d;
  epilogue_options e;
  e.rope = true;
  const compress_params<float, float> p = make_params<float, float>(c, dev, e, table.view);
  const run_outputs out(n, d, true), out8(n, 128, false);
  device_buffer<std::int32_t> positions(static_cast<std::size_t>(n));
  positions.fill_bytes(0);
  const auto nothing_written = [&] {
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(out.codes));
    CHECK(untouched(out.scales));
    CHECK(untouched(out.global));
    CHECK(untouched(out8.codes));
    CHECK(untouched(out8.scales));
  };
  const span<std::uint8_t> no_ws{nullptr, 0};
  nvfp4_rows rows = out.nvfp4_view();
  rows.codes = out.codes.data() + 1;
  CHECK(write_path_nvfp4(p, rows, no_ws, nullptr) == status::misaligned);
  nothing_written();
  rows = out.nvfp4_view();
  rows.global_scales = reinterpret_cast<float*>(out.global.data() + 2);
  CHECK(write_path_nvfp4(p, rows, no_ws, nullptr) == status::misaligned);
  nothing_written();
  rows = out.nvfp4_view();
  rows.block_scales = out.codes.data() + 8;  // outputs overlap each other
  CHECK(write_path_nvfp4(p, rows, no_ws, nullptr) == status::aliasing);
  nothing_written();
  rows = out.nvfp4_view();
  rows.d = 24;
  CHECK(write_path_nvfp4(p, rows, no_ws, nullptr) == status::unsupported_shape);
  nothing_written();
  rows = out.nvfp4_view();
  rows.global_scales = reinterpret_cast<float*>(const_cast<float*>(p.rope.cos));  // over the RoPE table
  CHECK(write_path_nvfp4(p, rows, no_ws, nullptr) == status::aliasing);
  nothing_written();
  auto bad = p;
  bad.positions = positions.get();
  rows = out.nvfp4_view();
  rows.codes = reinterpret_cast<std::uint8_t*>(positions.get());  // over the positions it reads
  CHECK(write_path_nvfp4(bad, rows, no_ws, nullptr) == status::aliasing);
  nothing_written();
  bad = p;
  bad.start_position = yarn_table().max_pos;  // the prefill's positions past the table
  CHECK(write_path_nvfp4(bad, out.nvfp4_view(), no_ws, nullptr) == status::invalid_argument);
  nothing_written();
  bad = p;
  bad.eps = -1.0f;
  CHECK(write_path_nvfp4(bad, out.nvfp4_view(), no_ws, nullptr) == status::invalid_argument);
  nothing_written();
  bad = p;
  bad.gate.data = nullptr;
  CHECK(write_path_nvfp4(bad, out.nvfp4_view(), no_ws, nullptr) == status::null_pointer);
  nothing_written();
  bad = p;
  bad.kv.row_stride = c.width + 2;
  bad.kv.rows = bad.gate.rows = 16;
  CHECK(write_path_nvfp4(bad, {out.codes.data(), out.scales.data(), out.global.f32(), 4, d}, no_ws, nullptr) ==
        status::misaligned);
  nothing_written();
  fp8_rows rows8 = out8.fp8_view();
  rows8.codes = out8.codes.data() + 2;
  const compress_case ci = make_compress_case(4, 128, 64, configs[4].opt, 31340);
  const device_compress_case devi(ci);
  const compress_params<float, float> pi = make_params<float, float>(ci, devi, e, table.view);
  CHECK(write_path_fp8(pi, fp8_scale_mode::fp32, rows8, no_ws, nullptr) == status::misaligned);
  nothing_written();
  CHECK(write_path_fp8(pi, static_cast<fp8_scale_mode>(5), out8.fp8_view(), no_ws, nullptr) == status::invalid_argument);
  nothing_written();
  CHECK(write_path_fp8(pi, fp8_scale_mode::fp32, out8.fp8_view(), no_ws, nullptr, static_cast<write_path_mode>(-1)) ==
        status::invalid_argument);
  nothing_written();
  // The fused path ignores the workspace entirely (any span, even a bad one, is fine).
  const guarded ws(64);
  CHECK(write_path_nvfp4(p, out.nvfp4_view(), {ws.data() + 1, 3}, nullptr) == status::ok);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(untouched(ws));
  CHECK_FALSE(untouched(out.codes));
}
