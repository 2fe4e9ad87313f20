// SPDX-License-Identifier: Apache-2.0
// The dsv4kv benchmark suite (issue 6): in one run, the device-to-device copy bandwidth, then every
// operation at realistic sizes, each as a fraction of that bandwidth:
//   write    the write path (write_path_nvfp4 / write_path_fp8), fused and two-kernel, for the three
//            model streams (CSA-512 -> NVFP4, HCA-512 -> NVFP4, CSA-128 indexer -> Hadamard -> FP8)
//            at T = 4K, 32K, 128K tokens with FP32 projections, and at 32K with BF16 projections;
//   stages   its stages alone: compress (with its fused norm / RoPE / Hadamard epilogue) and
//            quantize (the amax -> quantize chain);
//   dequant  NVFP4 d = 512 and FP8 d = 128 rows -> BF16, 64K and 1M rows;
//   selected 64 tokens x 2048 indices from a 1M-row pool -> BF16;
//   decode   decode-sized write path: one finished block for each of B = 1 .. 256 sequences, per
//            call (fused and two-kernel) and per CUDA-graph replay.
// Every op's output is checked once before it is timed, and a wrong result stops the run:
//   - write path: the FP32 rows of the two-kernel chain against the double host reference
//     (ref::write_path_rows, max relative error <= 1e-5, on up to 64 sampled rows), its NVFP4 / FP8
//     bytes against the host encoder run on those rows (bit-exact, every row), and the fused bytes
//     against the two-kernel bytes (bit-exact);
//   - stages: compress alone == the chain's FP32 rows, quantize alone == the chain's bytes;
//   - dequant / selected: bit-exact against the host reference decode (bench_pools.hpp);
//   - decode: as the write path, plus a CUDA-graph replay == the direct call.
// Timing: CUDA events around each run, 5 warm-up runs, median of --reps (>= 50) runs; the L2 is
// flushed (reading 4x its size, clean lines only) before every timed run, so inputs smaller than
// L2 (50 MB) are not flattered. Decode rows are launch-bound: `calls` back-to-back calls between
// one pair of events, no flush (time_back_to_back).
//
// Bytes moved are the minimum traffic of each op: every input read once, every output written
// once (formulas at write_path_traffic, dequant_traffic, selected_traffic below). Intermediate FP32
// rows and the amax scratch of the two-kernel chain are not counted: avoiding them is the fused
// kernel's point, so its fraction of the copy bandwidth is the honest one.
//
//   dsv4kv_bench_suite [--only GROUPS] [--sizes T,...] [--batches B,...] [--reps N] [--json FILE]
//     GROUPS   comma list of write, stages, dequant, selected, decode (default: all)
//     --sizes  prefill token counts for write / stages (default 4k,32k,128k; a k suffix is x1024)
//     --batches  decode batch sizes (default 1,4,16,64,256)
//     --reps   timed runs per op (default 50)
//     --json   also write the results as JSON (bench_common.hpp write_json)
//     --verify-only  the write path's verified launches alone (no copy baseline, no timing, no
//              other group), e.g. under Nsight Compute
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_common.hpp"
#include "split_mix_rng.hpp"
#include "bench_pools.hpp"
#include "dsv4kv/compress.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/quantize_fp8.hpp"
#include "dsv4kv/quantize_nvfp4.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "dsv4kv/ref/write_path.hpp"
#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/write_path.hpp"

using namespace dsv4kv;
using namespace dsv4kv::bench;

