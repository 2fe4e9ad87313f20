// SPDX-License-Identifier: Apache-2.0
// A tiny command-line front end of the write path for cross-checks against other implementations
// (benchmarks/torch_peer.py): reads one prefill's inputs from raw little-endian files, runs the
// library (or, with --engine host, the host reference) and writes every output back to files.
//
//   dsv4kv_run_write_path --stream S --tokens T --dtype f32|bf16 --dir DIR
//                         [--engine gpu|host] [--mode fused|two-kernel]
//     S: csa512-nvfp4 (m 4, d 512), hca512-nvfp4 (m 128, d 512), csa128-fp8 (m 4, d 128, Hadamard,
//        FP8 fp32 scale mode); every stream: position bias, RMSNorm (eps 1e-6), RoPE (YaRN table
//        of make_yarn_rope_table, rope_dim 64, positions i * m).
//   reads  DIR/kv.bin, DIR/gate.bin  [T, c*d]  FP32, or BF16 bits with --dtype bf16
//          DIR/bias.bin              [m, c*d]  same type as kv
//          DIR/norm.bin              [d]       FP32
//   writes DIR/<engine>_rows.f32          [n, d]   FP32 rows before quantization (gpu: the
//                                                  two-kernel chain's workspace; host: the double
//                                                  reference rounded to FP32)
//          DIR/<engine>_codes.u8          [n, d/2] NVFP4 E2M1 pairs | [n, d] FP8 E4M3
//          DIR/<engine>_block_scales.u8   [n, d/16] NVFP4 only
//          DIR/<engine>_global.f32        [n]      NVFP4 decode scale g | FP8 row scale s
//          DIR/<engine>_dequant.bf16      [n, d]   the stored rows decoded to BF16 bits
//          DIR/<engine>_rope_cos.f32, _rope_sin.f32  [T, 32] the RoPE table used
//   <engine> is "gpu" or "host". Exit status 0 on success; any failure prints FATAL and exits 1.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_common.hpp"
#include "dsv4kv/compress.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "dsv4kv/ref/write_path.hpp"
#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/write_path.hpp"

using namespace dsv4kv;
using namespace dsv4kv::bench;

namespace {

struct stream_config {
  const char* name;
  int ratio;
  std::int64_t d;
  bool nvfp4;
  bool hadamard;
};
const stream_config stream_configs[] = {
    {"csa512-nvfp4", csa_ratio, 512, true, false},
    {"hca512-nvfp4", hca_ratio, 512, true, false},
    {"csa128-fp8", csa_ratio, 128, false, true},
};
constexpr int rope_dim = 64;
constexpr float rms_eps = 1e-6f;
constexpr fp8_scale_mode scale_mode = fp8_scale_mode::fp32;

template <class T>
std::vector<T> read_file(const std::string& path, std::int64_t count) {
  std::vector<T> v(static_cast<std::size_t>(count));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) fail("cannot open " + path);
  const std::size_t got = std::fread(v.data(), sizeof(T), v.size(), f);
  const bool at_end = std::fgetc(f) == EOF;
  std::fclose(f);
  if (got != v.size() || !at_end) fail(path + ": expected exactly " + std::to_string(count * sizeof(T)) + " bytes");
  return v;
}

template <class T>
void write_file(const std::string& path, const T* data, std::int64_t count) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail("cannot write " + path);
  const std::size_t put = count ? std::fwrite(data, sizeof(T), static_cast<std::size_t>(count), f) : 0;
  if (std::fclose(f) != 0 || put != static_cast<std::size_t>(count)) fail("cannot write " + path);
}

