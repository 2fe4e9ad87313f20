// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test-only fixtures of the write-path GPU tests: realistic projections (host and device), the
// double-precision reference rows, the compress error metric, RoPE tables, the guarded outputs and
// workspace of a write path call (guard bands: tests/common/guarded_buffer.hpp).
#include <catch2/catch.hpp>
// cuda_runtime.h (not only _api.h): device_buffer.hpp's cudaMalloc(&T*) needs its template overload
// when this header is compiled by the host C++ compiler.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "device_buffer.hpp"
#include "guarded_buffer.hpp"
#include "split_mix_rng.hpp"
#include "dsv4kv/compress.hpp"
#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/ref/rope.hpp"
#include "dsv4kv/ref/write_path.hpp"
#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/write_path.hpp"

namespace dsv4kv::test {

// Tolerance of compress (and the FP32 stages after it) against the double reference, SPEC §9.
inline constexpr double compress_tolerance = 1e-5;

// Seeded splitmix64 generator (tests/common/split_mix_rng.hpp).
using fast_rng = split_mix_rng;

// Which optional inputs a compress case has, and their element types.
struct compress_options {
  bool bf16_inputs = false;  // kv / gate as BF16 (else FP32)
  bool bias = true;          // position bias present
  bool bf16_bias = false;    // position bias as BF16 (else FP32)
  bool norm = true;          // RMSNorm weight present
};

// One prefill's inputs on the host. The float arrays hold exactly the values the GPU reads
// (BF16-rounded when the device copy is BF16), so the reference sees the same data.
struct compress_case {
  int ratio = 4;
  std::int64_t d = 0, tokens = 0, width = 0;
  compress_options opt;
  std::vector<float> kv, gate;                    // [T, width]
  std::vector<std::uint16_t> kv_bits, gate_bits;  // [T, width] BF16 (bf16_inputs only)
  std::vector<float> bias;                        // [ratio, width]
  std::vector<std::uint16_t> bias_bits;           // [ratio, width] BF16 (bf16_bias only)
  std::vector<float> norm_weight;                 // [d]
  std::int64_t rows() const { return compressed_row_count(tokens, ratio); }
};

// Rounds v to BF16 in place and returns the bits.
inline std::vector<std::uint16_t> round_to_bf16(std::vector<float>& v) {
  std::vector<std::uint16_t> bits(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    bits[i] = bf16_encode(v[i]);
    v[i] = bf16_decode(bits[i]);
  }
  return bits;
}

// Projections of realistic scale: kv ~ N(0,1) times a per-channel scale in [1/4, 4); gate scores
// N(0,1) times a per-channel spread in [0.05, 8) (flat to sharply peaked softmax) plus a per-channel
// offset ~ N(0, 2); bias ~ N(0, 1/4); norm weight in [0.5, 1.5).
inline compress_case make_compress_case(int ratio, std::int64_t d, std::int64_t tokens, compress_options opt,
                                        std::uint64_t seed) {
  compress_case c;
  c.ratio = ratio;
  c.d = d;
  c.tokens = tokens;
  c.width = compress_input_width(ratio, d);
  c.opt = opt;
  fast_rng rng(seed);
  std::vector<float> kv_scale(c.width), spread(c.width), offset(c.width);
  for (std::int64_t j = 0; j < c.width; ++j) {
    kv_scale[j] = rng.log_uniform(0.25, 4.0);
    spread[j] = rng.log_uniform(0.05, 8.0);
    offset[j] = 2.0f * rng.normal();
  }
  c.kv.resize(static_cast<std::size_t>(tokens * c.width));
  c.gate.resize(c.kv.size());
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (std::int64_t j = 0; j < c.width; ++j) {
      c.kv[t * c.width + j] = rng.normal() * kv_scale[j];
      c.gate[t * c.width + j] = rng.normal() * spread[j] + offset[j];
    }
  }
  if (opt.bf16_inputs) {
    c.kv_bits = round_to_bf16(c.kv);
    c.gate_bits = round_to_bf16(c.gate);
  }
  if (opt.bias) {
    c.bias.resize(static_cast<std::size_t>(ratio * c.width));
    for (float& b : c.bias) b = 0.5f * rng.normal();
    if (opt.bf16_bias) c.bias_bits = round_to_bf16(c.bias);
  }
  if (opt.norm) {
    c.norm_weight.resize(static_cast<std::size_t>(d));
    for (float& w : c.norm_weight) w = static_cast<float>(0.5 + rng.uniform());
  }
  return c;
}