namespace {

// --- configuration -------------------------------------------------------------------------------

// One model stream (SPEC §2): every stream has a position bias, an RMSNorm weight and RoPE on the
// last 64 channels; the indexer adds the Hadamard rotation and stores FP8 (fp32 scale mode).
struct stream_config {
  const char* name;      // key of the write path / quantize rows, e.g. "csa512-nvfp4"
  const char* compress;  // key of the compress rows, e.g. "csa512"
  int ratio;             // m
  std::int64_t d;
  bool nvfp4;            // else FP8
  bool hadamard;
};
const stream_config stream_configs[] = {
    {"csa512-nvfp4", "csa512", csa_ratio, 512, true, false},
    {"hca512-nvfp4", "hca512", hca_ratio, 512, true, false},
    {"csa128-fp8", "csa128", csa_ratio, 128, false, true},
};
constexpr int rope_dim = 64;
constexpr float rms_eps = 1e-6f;
constexpr fp8_scale_mode indexer_scale_mode = fp8_scale_mode::fp32;
constexpr double compress_tolerance = 1e-5;  // SPEC §9
constexpr std::int64_t base_tokens = 8192;   // distinct projection rows, tiled over longer inputs
constexpr std::int64_t sample_rows = 64;     // rows checked against the double reference
constexpr int decode_calls = 20;             // back-to-back calls per decode repetition
constexpr std::int64_t pool_small = std::int64_t{1} << 16, pool_large = std::int64_t{1} << 20;
constexpr std::int64_t sel_tokens = 64, sel_k = 2048;
constexpr int sentinel = 0xA5;

struct options {
  std::set<std::string> groups{"write", "stages", "dequant", "selected", "decode"};
  std::vector<std::int64_t> sizes{4096, 32768, 131072};
  std::vector<std::int64_t> batches{1, 4, 16, 64, 256};
  int reps = 50;
  bool verify_only = false;  // the write path's verified launches alone (no copy baseline, no timing)
  std::string json;
  bool has(const char* g) const { return groups.count(g) != 0; }
};

// Shared state of one run.
struct context {
  options opt;
  cudaStream_t stream = nullptr;
  const l2_flusher* flush = nullptr;
  rope_table table;                  // host YaRN table [max_pos, rope_dim/2] (reference)
  rope_table_view device_table{};    // its device copy
  std::vector<result_row>* rows = nullptr;
  timing time(const std::function<void()>& op) const { return time_on_stream(stream, op, *flush, 5, opt.reps); }
};

// --- inputs --------------------------------------------------------------------------------------

// splitmix64 with the distributions of the GPU tests (tests/common/split_mix_rng.hpp).
using rng64 = dsv4kv::test::split_mix_rng;

// Projections of one stream on the host, `tokens` distinct rows (device copies tile them): kv ~
// N(0,1) x a per-channel scale in [1/4, 4); gate ~ N(0,1) x a per-channel spread in [0.05, 8) plus
// a per-channel offset ~ N(0, 2); bias ~ N(0, 1/4); norm weight in [0.5, 1.5). With bf16 the float
// arrays hold the BF16-rounded values the device reads, and *_bits their bits.
struct host_inputs {
  int ratio = 4;
  std::int64_t d = 0, tokens = 0, width = 0;
  bool bf16 = false;
  std::vector<float> kv, gate;                              // [tokens, width]
  std::vector<std::uint16_t> kv_bits, gate_bits;            // [tokens, width] (bf16)
  std::vector<float> bias;                                  // [ratio, width]
  std::vector<std::uint16_t> bias_bits;                     // [ratio, width] (bf16)
  std::vector<float> norm;                                  // [d]
};

void round_to_bf16(std::vector<float>& v, std::vector<std::uint16_t>& bits) {
  bits.resize(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    bits[i] = bf16_encode(v[i]);
    v[i] = bf16_decode(bits[i]);
  }
}

host_inputs make_inputs(const stream_config& cfg, std::int64_t tokens, bool bf16, std::uint64_t seed) {
  host_inputs h;
  h.ratio = cfg.ratio;
  h.d = cfg.d;
  h.tokens = tokens;
  h.width = compress_input_width(cfg.ratio, cfg.d);
  h.bf16 = bf16;
  rng64 rng(seed);
  std::vector<float> scale(h.width), spread(h.width), offset(h.width);  // [width] each
  for (std::int64_t j = 0; j < h.width; ++j) {
    scale[j] = rng.log_uniform(0.25, 4.0);
    spread[j] = rng.log_uniform(0.05, 8.0);
    offset[j] = 2.0f * rng.normal();
  }
  h.kv.resize(static_cast<std::size_t>(tokens * h.width));
  h.gate.resize(h.kv.size());
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (std::int64_t j = 0; j < h.width; ++j) {
      h.kv[t * h.width + j] = rng.normal() * scale[j];
      h.gate[t * h.width + j] = rng.normal() * spread[j] + offset[j];
    }
  }
  h.bias.resize(static_cast<std::size_t>(cfg.ratio * h.width));
  for (float& b : h.bias) b = 0.5f * rng.normal();
  h.norm.resize(static_cast<std::size_t>(cfg.d));
  for (float& w : h.norm) w = static_cast<float>(0.5 + rng.uniform());
  if (bf16) {
    round_to_bf16(h.kv, h.kv_bits);
    round_to_bf16(h.gate, h.gate_bits);
    round_to_bf16(h.bias, h.bias_bits);
  }
  return h;
}

// Device copies of a stream's inputs with `tokens` projection rows (row t = host row t % h.tokens).
// IN = float or std::uint16_t (BF16 bits); the bias has the projections' type.
template <class IN>
struct device_inputs {
  std::int64_t tokens;
  device_array<IN> kv, gate;  // [tokens, width]
  device_array<IN> bias;      // [ratio, width]
  device_array<float> norm;   // [d]
  device_inputs(const host_inputs& h, std::int64_t t)
      : tokens(t), kv(t * h.width), gate(t * h.width), bias(h.ratio * h.width), norm(h.d) {
    const std::int64_t row_bytes = h.width * static_cast<std::int64_t>(sizeof(IN));
    if constexpr (std::is_same_v<IN, float>) {
      upload_tiled(kv.get(), h.kv.data(), h.tokens, t, row_bytes);
      upload_tiled(gate.get(), h.gate.data(), h.tokens, t, row_bytes);
      DSV4KV_BENCH_CUDA(cudaMemcpy(bias.get(), h.bias.data(), bias.bytes(), cudaMemcpyHostToDevice));
    } else {
      upload_tiled(kv.get(), h.kv_bits.data(), h.tokens, t, row_bytes);
      upload_tiled(gate.get(), h.gate_bits.data(), h.tokens, t, row_bytes);
      DSV4KV_BENCH_CUDA(cudaMemcpy(bias.get(), h.bias_bits.data(), bias.bytes(), cudaMemcpyHostToDevice));
    }
    DSV4KV_BENCH_CUDA(cudaMemcpy(norm.get(), h.norm.data(), norm.bytes(), cudaMemcpyHostToDevice));
    DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());  // legacy-stream copies: done before c.stream reads them
  }
  // The pipeline's parameters over the first `t` tokens; positions: device [n] int32 or nullptr
  // (prefill positions i * m).
  compress_params<IN, IN> params(const stream_config& cfg, std::int64_t t, rope_table_view table,
                                 const std::int32_t* positions = nullptr) const {
    const std::int64_t width = compress_input_width(cfg.ratio, cfg.d);
    compress_params<IN, IN> p;
    p.ratio = cfg.ratio;
    p.kv = {kv.get(), t, width, width};
    p.gate = {gate.get(), t, width, width};
    p.position_bias = bias.get();
    p.norm_weight = norm.get();
    p.eps = rms_eps;
    p.rope = table;
    p.positions = positions;
    p.hadamard = cfg.hadamard;
    return p;
  }
};

