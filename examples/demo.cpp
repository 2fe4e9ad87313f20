// SPDX-License-Identifier: Apache-2.0
// dsv4kv_demo: the write and read paths of one DeepSeek-V4-Flash-shaped attention layer on
// synthetic projections, run through the host reference (the executable form of SPEC.md).
//
//   dsv4kv_demo [--tokens N] [--seed S]
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dsv4kv/host.hpp"

namespace {

using namespace dsv4kv;

struct options {
  std::int64_t tokens = 8192;
  std::uint32_t seed = 2026;
};

bool parse(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fmt::print("usage: dsv4kv_demo [--tokens N (default 8192)] [--seed S]\n"
                 "Runs CSA main KV (NVFP4), HCA main KV (NVFP4) and the CSA indexer (FP8) write paths\n"
                 "on the host reference, reads the rows back and reports sizes and errors.\n");
      std::exit(0);
    }
    if ((a == "--tokens" || a == "--seed") && i + 1 < argc) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[++i], &end, 10);
      if (*end != '\0' || v < 0) {
        fmt::print(stderr, "dsv4kv_demo: {} needs a non-negative integer, got '{}'\n", a, argv[i]);
        return false;
      }
      if (a == "--tokens") o.tokens = v;
      else o.seed = static_cast<std::uint32_t>(v);
      continue;
    }
    fmt::print(stderr, "dsv4kv_demo: unknown or incomplete argument '{}' (try --help)\n", a);
    return false;
  }
  return true;
}

struct layer {
  const char* name;
  int ratio;
  std::int64_t d;
  bool fp8;  // indexer keys; otherwise NVFP4 main KV
};

struct quality {
  double rel_rmse = 0, cosine = 0, max_abs = 0;
};

quality compare(const std::vector<float>& ref_rows, const std::vector<float>& got) {
  double e = 0, n = 0, dot = 0, g2 = 0, mx = 0;
  for (std::size_t i = 0; i < ref_rows.size(); ++i) {
    const double r = ref_rows[i], q = got[i];
    e += (q - r) * (q - r);
    n += r * r;
    dot += q * r;
    g2 += q * q;
    mx = std::fmax(mx, std::fabs(q - r));
  }
  if (n == 0) return {};
  return {std::sqrt(e / n), dot / std::sqrt(n * g2), mx};
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  if (!parse(argc, argv, opt)) return 2;
  fmt::print("dsv4kv_demo: host reference pipeline (no GPU kernels yet), {} tokens, seed {}\n", opt.tokens, opt.seed);

  rope_table table;
  if (make_yarn_rope_table(std::max<std::int64_t>(opt.tokens, 1), 64, table) != status::ok) return 1;
  std::mt19937 rng(opt.seed);
  std::normal_distribution<float> n01;
  std::uniform_real_distribution<float> log_spread(-2.0f, 2.0f);

  fmt::print("{:<12} {:>6} {:>8} {:>10} {:>10} {:>7} {:>10} {:>9} {:>10} {:>8}\n", "layer", "ratio", "rows",
             "bytes", "bf16 bytes", "saving", "rel RMSE", "cosine", "max |err|", "ms");
  const layer layers[] = {{"CSA main", 4, 512, false}, {"HCA main", 128, 512, false}, {"CSA indexer", 4, 128, true}};
  for (const layer& L : layers) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t width = compress_input_width(L.ratio, L.d), T = opt.tokens;
    // Projections ~ N(0,1) times a per-channel scale; gate scores with a wide per-channel spread.
    std::vector<float> chan_scale(width), gate_spread(width), kv(T * width), gate(T * width), norm_w(L.d, 1.0f);
    for (auto& s : chan_scale) s = std::exp2(log_spread(rng));
    for (auto& s : gate_spread) s = std::exp2(2.0f * log_spread(rng));
    for (std::int64_t t = 0; t < T; ++t) {
      for (std::int64_t c = 0; c < width; ++c) {
        kv[t * width + c] = n01(rng) * chan_scale[c];
        gate[t * width + c] = n01(rng) * gate_spread[c];
      }
    }
    for (auto& w : norm_w) w = 1.0f + 0.1f * n01(rng);

    ref::write_path_problem p;
    p.ratio = L.ratio;
    p.kv = make_tensor_view<const float>(kv.data(), T, width);
    p.gate = make_tensor_view<const float>(gate.data(), T, width);
    p.norm_weight = norm_w.data();
    p.rope = table.view();
    p.hadamard = L.fp8;
    const std::int64_t rows = compressed_row_count(T, L.ratio);
    std::vector<float> fp32_rows(rows * L.d), decoded(rows * L.d);
    if (ref::write_path_rows(p, make_tensor_view(fp32_rows.data(), rows, L.d)) != status::ok) return 1;
    std::int64_t bytes = 0;
    status s;
    const auto x = make_tensor_view<const float>(fp32_rows.data(), rows, L.d);
    if (L.fp8) {
      std::vector<std::uint8_t> codes(rows * L.d);
      std::vector<float> scales(rows);
      const fp8_rows out{codes.data(), scales.data(), rows, L.d};
      s = ref::encode_fp8(x, fp8_scale_mode::fp32, out);
      if (s == status::ok) s = ref::decode_fp8(out, make_tensor_view(decoded.data(), rows, L.d));
      bytes = out.sizes().total();
    } else {
      std::vector<std::uint8_t> codes(rows * L.d / 2), scales(rows * L.d / 16);
      std::vector<float> g(rows);
      const nvfp4_rows out{codes.data(), scales.data(), g.data(), rows, L.d};
      s = ref::encode_nvfp4(x, out);
      if (s == status::ok) s = ref::decode_nvfp4(out, make_tensor_view(decoded.data(), rows, L.d));
      bytes = out.sizes().total();
    }
    if (s != status::ok) {
      fmt::print(stderr, "dsv4kv_demo: {}: {}\n", L.name, status_string(s));
      return 1;
    }
    const quality q = compare(fp32_rows, decoded);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const std::int64_t bf16_bytes = rows * L.d * 2;
    fmt::print("{:<12} {:>6} {:>8} {:>10} {:>10} {:>6.2f}x {:>10.4f} {:>9.6f} {:>10.4g} {:>8.1f}\n", L.name, L.ratio,
               rows, bytes, bf16_bytes, bytes ? double(bf16_bytes) / double(bytes) : 0.0, q.rel_rmse, q.cosine,
               q.max_abs, ms);
  }
  return 0;
}