// A device copy of `host` when `wanted`, else an empty buffer.
template <class T>
device_buffer<T> upload_if(bool wanted, const std::vector<T>& host) {
  return wanted ? device_buffer<T>(host) : device_buffer<T>();
}

// Device copies of a compress_case (only the arrays the case uses are allocated).
struct device_compress_case {
  device_buffer<float> kv, gate, bias, norm;
  device_buffer<std::uint16_t> kv_bits, gate_bits, bias_bits;
  explicit device_compress_case(const compress_case& c)
      : kv(upload_if(!c.opt.bf16_inputs, c.kv)),
        gate(upload_if(!c.opt.bf16_inputs, c.gate)),
        bias(upload_if(c.opt.bias && !c.opt.bf16_bias, c.bias)),
        norm(upload_if(c.opt.norm, c.norm_weight)),
        kv_bits(upload_if(c.opt.bf16_inputs, c.kv_bits)),
        gate_bits(upload_if(c.opt.bf16_inputs, c.gate_bits)),
        bias_bits(upload_if(c.opt.bias && c.opt.bf16_bias, c.bias_bits)) {}
};

// The epilogue stages of a run (besides the norm, which the case decides).
struct epilogue_options {
  bool rope = false;
  std::int64_t start_position = 0;
  const std::int32_t* positions = nullptr;  // device [n] or nullptr
  bool hadamard = false;
  float eps = 1e-6f;
};

// compress_params<IN, BIAS> pointing at the device copies.
template <class IN, class BIAS>
compress_params<IN, BIAS> make_params(const compress_case& c, const device_compress_case& dev,
                                      const epilogue_options& e, rope_table_view device_table) {
  compress_params<IN, BIAS> p;
  p.ratio = c.ratio;
  if constexpr (std::is_same_v<IN, float>) {
    p.kv = {dev.kv.get(), c.tokens, c.width, c.width};
    p.gate = {dev.gate.get(), c.tokens, c.width, c.width};
  } else {
    p.kv = {dev.kv_bits.get(), c.tokens, c.width, c.width};
    p.gate = {dev.gate_bits.get(), c.tokens, c.width, c.width};
  }
  if (c.opt.bias) {
    if constexpr (std::is_same_v<BIAS, float>) {
      p.position_bias = dev.bias.get();
    } else {
      p.position_bias = dev.bias_bits.get();
    }
  }
  p.norm_weight = c.opt.norm ? dev.norm.get() : nullptr;
  p.eps = e.eps;
  if (e.rope) p.rope = device_table;
  p.start_position = e.start_position;
  p.positions = e.positions;
  p.hadamard = e.hadamard;
  return p;
}

// Calls f(params) with the compress_params type the case's element types need; returns f's result.
template <class F>
auto with_params(const compress_case& c, const device_compress_case& dev, const epilogue_options& e,
                 rope_table_view device_table, F&& f) {
  using u16 = std::uint16_t;
  if (c.opt.bf16_inputs) {
    if (c.opt.bf16_bias) return f(make_params<u16, u16>(c, dev, e, device_table));
    return f(make_params<u16, float>(c, dev, e, device_table));
  }
  if (c.opt.bf16_bias) return f(make_params<float, u16>(c, dev, e, device_table));
  return f(make_params<float, float>(c, dev, e, device_table));
}

// The DeepSeek-V4 YaRN table (rope_dim 64) for positions [0, 65536 + 8192), built once.
inline const rope_table& yarn_table() {
  static const rope_table table = [] {
    rope_table t;
    if (make_yarn_rope_table(65536 + 8192, 64, t) != status::ok) throw std::runtime_error("make_yarn_rope_table");
    return t;
  }();
  return table;
}