// --- outputs -------------------------------------------------------------------------------------

constexpr std::int64_t round16(std::int64_t x) { return (x + 15) / 16 * 16; }

// The stored rows of one stream in one allocation, each array 16-byte aligned so that whole
// buffers compare with differing_words: NVFP4 codes | block scales | global scales, FP8 codes |
// scales. Padding bytes keep the sentinel.
struct stored_rows {
  std::int64_t n, d;
  bool is_nvfp4;
  std::int64_t codes_bytes, scales_bytes, global_bytes;
  device_array<std::uint8_t> buf;  // [total_bytes()]
  stored_rows(std::int64_t rows, std::int64_t width, bool with_nvfp4)
      : n(rows), d(width), is_nvfp4(with_nvfp4),
        codes_bytes(round16(with_nvfp4 ? rows * width / 2 : rows * width)),
        scales_bytes(round16(with_nvfp4 ? rows * width / 16 : rows * 4)),
        global_bytes(round16(with_nvfp4 ? rows * 4 : 0)),
        buf(static_cast<std::size_t>(std::max<std::int64_t>(codes_bytes + scales_bytes + global_bytes, 16))) {
    fill();
  }
  std::size_t total_bytes() const { return buf.bytes(); }
  void fill() const {
    DSV4KV_BENCH_CUDA(cudaMemset(buf.get(), sentinel, buf.bytes()));
    DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());  // the memset runs on the legacy stream
  }
  nvfp4_rows nvfp4_view(std::uint8_t* base) const {
    return {base, base + codes_bytes, reinterpret_cast<float*>(base + codes_bytes + scales_bytes), n, d};
  }
  fp8_rows fp8_view(std::uint8_t* base) const { return {base, reinterpret_cast<float*>(base + codes_bytes), n, d}; }
  nvfp4_rows nvfp4() const { return nvfp4_view(buf.get()); }
  fp8_rows fp8() const { return fp8_view(buf.get()); }
  std::vector<std::uint8_t> download() const {
    std::vector<std::uint8_t> b(total_bytes());
    DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());
    DSV4KV_BENCH_CUDA(cudaMemcpy(b.data(), buf.get(), b.size(), cudaMemcpyDeviceToHost));
    return b;
  }
  // The host encoder's bytes for FP32 rows x [n, d], in this layout (padding = sentinel).
  std::vector<std::uint8_t> reference(const std::vector<float>& x) const {
    std::vector<std::uint8_t> b(total_bytes(), static_cast<std::uint8_t>(sentinel));
    const tensor_view<const float> v{x.data(), n, d, d};
    if (is_nvfp4) {
      DSV4KV_BENCH_OK(ref::encode_nvfp4(v, nvfp4_view(b.data())));
    } else {
      DSV4KV_BENCH_OK(ref::encode_fp8(v, indexer_scale_mode, fp8_view(b.data())));
    }
    return b;
  }
};

// --- minimum traffic -----------------------------------------------------------------------------

// Bytes of one stored row: NVFP4 d/2 codes + d/16 block scales + 4 (global scale); FP8 d + 4.
double stored_row_bytes(const stream_config& cfg) {
  return static_cast<double>(cfg.nvfp4 ? nvfp4_bytes_per_row(cfg.d) : fp8_bytes_per_row(cfg.d));
}