template <class T>
std::vector<T> download(const T* p, std::int64_t count) {
  std::vector<T> v(static_cast<std::size_t>(count));
  if (count) DSV4KV_BENCH_CUDA(cudaMemcpy(v.data(), p, v.size() * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

// A device copy of v.
template <class T>
struct uploaded : device_array<T> {
  explicit uploaded(const std::vector<T>& v) : device_array<T>(v.size()) {
    if (!v.empty()) DSV4KV_BENCH_CUDA(cudaMemcpy(this->get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
};

// The stored rows and decodes of one run (host memory).
struct outputs {
  std::vector<float> rows;                       // [n, d]
  std::vector<std::uint8_t> codes, block_scales;  // [n, d/2 or d], [n, d/16] (NVFP4)
  std::vector<float> scales;                      // [n] g (NVFP4) or s (FP8)
  std::vector<std::uint16_t> dequant;             // [n, d] BF16 bits
};

// Host reference: rows in double (rounded to FP32), then the bit-exact host encoder and decoder.
outputs run_host(const stream_config& cfg, const std::vector<float>& kv, const std::vector<float>& gate,
                 const std::vector<float>& bias, const std::vector<float>& norm, std::int64_t tokens,
                 const rope_table& table) {
  const std::int64_t d = cfg.d, width = compress_input_width(cfg.ratio, d), n = compressed_row_count(tokens, cfg.ratio);
  outputs o;
  o.rows.resize(static_cast<std::size_t>(n * d));
  ref::write_path_problem p;
  p.ratio = cfg.ratio;
  p.kv = {kv.data(), tokens, width, width};
  p.gate = {gate.data(), tokens, width, width};
  p.position_bias = bias.data();
  p.norm_weight = norm.data();
  p.eps = static_cast<double>(rms_eps);
  p.rope = table.view();
  p.hadamard = cfg.hadamard;
  DSV4KV_BENCH_OK(ref::write_path_rows(p, make_tensor_view(o.rows.data(), n, d)));
  const tensor_view<const float> x{o.rows.data(), n, d, d};
  o.dequant.resize(static_cast<std::size_t>(n * d));
  o.scales.resize(static_cast<std::size_t>(n));
  if (cfg.nvfp4) {
    o.codes.resize(static_cast<std::size_t>(n * d / 2));
    o.block_scales.resize(static_cast<std::size_t>(n * d / 16));
    const nvfp4_rows rows{o.codes.data(), o.block_scales.data(), o.scales.data(), n, d};
    DSV4KV_BENCH_OK(ref::encode_nvfp4(x, rows));
    DSV4KV_BENCH_OK(ref::decode_nvfp4_bf16(rows, make_tensor_view(o.dequant.data(), n, d)));
  } else {
    o.codes.resize(static_cast<std::size_t>(n * d));
    const fp8_rows rows{o.codes.data(), o.scales.data(), n, d};
    DSV4KV_BENCH_OK(ref::encode_fp8(x, scale_mode, rows));
    DSV4KV_BENCH_OK(ref::decode_fp8_bf16(rows, make_tensor_view(o.dequant.data(), n, d)));
  }
  return o;
}

// The library on the GPU: the write path in `mode` for the stored bytes, the two-kernel chain for
// the FP32 rows (its workspace), then dequant of the stored rows.
template <class IN>
outputs run_gpu(const stream_config& cfg, const std::vector<IN>& kv, const std::vector<IN>& gate,
                const std::vector<IN>& bias, const std::vector<float>& norm, std::int64_t tokens, const rope_table& table,
                write_path_mode mode) {
  const std::int64_t d = cfg.d, width = compress_input_width(cfg.ratio, d), n = compressed_row_count(tokens, cfg.ratio);
  const uploaded<IN> d_kv(kv), d_gate(gate), d_bias(bias);                 // [T, width] x2, [m, width]
  const uploaded<float> d_norm(norm), d_cos(table.cos), d_sin(table.sin);  // [d], [T, 32] x2
  compress_params<IN, IN> p;
  p.ratio = cfg.ratio;
  p.kv = {d_kv.get(), tokens, width, width};
  p.gate = {d_gate.get(), tokens, width, width};
  p.position_bias = d_bias.get();
  p.norm_weight = d_norm.get();
  p.eps = rms_eps;
  p.rope = {d_cos.get(), d_sin.get(), table.max_pos, table.rope_dim};
  p.hadamard = cfg.hadamard;
  const std::int64_t ws_bytes = write_path_workspace_bytes(n, d);
  device_array<std::uint8_t> ws(static_cast<std::size_t>(ws_bytes));
  const span<std::uint8_t> w{ws.get(), ws_bytes};
  // Stored rows: codes [n, d/2 | d], block scales [n, d/16], scales [n]; a second set for the chain.
  const std::int64_t code_bytes = cfg.nvfp4 ? n * d / 2 : n * d;
  device_array<std::uint8_t> codes(code_bytes), block_scales(cfg.nvfp4 ? n * d / 16 : 0);
  device_array<std::uint8_t> codes2(code_bytes), block_scales2(cfg.nvfp4 ? n * d / 16 : 0);
  device_array<float> scales(n), scales2(n);
  device_array<std::uint16_t> dq(static_cast<std::size_t>(n * d));  // [n, d]
  cudaStream_t stream = nullptr;
  if (cfg.nvfp4) {
    const nvfp4_rows out{codes.get(), block_scales.get(), scales.get(), n, d};
    const nvfp4_rows chain{codes2.get(), block_scales2.get(), scales2.get(), n, d};
    DSV4KV_BENCH_OK(write_path_nvfp4(p, chain, w, stream, write_path_mode::two_kernel));
    DSV4KV_BENCH_OK(write_path_nvfp4(p, out, mode == write_path_mode::fused ? span<std::uint8_t>{} : w, stream, mode));
    DSV4KV_BENCH_OK(dequant_nvfp4(out, make_tensor_view(dq.get(), n, d), stream));
  } else {
    const fp8_rows out{codes.get(), scales.get(), n, d};
    const fp8_rows chain{codes2.get(), scales2.get(), n, d};
    DSV4KV_BENCH_OK(write_path_fp8(p, scale_mode, chain, w, stream, write_path_mode::two_kernel));
    DSV4KV_BENCH_OK(write_path_fp8(p, scale_mode, out, mode == write_path_mode::fused ? span<std::uint8_t>{} : w, stream,
                                   mode));
    DSV4KV_BENCH_OK(dequant_fp8(out, make_tensor_view(dq.get(), n, d), stream));
  }
  DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());
  outputs o;
  o.rows = download(write_path_workspace_rows(w, n, d).data, n * d);
  o.codes = download(codes.get(), code_bytes);
  o.block_scales = download(block_scales.get(), static_cast<std::int64_t>(block_scales.size()));
  o.scales = download(scales.get(), n);
  o.dequant = download(dq.get(), n * d);
  return o;
}

std::vector<float> bf16_to_float(const std::vector<std::uint16_t>& bits) {
  std::vector<float> v(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) v[i] = bf16_decode(bits[i]);
  return v;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: dsv4kv_run_write_path --stream csa512-nvfp4|hca512-nvfp4|csa128-fp8 --tokens T "
               "--dtype f32|bf16 --dir DIR [--engine gpu|host] [--mode fused|two-kernel]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string stream_name, dtype = "f32", dir, engine = "gpu", mode_name = "fused";
  long long tokens = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--stream") stream_name = v;
    else if (a == "--tokens") tokens = std::atoll(v.c_str());
    else if (a == "--dtype") dtype = v;
    else if (a == "--dir") dir = v;
    else if (a == "--engine") engine = v;
    else if (a == "--mode") mode_name = v;
    else usage();
  }
  if (argc % 2 == 0) usage();
  const stream_config* cfg = nullptr;
  for (const stream_config& s : stream_configs) {
    if (stream_name == s.name) cfg = &s;
  }
  if (cfg == nullptr || tokens < 0 || dir.empty() || (dtype != "f32" && dtype != "bf16") ||
      (engine != "gpu" && engine != "host") || (mode_name != "fused" && mode_name != "two-kernel")) {
    usage();
  }
  const write_path_mode mode = mode_name == "fused" ? write_path_mode::fused : write_path_mode::two_kernel;
  const std::int64_t d = cfg->d, width = compress_input_width(cfg->ratio, d);
  const std::int64_t n = compressed_row_count(tokens, cfg->ratio);
  rope_table table;
  DSV4KV_BENCH_OK(make_yarn_rope_table(std::max<long long>(tokens, 1), rope_dim, table));
  const std::vector<float> norm = read_file<float>(dir + "/norm.bin", d);

  outputs o;
  if (dtype == "f32") {
    const std::vector<float> kv = read_file<float>(dir + "/kv.bin", tokens * width);
    const std::vector<float> gate = read_file<float>(dir + "/gate.bin", tokens * width);
    const std::vector<float> bias = read_file<float>(dir + "/bias.bin", cfg->ratio * width);
    o = engine == "host" ? run_host(*cfg, kv, gate, bias, norm, tokens, table)
                         : run_gpu<float>(*cfg, kv, gate, bias, norm, tokens, table, mode);
  } else {
    const std::vector<std::uint16_t> kv = read_file<std::uint16_t>(dir + "/kv.bin", tokens * width);
    const std::vector<std::uint16_t> gate = read_file<std::uint16_t>(dir + "/gate.bin", tokens * width);
    const std::vector<std::uint16_t> bias = read_file<std::uint16_t>(dir + "/bias.bin", cfg->ratio * width);
    o = engine == "host"
            ? run_host(*cfg, bf16_to_float(kv), bf16_to_float(gate), bf16_to_float(bias), norm, tokens, table)
            : run_gpu<std::uint16_t>(*cfg, kv, gate, bias, norm, tokens, table, mode);
  }
  const std::string prefix = dir + "/" + engine + "_";
  write_file(prefix + "rows.f32", o.rows.data(), n * d);
  write_file(prefix + "codes.u8", o.codes.data(), static_cast<std::int64_t>(o.codes.size()));
  if (cfg->nvfp4) write_file(prefix + "block_scales.u8", o.block_scales.data(), static_cast<std::int64_t>(o.block_scales.size()));
  write_file(prefix + "global.f32", o.scales.data(), n);
  write_file(prefix + "dequant.bf16", o.dequant.data(), n * d);
  write_file(prefix + "rope_cos.f32", table.cos.data(), static_cast<std::int64_t>(table.cos.size()));
  write_file(prefix + "rope_sin.f32", table.sin.data(), static_cast<std::int64_t>(table.sin.size()));
  std::printf("%s %s T=%lld %s: %lld rows written to %s*\n", engine.c_str(), cfg->name, tokens, dtype.c_str(),
              static_cast<long long>(n), prefix.c_str());
  return 0;
}