// A device copy of a host table.
struct device_rope_table {
  device_buffer<float> cos, sin;
  rope_table_view view;
  explicit device_rope_table(const rope_table& t) : cos(t.cos), sin(t.sin) {
    view = {cos.get(), sin.get(), t.max_pos, t.rope_dim};
  }
};

// The double-precision reference rows [n, d] of the case with epilogue e (prefill positions; with
// e.positions set, pass the host copy of the positions in `positions` instead). RoPE uses `table`
// (default: yarn_table()).
inline std::vector<double> reference_rows(const compress_case& c, const epilogue_options& e,
                                          const std::vector<std::int32_t>* positions = nullptr,
                                          const rope_table* table = nullptr) {
  const rope_table& rope = table != nullptr ? *table : yarn_table();
  const std::int64_t n = c.rows();
  ref::write_path_problem p;
  p.ratio = c.ratio;
  p.kv = {c.kv.data(), c.tokens, c.width, c.width};
  p.gate = {c.gate.data(), c.tokens, c.width, c.width};
  p.position_bias = c.opt.bias ? c.bias.data() : nullptr;
  p.norm_weight = c.opt.norm ? c.norm_weight.data() : nullptr;
  p.eps = static_cast<double>(e.eps);
  const bool explicit_positions = e.rope && positions != nullptr;
  if (e.rope && !explicit_positions) p.rope = rope.view();
  p.start_position = e.start_position;
  p.hadamard = e.hadamard && !explicit_positions;
  std::vector<double> out(static_cast<std::size_t>(n * c.d));
  const tensor_view<double> view = make_tensor_view(out.data(), n, c.d);
  if (ref::write_path_rows(p, view) != status::ok) throw std::runtime_error("ref::write_path_rows");
  if (explicit_positions) {
    if (ref::rope(view, span<const std::int32_t>{positions->data(), n}, rope.view()) != status::ok) {
      throw std::runtime_error("ref::rope");
    }
    if (e.hadamard) throw std::runtime_error("reference_rows: explicit positions with hadamard not wired");
  }
  return out;
}

// The compress error metric: max over rows and channels of |gpu - ref| / max(|ref|, rms(ref row)).
// Dividing by the row's RMS where |ref| is smaller keeps channels that cancel to ~0 from dividing
// by ~0: it measures each error against the scale of the row it lives in. NaN counts as infinite.
inline double max_relative_error(const float* gpu, std::int64_t gpu_stride, const std::vector<double>& ref,
                                 std::int64_t rows, std::int64_t d) {
  double worst = 0.0;
  for (std::int64_t r = 0; r < rows; ++r) {
    double sum_sq = 0.0;
    for (std::int64_t j = 0; j < d; ++j) sum_sq += ref[r * d + j] * ref[r * d + j];
    const double rms = std::sqrt(sum_sq / static_cast<double>(d));
    for (std::int64_t j = 0; j < d; ++j) {
      const double want = ref[r * d + j];
      const double den = std::max({std::fabs(want), rms, std::numeric_limits<double>::min()});
      double err = std::fabs(static_cast<double>(gpu[r * gpu_stride + j]) - want) / den;
      if (std::isnan(err)) err = std::numeric_limits<double>::infinity();
      worst = std::max(worst, err);
    }
  }
  return worst;
}

// The amax scratch value of each row [n, d] (row stride `stride`) as the quantizers leave it: the
// row's amax, or NaN bits 0x7FC00000 for a row holding NaN or Inf (kernels/row_amax.cuh).
inline std::vector<float> packed_row_amax(const float* x, std::int64_t n, std::int64_t d, std::int64_t stride) {
  std::vector<float> out(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    row_amax a;
    for (std::int64_t j = 0; j < d; ++j) a.add(x[r * stride + j]);
    out[static_cast<std::size_t>(r)] = a.finite ? a.amax : bits_to_float(0x7FC00000u);
  }
  return out;
}