// Minimum input traffic of compress for n rows (SPEC §2-4), each input read once:
//   2 * n*m * c*d * in_bytes      kv and gate: the n finished blocks' projection rows
//   + m * c*d * in_bytes          position bias [m, c*d] (same type as the projections here)
//   + d * 4                       RMSNorm weight
//   + n * rope_dim/2 * 4 * 2      cos and sin table rows at each output row's position
//   + n * 4                       the position list (decode calls only)
double compress_input_traffic(const stream_config& cfg, std::int64_t n, double in_bytes, bool positions) {
  const double cd = static_cast<double>(compress_input_width(cfg.ratio, cfg.d));
  return 2.0 * n * cfg.ratio * cd * in_bytes + cfg.ratio * cd * in_bytes + cfg.d * 4.0 + n * (rope_dim / 2) * 8.0 +
         (positions ? n * 4.0 : 0.0);
}
// write path = compress inputs + n stored rows written (the FP32 rows in between are not counted).
double write_path_traffic(const stream_config& cfg, std::int64_t n, double in_bytes, bool positions = false) {
  return compress_input_traffic(cfg, n, in_bytes, positions) + n * stored_row_bytes(cfg);
}
// compress = compress inputs + n FP32 rows written.
double compress_traffic(const stream_config& cfg, std::int64_t n, double in_bytes) {
  return compress_input_traffic(cfg, n, in_bytes, false) + n * cfg.d * 4.0;
}
// quantize = n FP32 rows read + n stored rows written.
double quantize_traffic(const stream_config& cfg, std::int64_t n) { return n * (cfg.d * 4.0 + stored_row_bytes(cfg)); }
// dequant = rows stored rows read + rows BF16 rows written.
double dequant_traffic(double row_bytes, std::int64_t d, std::int64_t rows) { return rows * (row_bytes + 2.0 * d); }
// selected = k stored rows read + k int32 indices read + k BF16 rows written.
double selected_traffic(double row_bytes, std::int64_t d, std::int64_t k) { return k * (row_bytes + 4.0 + 2.0 * d); }

// --- the calls -------------------------------------------------------------------------------------

const char* mode_name(write_path_mode m) { return m == write_path_mode::fused ? "fused" : "two-kernel"; }
constexpr write_path_mode modes[] = {write_path_mode::fused, write_path_mode::two_kernel};

template <class IN>
status run_write_path(const stream_config& cfg, const compress_params<IN, IN>& p, const stored_rows& out,
                      span<std::uint8_t> ws, write_path_mode mode, cudaStream_t stream) {
  const span<std::uint8_t> w = mode == write_path_mode::fused ? span<std::uint8_t>{} : ws;
  return cfg.nvfp4 ? write_path_nvfp4(p, out.nvfp4(), w, stream, mode)
                   : write_path_fp8(p, indexer_scale_mode, out.fp8(), w, stream, mode);
}

status run_quantize(const stream_config& cfg, tensor_view<const float> x, const stored_rows& out, float* amax,
                    cudaStream_t stream) {
  return cfg.nvfp4 ? quantize_nvfp4(x, out.nvfp4(), amax, stream)
                   : quantize_fp8(x, indexer_scale_mode, out.fp8(), amax, stream);
}

// --- verification ----------------------------------------------------------------------------------

std::vector<float> download_floats(const float* p, std::int64_t count) {
  std::vector<float> v(static_cast<std::size_t>(count));
  DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());
  if (count) DSV4KV_BENCH_CUDA(cudaMemcpy(v.data(), p, v.size() * 4, cudaMemcpyDeviceToHost));
  return v;
}

// The double reference of output row i at `position`: the host reference run on the one block
// (HCA, or CSA row 0) or two blocks (CSA, previous + current) that row reads, gathered from the
// tiled host projections (device token t = host token t % h.tokens).
std::vector<double> reference_row(const host_inputs& h, bool hadamard, std::int64_t i, std::int64_t position,
                                  const rope_table& table) {
  const std::int64_t m = h.ratio;
  const bool prev = compress_overlaps(h.ratio) && i > 0;
  const std::int64_t first = (prev ? i - 1 : i) * m, count = (prev ? 2 : 1) * m;
  std::vector<float> kv(static_cast<std::size_t>(count * h.width)), gate(kv.size());  // [count, width]
  for (std::int64_t t = 0; t < count; ++t) {
    const std::int64_t src = (first + t) % h.tokens;
    std::memcpy(&kv[t * h.width], &h.kv[src * h.width], h.width * 4);
    std::memcpy(&gate[t * h.width], &h.gate[src * h.width], h.width * 4);
  }
  ref::write_path_problem p;
  p.ratio = h.ratio;
  p.kv = {kv.data(), count, h.width, h.width};
  p.gate = {gate.data(), count, h.width, h.width};
  p.position_bias = h.bias.data();
  p.norm_weight = h.norm.data();
  p.eps = static_cast<double>(rms_eps);
  p.rope = table.view();
  p.start_position = position - (prev ? m : 0);  // the last slice row sits at `position`
  p.hadamard = hadamard;
  const std::int64_t rows = prev ? 2 : 1;
  std::vector<double> out(static_cast<std::size_t>(rows * h.d));  // [rows, d]
  DSV4KV_BENCH_OK(ref::write_path_rows(p, make_tensor_view(out.data(), rows, h.d)));
  return {out.end() - h.d, out.end()};
}

// Checks the FP32 rows `got` [n, d] at up to sample_rows rows (the first and last 8, the rest
// random) against the double reference: max over channels of |got - ref| / max(|ref|, rms(ref
// row)) <= compress_tolerance (the GPU tests' metric). position(i) gives row i's RoPE position.
template <class POSITION>
double check_rows(const std::string& what, const host_inputs& h, bool hadamard, const std::vector<float>& got,
                  std::int64_t n, POSITION position, const rope_table& table) {
  std::vector<std::int64_t> rows;
  for (std::int64_t i = 0; i < n && i < 8; ++i) rows.push_back(i);
  for (std::int64_t i = std::max<std::int64_t>(8, n - 8); i < n; ++i) rows.push_back(i);
  std::mt19937_64 rng(static_cast<std::uint64_t>(n) * 7919u);
  while (static_cast<std::int64_t>(rows.size()) < std::min(n, sample_rows)) {
    const std::int64_t r = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    if (std::find(rows.begin(), rows.end(), r) == rows.end()) rows.push_back(r);
  }
  double worst = 0.0;
  for (const std::int64_t i : rows) {
    const std::vector<double> want = reference_row(h, hadamard, i, position(i), table);
    double sum_sq = 0.0;
    for (const double w : want) sum_sq += w * w;
    const double rms = std::sqrt(sum_sq / static_cast<double>(h.d));
    for (std::int64_t j = 0; j < h.d; ++j) {
      const double den = std::max({std::fabs(want[j]), rms, std::numeric_limits<double>::min()});
      double err = std::fabs(static_cast<double>(got[i * h.d + j]) - want[j]) / den;
      if (std::isnan(err)) err = std::numeric_limits<double>::infinity();
      worst = std::max(worst, err);
    }
  }
  if (!(worst <= compress_tolerance)) {
    fail(what + ": FP32 rows differ from the double reference: max relative error " + std::to_string(worst));
  }
  return worst;
}

void require_same(const std::string& what, const void* a, const void* b, std::size_t bytes) {
  const unsigned long long diff = differing_words(a, b, bytes);
  if (diff != 0) fail(what + ": " + std::to_string(diff) + " differing 4-byte words");
}

void require_equal(const std::string& what, const std::vector<std::uint8_t>& got, const std::vector<std::uint8_t>& want) {
  if (got == want) return;
  std::size_t diff = 0;
  for (std::size_t i = 0; i < got.size(); ++i) diff += got[i] != want[i];
  fail(what + ": " + std::to_string(diff) + " bytes differ from the host encoder");
}

// --- groups --------------------------------------------------------------------------------------

std::string size_key(std::int64_t t) { return "T=" + std::to_string(t); }

void add(const context& c, std::string key, std::string variant, const timing& t, double bytes, double target = 0) {
  std::string op = key + (variant.empty() ? "" : " [" + variant + "]");
  c.rows->push_back({std::move(op), t, bytes, target, std::move(key), std::move(variant)});
}

// Write path and its stages for one stream, T tokens, projections of type IN.
template <class IN>
void bench_prefill(const context& c, const stream_config& cfg, std::int64_t tokens, std::uint64_t seed) {
  constexpr bool bf16 = std::is_same_v<IN, std::uint16_t>;
  const char* dtype = bf16 ? "bf16" : "f32";
  const std::int64_t n = compressed_row_count(tokens, cfg.ratio), d = cfg.d;
  const std::string tag = std::string(cfg.name) + " " + size_key(tokens) + " " + dtype;
  const host_inputs h = make_inputs(cfg, std::min(tokens, base_tokens), bf16, seed);
  const device_inputs<IN> dev(h, tokens);
  const compress_params<IN, IN> p = dev.params(cfg, tokens, c.device_table);
  const std::int64_t ws_bytes = write_path_workspace_bytes(n, d);
  device_array<std::uint8_t> ws(static_cast<std::size_t>(ws_bytes));
  const span<std::uint8_t> w{ws.get(), ws_bytes};
  const tensor_view<float> ws_rows = write_path_workspace_rows(w, n, d);  // [n, d]
  const stored_rows two(n, d, cfg.nvfp4), fused(n, d, cfg.nvfp4), staged(n, d, cfg.nvfp4);
  device_array<float> rows(static_cast<std::size_t>(n * d)), amax(static_cast<std::size_t>(n));  // [n, d], [n]
  const tensor_view<float> rows_view = make_tensor_view(rows.get(), n, d);

  // 1. correctness: two-kernel rows vs the double reference, its bytes vs the host encoder; the
  //    fused bytes and each stage alone vs the two-kernel chain.
  DSV4KV_BENCH_OK(run_write_path(cfg, p, two, w, write_path_mode::two_kernel, c.stream));
  const std::vector<float> got = download_floats(ws_rows.data, n * d);
  const double err = check_rows("write " + tag, h, cfg.hadamard, got, n, [&](std::int64_t i) { return i * cfg.ratio; },
                                c.table);
  require_equal("write " + tag + " [two-kernel]", two.download(), two.reference(got));
  DSV4KV_BENCH_OK(run_write_path(cfg, p, fused, w, write_path_mode::fused, c.stream));
  DSV4KV_BENCH_CUDA(cudaStreamSynchronize(c.stream));
  require_same("write " + tag + ": fused vs two-kernel", fused.buf.get(), two.buf.get(), two.total_bytes());
  DSV4KV_BENCH_OK(compress(p, rows_view, c.stream));
  DSV4KV_BENCH_CUDA(cudaStreamSynchronize(c.stream));
  require_same("compress " + tag + " vs the chain's rows", rows.get(), ws_rows.data, static_cast<std::size_t>(n * d * 4));
  DSV4KV_BENCH_OK(run_quantize(cfg, rows_view, staged, amax.get(), c.stream));
  DSV4KV_BENCH_CUDA(cudaStreamSynchronize(c.stream));
  require_same("quantize " + tag + " vs the chain's bytes", staged.buf.get(), two.buf.get(), two.total_bytes());
  std::printf("verified %-34s n = %6lld rows: FP32 rows max rel err %.2e (<= 1e-5), bytes bit-exact, fused == two-kernel\n",
              tag.c_str(), static_cast<long long>(n), err);
  if (c.opt.verify_only) return;

  // 2. timings
  const double in_bytes = sizeof(IN);
  if (c.opt.has("write")) {
    for (const write_path_mode mode : modes) {
      const stored_rows& out = mode == write_path_mode::fused ? fused : two;
      const timing t = c.time([&] { DSV4KV_BENCH_OK(run_write_path(cfg, p, out, w, mode, c.stream)); });
      add(c, "write " + tag, mode_name(mode), t, write_path_traffic(cfg, n, in_bytes),
          mode == write_path_mode::fused && tokens >= 32768 ? 0.85 : 0.0);
    }
  }
  if (c.opt.has("stages")) {
    add(c, std::string("compress ") + cfg.compress + " " + size_key(tokens) + " " + dtype, "",
        c.time([&] { DSV4KV_BENCH_OK(compress(p, rows_view, c.stream)); }), compress_traffic(cfg, n, in_bytes));
    if (!bf16) {  // the quantizer reads FP32 rows whatever the projections' type
      add(c, std::string("quantize ") + cfg.name + " " + size_key(tokens), "",
          c.time([&] { DSV4KV_BENCH_OK(run_quantize(cfg, rows_view, staged, amax.get(), c.stream)); }),
          quantize_traffic(cfg, n));
    }
  }
}