// The workspace of a two-kernel write path of n rows of width d, with guard bands. What the call
// writes there (write_path.hpp): the FP32 rows [n, d] at offset 0 and the FP32 amax scratch [n]
// at the next write_path_workspace_alignment boundary; the padding after each is never written.
struct guarded_workspace {
  std::int64_t n, d, size;
  guarded buf;
  guarded_workspace(std::int64_t rows, std::int64_t width)
      : n(rows), d(width), size(write_path_workspace_bytes(rows, width)), buf(size) {}
  span<std::uint8_t> span_of() const { return {buf.data(), size}; }
  std::int64_t rows_bytes() const { return n * d * static_cast<std::int64_t>(sizeof(float)); }
  std::int64_t amax_offset() const {
    const std::int64_t a = write_path_workspace_alignment;
    return (rows_bytes() + a - 1) / a * a;
  }
  // The FP32 rows [n, d] the call left; fails the test (CHECK) when the guard bands or the padding
  // changed, or when the amax scratch is not each row's amax (what the quantizer read).
  std::vector<float> checked_rows() const {
    const std::vector<std::uint8_t> all = buf.checked();
    const std::int64_t amax_end = amax_offset() + n * static_cast<std::int64_t>(sizeof(float));
    REQUIRE(static_cast<std::int64_t>(all.size()) >= amax_end);
    std::vector<float> rows(static_cast<std::size_t>(n * d));
    if (!rows.empty()) std::memcpy(rows.data(), all.data(), static_cast<std::size_t>(rows_bytes()));
    const auto gap = static_cast<std::size_t>(amax_offset() - rows_bytes());
    const std::size_t padding = count_bytes_not(all.data() + rows_bytes(), gap, sentinel_byte) +
                                count_bytes_not(all.data() + amax_end, all.size() - static_cast<std::size_t>(amax_end),
                                                sentinel_byte);
    CHECK(padding == 0);
    const std::vector<float> amax = packed_row_amax(rows.data(), n, d, d);
    if (n > 0) CHECK(std::memcmp(all.data() + amax_offset(), amax.data(), amax.size() * sizeof(float)) == 0);
    return rows;
  }
};

// The quantized outputs of one run, each with guard bands.
struct run_outputs {
  std::int64_t n, d;
  bool nvfp4;
  guarded codes, scales, global;  // NVFP4: codes, block scales, global scales; FP8: codes, scales, (unused)
  run_outputs(std::int64_t rows, std::int64_t width, bool is_nvfp4)
      : n(rows), d(width), nvfp4(is_nvfp4),
        codes(is_nvfp4 ? rows * width / 2 : rows * width),
        scales(is_nvfp4 ? rows * width / 16 : rows * 4),
        global(is_nvfp4 ? rows * 4 : 0) {}
  nvfp4_rows nvfp4_view() const { return {codes.data(), scales.data(), global.f32(), n, d}; }
  fp8_rows fp8_view() const { return {codes.data(), scales.f32(), n, d}; }
  std::vector<std::uint8_t> all_bytes() const {
    std::vector<std::uint8_t> b = codes.checked(), s = scales.checked(), g = global.checked();
    b.insert(b.end(), s.begin(), s.end());
    b.insert(b.end(), g.begin(), g.end());
    return b;
  }
};

// Instantiates a captured `graph`, replays it twice into `out` (sentinel-filled before each
// replay) and checks each replay wrote exactly `want` (guard bands included); destroys the graph.
inline void check_graph_replays(cudaGraph_t graph, cudaStream_t stream, run_outputs& out,
                                const std::vector<std::uint8_t>& want) {
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  for (int launch = 0; launch < 2; ++launch) {
    out.codes.reset();
    out.scales.reset();
    out.global.reset();
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    CHECK(out.all_bytes() == want);
  }
  REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
  REQUIRE(cudaGraphDestroy(graph) == cudaSuccess);
}

// Bytes of a downloaded buffer, for byte-wise comparisons.
template <class T>
std::vector<unsigned char> bytes_of(const std::vector<T>& v) {
  std::vector<unsigned char> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace dsv4kv::test