// Decode-sized write path: one finished block for each of B sequences, through the write path
// API: the B blocks are packed into one call (T = B*m tokens, n = B rows) with one RoPE position
// per row (p.positions), the launches and per-row work of a batched decode step. For CSA the
// previous-block slots come from the neighbouring packed block, not from a carried state (that is
// the append API's case, append.hpp). Timed: the default (fused) call, the two-kernel call, and a
// CUDA-graph replay of the default call.
void bench_decode(const context& c, const stream_config& cfg, std::int64_t max_batch, std::uint64_t seed) {
  const std::int64_t m = cfg.ratio, d = cfg.d;
  const host_inputs h = make_inputs(cfg, max_batch * m, false, seed);
  const device_inputs<float> dev(h, max_batch * m);
  // Row i sits at a random block start in [m, max_pos).
  std::vector<std::int32_t> pos(static_cast<std::size_t>(max_batch));
  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  for (auto& q : pos) q = static_cast<std::int32_t>(m * (1 + rng() % static_cast<std::uint32_t>(c.table.max_pos / m - 1)));
  device_array<std::int32_t> d_pos(pos.size());
  DSV4KV_BENCH_CUDA(cudaMemcpy(d_pos.get(), pos.data(), pos.size() * 4, cudaMemcpyHostToDevice));
  DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());
  for (const std::int64_t b : c.opt.batches) {
    if (b > max_batch) continue;
    const std::string key = std::string("decode ") + cfg.name + " B=" + std::to_string(b);
    const compress_params<float, float> p = dev.params(cfg, b * m, c.device_table, d_pos.get());
    const std::int64_t ws_bytes = write_path_workspace_bytes(b, d);
    device_array<std::uint8_t> ws(static_cast<std::size_t>(ws_bytes));
    const span<std::uint8_t> w{ws.get(), ws_bytes};
    const stored_rows two(b, d, cfg.nvfp4), out(b, d, cfg.nvfp4), replay(b, d, cfg.nvfp4);
    // correctness: the two-kernel chain against the references, the default call and a graph replay
    // of it against the chain
    DSV4KV_BENCH_OK(run_write_path(cfg, p, two, w, write_path_mode::two_kernel, c.stream));
    const std::vector<float> got = download_floats(write_path_workspace_rows(w, b, d).data, b * d);
    check_rows(key, h, cfg.hadamard, got, b, [&](std::int64_t i) { return static_cast<std::int64_t>(pos[i]); }, c.table);
    require_equal(key + " [two-kernel]", two.download(), two.reference(got));
    auto call = [&](const stored_rows& o) {
      DSV4KV_BENCH_OK(cfg.nvfp4 ? write_path_nvfp4(p, o.nvfp4(), w, c.stream)
                                : write_path_fp8(p, indexer_scale_mode, o.fp8(), w, c.stream));
    };
    call(out);
    DSV4KV_BENCH_CUDA(cudaStreamSynchronize(c.stream));
    require_same(key + ": default call vs two-kernel", out.buf.get(), two.buf.get(), two.total_bytes());
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    DSV4KV_BENCH_CUDA(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeGlobal));
    call(replay);
    DSV4KV_BENCH_CUDA(cudaStreamEndCapture(c.stream, &graph));
    DSV4KV_BENCH_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    DSV4KV_BENCH_CUDA(cudaGraphLaunch(exec, c.stream));
    DSV4KV_BENCH_CUDA(cudaStreamSynchronize(c.stream));
    require_same(key + ": graph replay vs call", replay.buf.get(), out.buf.get(), out.total_bytes());

    const double bytes = write_path_traffic(cfg, b, 4.0, true);
    add(c, key, "call", time_back_to_back(c.stream, [&] { call(out); }, decode_calls, 3, c.opt.reps), bytes);
    add(c, key, "two-kernel call",
        time_back_to_back(
            c.stream, [&] { DSV4KV_BENCH_OK(run_write_path(cfg, p, two, w, write_path_mode::two_kernel, c.stream)); },
            decode_calls, 3, c.opt.reps),
        bytes);
    add(c, key, "graph",
        time_back_to_back(c.stream, [&] { DSV4KV_BENCH_CUDA(cudaGraphLaunch(exec, c.stream)); }, decode_calls, 3,
                          c.opt.reps),
        bytes);
    DSV4KV_BENCH_CUDA(cudaGraphExecDestroy(exec));
    DSV4KV_BENCH_CUDA(cudaGraphDestroy(graph));
  }
  std::printf("verified decode %-15s B <= %lld: rows vs reference, bytes bit-exact, call == graph replay\n", cfg.name,
              static_cast<long long>(max_batch));
}

// Dequant of all rows (64K and 1M) and selective dequant (64 x 2048 of 1M) for one stored format.
template <class POOL>
void bench_read(const context& c, const char* format) {
  constexpr std::int64_t d = POOL::d;
  const double row_bytes = POOL::row_bytes();
  for (const std::int64_t pool_rows : {pool_small, pool_large}) {
    const bool want_all = c.opt.has("dequant"), want_sel = c.opt.has("selected") && pool_rows == pool_large;
    if (!want_all && !want_sel) continue;
    const POOL pool(pool_rows);
    if (want_all) {
      device_array<std::uint16_t> out(static_cast<std::size_t>(pool_rows * d));  // [rows, d]
      const tensor_view<std::uint16_t> view = make_tensor_view(out.get(), pool_rows, d);
      auto run = [&] {
        if constexpr (std::is_same_v<POOL, nvfp4_pool>) {
          DSV4KV_BENCH_OK(dequant_nvfp4(pool.view(), view, c.stream));
        } else {
          DSV4KV_BENCH_OK(dequant_fp8(pool.view(), view, c.stream));
        }
      };
      const std::string key = std::string("dequant ") + format + " rows=" + std::to_string(pool_rows);
      run();
      verify_bf16_rows(key, out.get(), pool_rows, d, pool.ref, [](std::int64_t r) { return r; });
      add(c, key, "", c.time(run), dequant_traffic(row_bytes, d, pool_rows), 0.85);
    }
    if (want_sel) {
      std::vector<std::int32_t> idx(static_cast<std::size_t>(sel_tokens * sel_k));  // [tokens, k]
      std::mt19937 rng(3u);
      for (auto& i : idx) i = static_cast<std::int32_t>(rng() % pool_rows);
      device_array<std::int32_t> d_idx(idx.size());
      DSV4KV_BENCH_CUDA(cudaMemcpy(d_idx.get(), idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
      DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());
      const tensor_view<const std::int32_t> idx_view{d_idx.get(), sel_tokens, sel_k, sel_k};
      device_array<std::uint16_t> out(static_cast<std::size_t>(sel_tokens * sel_k * d));  // [tokens, k, d]
      const batched_rows_view<std::uint16_t> view{out.get(), sel_tokens, sel_k, d, d, sel_k * d};
      auto run = [&] {
        if constexpr (std::is_same_v<POOL, nvfp4_pool>) {
          DSV4KV_BENCH_OK(dequant_nvfp4_selected_batched(pool.view(), idx_view, view, c.stream));
        } else {
          DSV4KV_BENCH_OK(dequant_fp8_selected_batched(pool.view(), idx_view, view, c.stream));
        }
      };
      const std::string key = std::string("selected ") + format + " 64x2048 of " + std::to_string(pool_rows);
      run();
      verify_bf16_rows(key, out.get(), sel_tokens * sel_k, d, pool.ref,
                       [&](std::int64_t r) { return static_cast<std::int64_t>(idx[r]); });
      add(c, key, "", c.time(run), selected_traffic(row_bytes, d, sel_tokens * sel_k), 0.70);
    }
  }
}

// --- command line --------------------------------------------------------------------------------

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<std::int64_t> parse_counts(const std::string& s) {
  std::vector<std::int64_t> v;
  for (const std::string& item : split(s)) {
    char* end = nullptr;
    long long x = std::strtoll(item.c_str(), &end, 10);
    if (end && (*end == 'k' || *end == 'K')) x *= 1024, ++end;
    if (end == nullptr || *end != '\0' || x <= 0) fail("bad count '" + item + "'");
    v.push_back(x);
  }
  return v;
}

[[noreturn]] void usage(int code) {
  std::printf(
      "usage: dsv4kv_bench_suite [--only GROUPS] [--sizes T,...] [--batches B,...] [--reps N] [--json FILE]\n"
      "                          [--verify-only]\n"
      "  GROUPS: comma list of write, stages, dequant, selected, decode (default: all)\n"
      "  --sizes: prefill tokens for write / stages (default 4k,32k,128k); --batches: decode (default 1,4,16,64,256)\n"
      "  --verify-only: the write path's verified launches alone (per stream and size one two-kernel\n"
      "    and one fused call, plus compress and quantize), no copy baseline, no timing, no other group:\n"
      "    for Nsight Compute, e.g. ncu -k regex:append_kernel ... --only write --sizes 32k --verify-only\n");
  std::exit(code);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--help" || a == "-h") usage(0);
    if (a == "--verify-only") {
      o.verify_only = true;
      continue;
    }
    if (!has_value) usage(2);
    const std::string v = argv[++i];
    if (a == "--only") {
      o.groups.clear();
      for (const std::string& g : split(v)) {
        if (g != "write" && g != "stages" && g != "dequant" && g != "selected" && g != "decode") usage(2);
        o.groups.insert(g);
      }
    } else if (a == "--sizes") {
      o.sizes = parse_counts(v);
    } else if (a == "--batches") {
      o.batches = parse_counts(v);
    } else if (a == "--reps") {
      o.reps = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--json") {
      o.json = v;
    } else {
      usage(2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  context c;
  c.opt = parse(argc, argv);
  std::vector<result_row> rows;
  c.rows = &rows;
  const device_info dev = describe_device();
  DSV4KV_BENCH_CUDA(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  const l2_flusher flush(dev.l2_bytes);
  c.flush = &flush;

  copy_baseline copy{};
  if (!c.opt.verify_only) {
    copy = measure_copy_bandwidth(std::size_t{512} << 20, c.stream, flush, std::max(c.opt.reps, 50));
    std::printf("d2d copy of 512 MiB: %.1f us median, %.1f GB/s (read + write)\n", copy.t.median_us, copy.gbps);
  }

  // The YaRN table covers every prefill size and the decode positions.
  std::int64_t max_pos = 131072;
  for (const std::int64_t t : c.opt.sizes) max_pos = std::max(max_pos, t);
  DSV4KV_BENCH_OK(make_yarn_rope_table(max_pos, rope_dim, c.table));
  device_array<float> cos_table(c.table.cos.size()), sin_table(c.table.sin.size());
  DSV4KV_BENCH_CUDA(cudaMemcpy(cos_table.get(), c.table.cos.data(), cos_table.bytes(), cudaMemcpyHostToDevice));
  DSV4KV_BENCH_CUDA(cudaMemcpy(sin_table.get(), c.table.sin.data(), sin_table.bytes(), cudaMemcpyHostToDevice));
  c.device_table = {cos_table.get(), sin_table.get(), max_pos, rope_dim};
  DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());

  std::uint64_t seed = 600;
  if (c.opt.has("write") || c.opt.has("stages")) {
    for (const stream_config& cfg : stream_configs) {
      for (const std::int64_t t : c.opt.sizes) {
        bench_prefill<float>(c, cfg, t, ++seed);
        if (t == 32768) bench_prefill<std::uint16_t>(c, cfg, t, ++seed);
      }
    }
  }
  if (c.opt.verify_only) {  // nothing was timed
    DSV4KV_BENCH_CUDA(cudaStreamDestroy(c.stream));
    return 0;
  }
  if (c.opt.has("dequant") || c.opt.has("selected")) {
    bench_read<nvfp4_pool>(c, "nvfp4-512");
    bench_read<fp8_pool>(c, "fp8-128");
  }
  if (c.opt.has("decode") && !c.opt.batches.empty()) {
    const std::int64_t max_batch = *std::max_element(c.opt.batches.begin(), c.opt.batches.end());
    for (const stream_config& cfg : stream_configs) bench_decode(c, cfg, max_batch, ++seed);
  }

  std::printf("\ndsv4kv suite on %s (median of %d runs; L2 flushed before each run except decode, which is %d\n"
              "back-to-back calls per run; bytes moved = minimum traffic; %% copy = GB/s / copy GB/s)\n",
              dev.name.c_str(), c.opt.reps, decode_calls);
  print_table(rows, copy);

  // Fused vs two-kernel, per write path row.
  std::map<std::string, std::map<std::string, double>> by_key;
  for (const result_row& r : rows) by_key[r.key][r.variant] = r.t.median_us;
  bool header = false;
  for (const result_row& r : rows) {
    if (r.variant != "fused" || r.key.rfind("write ", 0) != 0) continue;
    const auto& v = by_key[r.key];
    if (!v.count("two-kernel")) continue;
    if (!header) std::printf("\nfused write path vs the two-kernel chain (target >= 1.30x at T >= 32K)\n");
    header = true;
    const double speedup = v.at("two-kernel") / v.at("fused");
    const bool big = std::atoll(r.key.c_str() + r.key.find("T=") + 2) >= 32768;
    std::printf("  %-40s %9.1f us vs %9.1f us  %5.2fx %s\n", r.key.c_str(), v.at("fused"), v.at("two-kernel"), speedup,
                big ? (speedup >= 1.3 ? "ok" : "LOW") : "");
  }
  if (!c.opt.json.empty()) write_json(c.opt.json, "dsv4kv_bench_suite", dev, copy, rows);
  DSV4KV_BENCH_CUDA(cudaStreamDestroy(c.stream));
  return 0;
}
