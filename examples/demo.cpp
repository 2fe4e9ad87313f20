// SPDX-License-Identifier: Apache-2.0
// dsv4kv_demo, the README's main job: the compressed KV cache of DeepSeek-V4-Flash-shaped attention
// layers on a long synthetic prompt. For a CSA layer (main KV + indexer keys) and an HCA layer it
// builds the projections a GEMM would produce, runs the whole write path into a
// compressed_kv_cache, reads the cache back whole and selectively (random top-k rows per query
// token, -1 entries included), and prints what the cache costs and how well it reconstructs.
//
// On a GPU: the library's kernels, timed with CUDA events. Without a usable GPU: the same pipeline
// on the host reference (ref::), at a smaller default size, announced on the first line.
//
//   dsv4kv_demo [--tokens N] [--layers csa,hca | --ratio 4|128] [--topk K] [--queries Q]
//               [--seed S] [--reps R] [--host] [--help]
#include <cuda_runtime_api.h>
#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dsv4kv/dsv4kv.hpp"

namespace {

using namespace dsv4kv;

constexpr const char* usage =
    "usage: dsv4kv_demo [options]\n"
    "Writes synthetic DeepSeek-V4-Flash-shaped projections of a long prompt through the compressed KV\n"
    "cache of a CSA layer (main KV as NVFP4, indexer keys as FP8) and an HCA layer (main KV as NVFP4),\n"
    "reads them back whole and as random top-k rows per query token, and reports sizes, reconstruction\n"
    "quality and time per stage. Runs on the GPU when one is usable, else on the host reference.\n"
    "\n"
    "  --tokens N     prompt length in tokens, 1..1048576 (default 32768 on a GPU, 4096 on the host)\n"
    "  --layers L     csa, hca or csa,hca (default csa,hca)\n"
    "  --ratio M      4 (the CSA layer only) or 128 (the HCA layer only)\n"
    "  --topk K       rows selected per query token, 1..65536 (default 512)\n"
    "  --queries Q    query tokens (the last Q of the prompt) reading top-k rows, 0..65536\n"
    "                 (default 128 on a GPU, 16 on the host)\n"
    "  --seed S       random seed, 0..4294967295 (default 2026)\n"
    "  --reps R       timed repetitions per GPU stage, 1..1000 (default 10)\n"
    "  --host         use the host reference even when a GPU is present\n"
    "  --help         this text\n";

struct options {
  std::int64_t tokens = -1;  // -1: the default of the chosen backend
  bool csa = true, hca = true;
  std::int64_t topk = 512;
  std::int64_t queries = -1;
  std::uint64_t seed = 2026;
  std::int64_t reps = 10;
  bool force_host = false;
};

[[noreturn]] void bad_argument(const std::string& what) {
  fmt::print(stderr, "dsv4kv_demo: error: {} (try --help)\n", what);
  std::exit(2);
}

std::int64_t parse_integer(const char* flag, const char* text, std::int64_t lo, std::int64_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || v < lo || v > hi) {
    bad_argument(fmt::format("{} needs an integer in [{}, {}], got '{}'", flag, lo, hi, text));
  }
  return v;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fmt::print("{}", usage);
      std::exit(0);
    }
    if (a == "--host") {
      o.force_host = true;
      continue;
    }
    const bool takes_value = a == "--tokens" || a == "--layers" || a == "--ratio" || a == "--topk" ||
                             a == "--queries" || a == "--seed" || a == "--reps";
    if (!takes_value) bad_argument(fmt::format("unknown argument '{}'", a));
    if (i + 1 >= argc) bad_argument(fmt::format("{} needs a value", a));
    const char* v = argv[++i];
    if (a == "--tokens") o.tokens = parse_integer("--tokens", v, 1, 1 << 20);
    if (a == "--topk") o.topk = parse_integer("--topk", v, 1, 1 << 16);
    if (a == "--queries") o.queries = parse_integer("--queries", v, 0, 1 << 16);
    if (a == "--seed") o.seed = static_cast<std::uint64_t>(parse_integer("--seed", v, 0, 4294967295LL));
    if (a == "--reps") o.reps = parse_integer("--reps", v, 1, 1000);
    if (a == "--ratio") {
      const std::int64_t m = parse_integer("--ratio", v, 4, 128);
      if (m != csa_ratio && m != hca_ratio) bad_argument(fmt::format("--ratio is 4 (CSA) or 128 (HCA), got '{}'", v));
      o.csa = m == csa_ratio;
      o.hca = m == hca_ratio;
    }
    if (a == "--layers") {
      const std::string s = v;
      if (s != "csa" && s != "hca" && s != "csa,hca" && s != "hca,csa") {
        bad_argument(fmt::format("--layers is csa, hca or csa,hca, got '{}'", s));
      }
      o.csa = s.find("csa") != std::string::npos;
      o.hca = s.find("hca") != std::string::npos;
    }
  }
  return o;
}

void progress(const std::string& line) {
  fmt::print("  .. {}\n", line);
  std::fflush(stdout);
}

// --- synthetic inputs --------------------------------------------------------------------------------

// splitmix64 with an approximately normal draw (Irwin-Hall of four 16-bit uniforms): fast enough
// for the 1e8 values of a 32K-token prompt.
class rng64 {
 public:
  explicit rng64(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  float normal() {
    const std::uint64_t r = next();
    double s = 0.0;
    for (int k = 0; k < 4; ++k) s += static_cast<double>((r >> (16 * k)) & 0xFFFFu) * (1.0 / 65536.0);
    return static_cast<float>((s - 2.0) * 1.7320508075688772);
  }

 private:
  std::uint64_t s_;
};

// One stream's projections as its GEMM would emit them (FP32): kv ~ N(0,1) x a per-channel scale in
// [1/4, 4), gate ~ N(0,1) x a per-channel spread in [1/16, 4) plus a per-channel offset, the
// position bias ~ N(0, 1/4), the RMSNorm weight ~ 1 + N(0, 0.1).
struct projections {
  int ratio = 4;
  std::int64_t d = 0, tokens = 0, width = 0;
  bool hadamard = false;  // indexer keys
  std::vector<float> kv, gate;  // [tokens, width]
  std::vector<float> bias;      // [ratio, width]
  std::vector<float> norm;      // [d]
};

projections make_projections(int ratio, std::int64_t d, std::int64_t tokens, bool hadamard, std::uint64_t seed) {
  projections p;
  p.ratio = ratio;
  p.d = d;
  p.tokens = tokens;
  p.width = compress_input_width(ratio, d);
  p.hadamard = hadamard;
  rng64 rng(seed);
  std::vector<float> scale(p.width), spread(p.width), offset(p.width);
  for (std::int64_t j = 0; j < p.width; ++j) {
    scale[j] = static_cast<float>(std::exp2(4.0 * rng.uniform() - 2.0));
    spread[j] = static_cast<float>(std::exp2(6.0 * rng.uniform() - 4.0));
    offset[j] = rng.normal();
  }
  p.kv.resize(static_cast<std::size_t>(tokens * p.width));
  p.gate.resize(p.kv.size());
  for (std::int64_t t = 0; t < tokens; ++t) {
    float* kv = p.kv.data() + t * p.width;
    float* gate = p.gate.data() + t * p.width;
    for (std::int64_t j = 0; j < p.width; ++j) {
      kv[j] = rng.normal() * scale[j];
      gate[j] = rng.normal() * spread[j] + offset[j];
    }
  }
  p.bias.resize(static_cast<std::size_t>(ratio * p.width));
  for (float& b : p.bias) b = 0.5f * rng.normal();
  p.norm.resize(static_cast<std::size_t>(d));
  for (float& w : p.norm) w = 1.0f + 0.1f * rng.normal();
  return p;
}

// Top-k row indices [queries, k] of the last `queries` tokens of a prompt: each query token at
// position t sees the rows whose block ended at or before t and picks k distinct ones at random; -1
// pads when it sees fewer, and about 1 entry in 32 is -1 anyway (engines pad their index lists).
std::vector<std::int32_t> make_topk(std::int64_t tokens, int ratio, std::int64_t queries, std::int64_t k,
                                    std::uint64_t seed) {
  rng64 rng(seed);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(queries * k), -1);
  std::unordered_set<std::int64_t> picked;
  for (std::int64_t q = 0; q < queries; ++q) {
    const std::int64_t t = tokens - queries + q;
    const std::int64_t visible = t < 0 ? 0 : (t + 1) / ratio;
    picked.clear();
    std::int64_t j = 0;
    if (visible <= k) {
      for (std::int64_t r = 0; r < visible; ++r) idx[q * k + j++] = static_cast<std::int32_t>(r);
    } else {  // Floyd's sampling of k distinct rows of [0, visible)
      for (std::int64_t r = visible - k; r < visible; ++r) {
        std::int64_t pick = static_cast<std::int64_t>(rng.uniform() * static_cast<double>(r + 1));  // [0, r]
        if (!picked.insert(pick).second) picked.insert(pick = r);  // r is new: earlier picks are < r
        idx[q * k + j++] = static_cast<std::int32_t>(pick);
      }
    }
    for (std::int64_t e = 0; e < k; ++e) {
      if (rng.next() % 32 == 0) idx[q * k + e] = -1;
    }
  }
  return idx;
}

// --- measurements --------------------------------------------------------------------------------------

struct quality {
  double rel_rmse = 0, cosine = 0, max_abs = 0;  // cosine: mean over rows
};

// Decoded BF16 rows [n, d] against the FP32 rows the quantizer read.
quality compare(const std::vector<float>& want, const std::vector<std::uint16_t>& got, std::int64_t n,
                std::int64_t d) {
  quality q;
  double err = 0, norm = 0, cos_sum = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    double dot = 0, a2 = 0, b2 = 0;
    for (std::int64_t k = 0; k < d; ++k) {
      const double a = want[r * d + k], b = bf16_decode(got[r * d + k]);
      err += (a - b) * (a - b);
      norm += a * a;
      dot += a * b;
      a2 += a * a;
      b2 += b * b;
      q.max_abs = std::max(q.max_abs, std::fabs(a - b));
    }
    cos_sum += (a2 > 0 && b2 > 0) ? dot / std::sqrt(a2 * b2) : (a2 == b2 ? 1.0 : 0.0);
  }
  q.rel_rmse = norm > 0 ? std::sqrt(err / norm) : 0.0;
  q.cosine = n > 0 ? cos_sum / static_cast<double>(n) : 0.0;
  return q;
}

// One stored stream of one layer, as the table reports it.
struct stream_report {
  std::string name;
  int ratio = 0;
  std::int64_t rows = 0, stored = 0, bf16 = 0;
  quality q;
  std::string exact;  // bit-exactness against the host reference, as a word
};

// One timed stage.
struct stage_report {
  std::string name;
  double ms = 0;
  double bytes = 0;  // minimum traffic: inputs read once, outputs written once
};

// Checks of the selective read: every selected row equals the whole read's row (or zeros for -1).
struct selection_check {
  std::int64_t entries = 0, padding = 0, mismatches = 0;
};

selection_check check_selection(const std::vector<std::int32_t>& idx, const std::vector<std::uint16_t>& selected,
                                const std::vector<std::uint16_t>& whole, std::int64_t rows, std::int64_t d) {
  selection_check c;
  c.entries = static_cast<std::int64_t>(idx.size());
  for (std::size_t e = 0; e < idx.size(); ++e) {
    const bool valid = idx[e] >= 0 && idx[e] < rows;
    c.padding += !valid;
    const std::uint16_t* got = selected.data() + e * d;
    if (valid ? std::memcmp(got, whole.data() + idx[e] * d, static_cast<std::size_t>(d) * 2) != 0
              : std::any_of(got, got + d, [](std::uint16_t b) { return b != 0; })) {
      ++c.mismatches;
    }
  }
  return c;
}

// --- the layers ------------------------------------------------------------------------------------------

struct layer_spec {
  const char* name;
  int ratio;
  bool indexer;
};
constexpr layer_spec csa_layer{"CSA", csa_ratio, true};
constexpr layer_spec hca_layer{"HCA", hca_ratio, false};

struct run_config {
  options opt;
  bool gpu = false;
};

struct results {
  std::vector<stream_report> streams;
  std::vector<stage_report> stages;
  std::vector<std::string> checks;  // one line per check
  std::int64_t allocated = 0;      // bytes of every layer's cache allocation (layout.total_bytes)
  bool ok = true;
};

// ---------------------------------------------------------------------------------------------------------
// GPU pipeline
// ---------------------------------------------------------------------------------------------------------

[[noreturn]] void cuda_die(cudaError_t e, const char* what) {
  fmt::print(stderr, "dsv4kv_demo: error: {}: {}\n", what, cudaGetErrorString(e));
  std::exit(1);
}
#define DEMO_CUDA(expr)                          \
  do {                                           \
    const cudaError_t demo_e_ = (expr);          \
    if (demo_e_ != cudaSuccess) cuda_die(demo_e_, #expr); \
  } while (0)
void demo_ok(status s, const char* what) {
  if (s != status::ok) {
    fmt::print(stderr, "dsv4kv_demo: error: {}: {}\n", what, status_string(s));
    std::exit(1);
  }
}

// `count` elements of T in device memory (the demo's own RAII buffer; engines bring theirs).
template <class T>
class device_array {
 public:
  explicit device_array(std::size_t count) : count_(count) {
    if (count_ > 0) DEMO_CUDA(cudaMalloc(reinterpret_cast<void**>(&p_), count_ * sizeof(T)));
  }
  explicit device_array(const std::vector<T>& host) : device_array(host.size()) {
    if (count_ > 0) DEMO_CUDA(cudaMemcpy(p_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~device_array() {
    if (p_) (void)cudaFree(p_);
  }
  device_array(const device_array&) = delete;
  device_array& operator=(const device_array&) = delete;
  T* get() const { return p_; }
  std::vector<T> download() const {
    std::vector<T> h(count_);
    if (count_ > 0) DEMO_CUDA(cudaMemcpy(h.data(), p_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  T* p_ = nullptr;
  std::size_t count_ = 0;
};

template <class T>
std::vector<T> download_raw(const T* p, std::int64_t count) {
  std::vector<T> h(static_cast<std::size_t>(count));
  if (count > 0) DEMO_CUDA(cudaMemcpy(h.data(), p, h.size() * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

// Device copies of one stream's projections, and the compress_params that point at them.
struct device_projections {
  device_array<float> kv, gate, bias, norm;
  explicit device_projections(const projections& p) : kv(p.kv), gate(p.gate), bias(p.bias), norm(p.norm) {}
  compress_params<float, float> params(const projections& p, rope_table_view rope) const {
    compress_params<float, float> c;
    c.ratio = p.ratio;
    c.kv = {kv.get(), p.tokens, p.width, p.width};
    c.gate = {gate.get(), p.tokens, p.width, p.width};
    c.position_bias = bias.get();
    c.norm_weight = norm.get();
    c.rope = rope;
    c.hadamard = p.hadamard;
    return c;
  }
};

// Times `reps` runs of f() on `stream` with CUDA events; returns milliseconds per run.
template <class F>
double time_ms(cudaStream_t stream, std::int64_t reps, F&& f) {
  cudaEvent_t start, stop;
  DEMO_CUDA(cudaEventCreate(&start));
  DEMO_CUDA(cudaEventCreate(&stop));
  f();  // warm-up
  DEMO_CUDA(cudaEventRecord(start, stream));
  for (std::int64_t r = 0; r < reps; ++r) f();
  DEMO_CUDA(cudaEventRecord(stop, stream));
  DEMO_CUDA(cudaEventSynchronize(stop));
  float ms = 0;
  DEMO_CUDA(cudaEventElapsedTime(&ms, start, stop));
  DEMO_CUDA(cudaEventDestroy(start));
  DEMO_CUDA(cudaEventDestroy(stop));
  return static_cast<double>(ms) / static_cast<double>(reps);
}

// Bit-exactness of a stream's stored bytes against the host reference encoder run on the FP32
// rows the GPU's quantizer read, and of the whole BF16 read against the reference decoder.
std::string nvfp4_exactness(const const_nvfp4_rows& dev_rows, const std::vector<float>& fp32,
                            const std::vector<std::uint16_t>& bf16) {
  const std::int64_t n = dev_rows.rows, d = dev_rows.d;
  const auto codes = download_raw(dev_rows.codes, n * d / 2);
  const auto scales = download_raw(dev_rows.block_scales, n * d / 16);
  const auto g = download_raw(dev_rows.global_scales, n);
  std::vector<std::uint8_t> rc(codes.size()), rs(scales.size());
  std::vector<float> rg(g.size());
  demo_ok(ref::encode_nvfp4({fp32.data(), n, d, d}, {rc.data(), rs.data(), rg.data(), n, d}), "ref::encode_nvfp4");
  std::vector<std::uint16_t> rb(bf16.size());
  demo_ok(ref::decode_nvfp4_bf16({codes.data(), scales.data(), g.data(), n, d}, make_tensor_view(rb.data(), n, d)),
          "ref::decode_nvfp4_bf16");
  const bool same = rc == codes && rs == scales && std::memcmp(rg.data(), g.data(), g.size() * 4) == 0 && rb == bf16;
  return same ? "yes" : "NO";
}

std::string fp8_exactness(const const_fp8_rows& dev_rows, const std::vector<float>& fp32, fp8_scale_mode mode,
                          const std::vector<std::uint16_t>& bf16) {
  const std::int64_t n = dev_rows.rows, d = dev_rows.d;
  const auto codes = download_raw(dev_rows.codes, n * d);
  const auto s = download_raw(dev_rows.scales, n);
  std::vector<std::uint8_t> rc(codes.size());
  std::vector<float> rs(s.size());
  demo_ok(ref::encode_fp8({fp32.data(), n, d, d}, mode, {rc.data(), rs.data(), n, d}), "ref::encode_fp8");
  std::vector<std::uint16_t> rb(bf16.size());
  demo_ok(ref::decode_fp8_bf16({codes.data(), s.data(), n, d}, make_tensor_view(rb.data(), n, d)), "ref::decode_fp8_bf16");
  const bool same = rc == codes && std::memcmp(rs.data(), s.data(), s.size() * 4) == 0 && rb == bf16;
  return same ? "yes" : "NO";
}

void run_layer_gpu(const layer_spec& L, const run_config& cfg, rope_table_view rope, cudaStream_t stream,
                   results& out) {
  const options& o = cfg.opt;
  const std::int64_t T = o.tokens, n = compressed_row_count(T, L.ratio);
  const fp8_scale_mode mode = fp8_scale_mode::fp32;
  progress(fmt::format("{} layer: projections [{}, {}]{} FP32", L.name, T, compress_input_width(L.ratio, 512),
                       L.indexer ? fmt::format(" + indexer [{}, {}]", T, compress_input_width(L.ratio, 128)) : ""));
  const projections pm = make_projections(L.ratio, 512, T, false, o.seed * 3 + static_cast<std::uint64_t>(L.ratio));
  projections pi;
  if (L.indexer) pi = make_projections(L.ratio, 128, T, true, o.seed * 3 + 1);
  const device_projections dm(pm);
  const device_projections di(pi);
  const compress_params<float, float> main = dm.params(pm, rope);
  const compress_params<float, float> indexer = di.params(pi, rope);

  device_kv_cache owned;
  const kv_cache_shape shape = L.indexer ? csa_layer_shape(n) : hca_layer_shape(n);
  demo_ok(device_kv_cache::create(shape, n, owned), "device_kv_cache::create");
  compressed_kv_cache& cache = owned.cache();
  out.allocated += owned.layout().total_bytes;
  const span<std::uint8_t> ws = owned.workspace();
  const auto append = [&](write_path_mode m) {
    cache.reset();
    return L.indexer ? cache.append_prefill(main, indexer, mode, ws, stream, m) : cache.append_prefill(main, ws, stream, m);
  };

  // The two-kernel run leaves the FP32 rows the quantizer read in the workspace: the reference.
  progress(fmt::format("{} layer: write path, {} rows per stream", L.name, n));
  demo_ok(append(write_path_mode::two_kernel), "append_prefill (two-kernel)");
  DEMO_CUDA(cudaStreamSynchronize(stream));
  const std::vector<float> main_fp32 = download_raw(cache.workspace_main_rows(ws, n).data, n * 512);  // [n, 512]
  const std::vector<float> idx_fp32 =  // [n, 128]
      L.indexer ? download_raw(cache.workspace_indexer_rows(ws, n).data, n * 128) : std::vector<float>{};
  // The default (fused) path, timed; what stays in the cache.
  status s = status::ok;
  const double ms_write = time_ms(stream, o.reps, [&] { s = s == status::ok ? append(write_path_mode::fused) : s; });
  demo_ok(s, "append_prefill");
  const double in_bytes = 2.0 * 4.0 * static_cast<double>(T) *
                          static_cast<double>(pm.width + (L.indexer ? pi.width : 0));
  const kv_cache_row_bytes rb = kv_cache_bytes_per_row(shape);
  out.stages.push_back({fmt::format("{} write path: projections -> {}", L.name, L.indexer ? "NVFP4 + FP8" : "NVFP4"),
                        ms_write, in_bytes + static_cast<double>(n * rb.total())});

  // Read back: all main-KV rows.
  progress(fmt::format("{} layer: read back", L.name));
  device_array<std::uint16_t> whole(static_cast<std::size_t>(n * 512));  // [n, 512] BF16
  const tensor_view<bf16_bits> whole_view = make_tensor_view(whole.get(), n, 512);
  const double ms_read = time_ms(stream, o.reps, [&] { s = s == status::ok ? cache.read_main(whole_view, stream) : s; });
  demo_ok(s, "read_main");
  out.stages.push_back({fmt::format("{} read all main KV -> BF16", L.name), ms_read,
                        static_cast<double>(n * (rb.main + rb.main_bf16))});
  const std::vector<std::uint16_t> whole_host = whole.download();  // [n, 512]
  stream_report main_report{fmt::format("{} main KV   NVFP4", L.name), L.ratio, n, n * rb.main, n * rb.main_bf16,
                            compare(main_fp32, whole_host, n, 512), nvfp4_exactness(cache.main_rows(), main_fp32, whole_host)};
  out.streams.push_back(main_report);

  if (L.indexer) {
    // Selected rows: random top-k per query token, batched in one launch (the sparse-attention read).
    const std::int64_t Q = o.queries, k = o.topk;
    const std::vector<std::int32_t> idx = make_topk(T, L.ratio, Q, k, o.seed * 7 + 5);  // [Q, k]
    const device_array<std::int32_t> d_idx(idx);                                          // [Q, k]
    device_array<std::uint16_t> sel(static_cast<std::size_t>(Q * k * 512));              // [Q, k, 512] BF16
    const tensor_view<const std::int32_t> idx_view{d_idx.get(), Q, k, k};
    const batched_rows_view<bf16_bits> sel_view{sel.get(), Q, k, 512, 512, k * 512};
    const double ms_sel = time_ms(stream, o.reps, [&] {
      s = s == status::ok ? cache.read_main_selected_batched(idx_view, sel_view, stream) : s;
    });
    demo_ok(s, "read_main_selected_batched");
    const selection_check c = check_selection(idx, sel.download(), whole_host, n, 512);
    out.stages.push_back({fmt::format("{} read top-{} x {} queries -> BF16", L.name, k, Q), ms_sel,
                          static_cast<double>((c.entries - c.padding) * rb.main + c.entries * rb.main_bf16)});
    out.checks.push_back(fmt::format("{} selective read: {} entries ({} of them -1 or out of range -> zero rows), "
                                     "{} differ from the whole read",
                                     L.name, c.entries, c.padding, c.mismatches));
    out.ok = out.ok && c.mismatches == 0;

    // Indexer keys.
    device_array<std::uint16_t> keys(static_cast<std::size_t>(n * 128));  // [n, 128] BF16
    const tensor_view<bf16_bits> keys_view = make_tensor_view(keys.get(), n, 128);
    const double ms_keys = time_ms(stream, o.reps, [&] { s = s == status::ok ? cache.read_indexer(keys_view, stream) : s; });
    demo_ok(s, "read_indexer");
    out.stages.push_back({fmt::format("{} read all indexer keys -> BF16", L.name), ms_keys,
                          static_cast<double>(n * (rb.indexer + rb.indexer_bf16))});
    const std::vector<std::uint16_t> keys_host = keys.download();  // [n, 128]
    out.streams.push_back({fmt::format("{} indexer   FP8", L.name), L.ratio, n, n * rb.indexer, n * rb.indexer_bf16,
                           compare(idx_fp32, keys_host, n, 128),
                           fp8_exactness(cache.indexer_rows(), idx_fp32, mode, keys_host)});
  }
}

// ---------------------------------------------------------------------------------------------------------
// Host reference pipeline (same steps, ref:: instead of kernels, the cache laid out in host memory)
// ---------------------------------------------------------------------------------------------------------

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The FP32 rows of the write path before quantization (compress -> norm -> RoPE -> Hadamard).
std::vector<float> host_rows(const projections& p, rope_table_view rope) {
  ref::write_path_problem q;
  q.ratio = p.ratio;
  q.kv = {p.kv.data(), p.tokens, p.width, p.width};
  q.gate = {p.gate.data(), p.tokens, p.width, p.width};
  q.position_bias = p.bias.data();
  q.norm_weight = p.norm.data();
  q.rope = rope;
  q.hadamard = p.hadamard;
  const std::int64_t n = compressed_row_count(p.tokens, p.ratio);
  std::vector<float> rows(static_cast<std::size_t>(n * p.d));
  demo_ok(ref::write_path_rows(q, make_tensor_view(rows.data(), n, p.d)), "ref::write_path_rows");
  return rows;
}

void run_layer_host(const layer_spec& L, const run_config& cfg, rope_table_view rope, results& out) {
  const options& o = cfg.opt;
  const std::int64_t T = o.tokens, n = compressed_row_count(T, L.ratio);
  progress(fmt::format("{} layer: projections and write path (host reference), {} rows per stream", L.name, n));
  const kv_cache_shape shape = L.indexer ? csa_layer_shape(n) : hca_layer_shape(n);
  kv_cache_layout layout;
  demo_ok(make_kv_cache_layout(shape, layout), "make_kv_cache_layout");
  out.allocated += layout.total_bytes;
  std::vector<std::uint8_t> memory(static_cast<std::size_t>(layout.total_bytes + kv_cache_alignment));  // the cache
  void* base = memory.data();
  std::size_t space = memory.size();
  const kv_cache_views v = kv_cache_views_at(layout, std::align(kv_cache_alignment, 1, base, space));
  const kv_cache_row_bytes rb = kv_cache_bytes_per_row(shape);

  const projections pm = make_projections(L.ratio, 512, T, false, o.seed * 3 + static_cast<std::uint64_t>(L.ratio));
  projections pi;
  if (L.indexer) pi = make_projections(L.ratio, 128, T, true, o.seed * 3 + 1);
  auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> main_fp32 = host_rows(pm, rope);  // [n, 512]
  demo_ok(ref::encode_nvfp4({main_fp32.data(), n, 512, 512}, v.main), "ref::encode_nvfp4");
  std::vector<float> idx_fp32;  // [n, 128]
  if (L.indexer) {
    idx_fp32 = host_rows(pi, rope);
    demo_ok(ref::encode_fp8({idx_fp32.data(), n, 128, 128}, fp8_scale_mode::fp32, v.indexer), "ref::encode_fp8");
  }
  const double in_bytes = 2.0 * 4.0 * static_cast<double>(T) * static_cast<double>(pm.width + (L.indexer ? pi.width : 0));
  out.stages.push_back({fmt::format("{} write path: projections -> {}", L.name, L.indexer ? "NVFP4 + FP8" : "NVFP4"),
                        1e3 * seconds_since(t0), in_bytes + static_cast<double>(n * rb.total())});

  progress(fmt::format("{} layer: read back (host reference)", L.name));
  std::vector<std::uint16_t> whole(static_cast<std::size_t>(n * 512));  // [n, 512] BF16
  t0 = std::chrono::steady_clock::now();
  demo_ok(ref::decode_nvfp4_bf16(v.main, make_tensor_view(whole.data(), n, 512)), "ref::decode_nvfp4_bf16");
  out.stages.push_back({fmt::format("{} read all main KV -> BF16", L.name), 1e3 * seconds_since(t0),
                        static_cast<double>(n * (rb.main + rb.main_bf16))});
  out.streams.push_back({fmt::format("{} main KV   NVFP4", L.name), L.ratio, n, n * rb.main, n * rb.main_bf16,
                         compare(main_fp32, whole, n, 512), "(is the ref)"});
  if (L.indexer) {
    const std::int64_t Q = o.queries, k = o.topk;
    const std::vector<std::int32_t> idx = make_topk(T, L.ratio, Q, k, o.seed * 7 + 5);  // [Q, k]
    std::vector<std::uint16_t> sel(static_cast<std::size_t>(Q * k * 512));  // [Q, k, 512] BF16
    t0 = std::chrono::steady_clock::now();
    for (std::int64_t q = 0; q < Q; ++q) {
      demo_ok(ref::decode_nvfp4_selected_bf16(v.main, {idx.data() + q * k, k},
                                              make_tensor_view(sel.data() + q * k * 512, k, 512)),
              "ref::decode_nvfp4_selected_bf16");
    }
    const double ms_sel = 1e3 * seconds_since(t0);
    const selection_check c = check_selection(idx, sel, whole, n, 512);
    out.stages.push_back({fmt::format("{} read top-{} x {} queries -> BF16", L.name, k, Q), ms_sel,
                          static_cast<double>((c.entries - c.padding) * rb.main + c.entries * rb.main_bf16)});
    out.checks.push_back(fmt::format("{} selective read: {} entries ({} of them -1 or out of range -> zero rows), "
                                     "{} differ from the whole read",
                                     L.name, c.entries, c.padding, c.mismatches));
    out.ok = out.ok && c.mismatches == 0;

    std::vector<std::uint16_t> keys(static_cast<std::size_t>(n * 128));  // [n, 128] BF16
    t0 = std::chrono::steady_clock::now();
    demo_ok(ref::decode_fp8_bf16(v.indexer, make_tensor_view(keys.data(), n, 128)), "ref::decode_fp8_bf16");
    out.stages.push_back({fmt::format("{} read all indexer keys -> BF16", L.name), 1e3 * seconds_since(t0),
                          static_cast<double>(n * (rb.indexer + rb.indexer_bf16))});
    out.streams.push_back({fmt::format("{} indexer   FP8", L.name), L.ratio, n, n * rb.indexer, n * rb.indexer_bf16,
                           compare(idx_fp32, keys, n, 128), "(is the ref)"});
  }
}

// ---------------------------------------------------------------------------------------------------------

void print_results(const results& r, bool gpu) {
  fmt::print("\n{:<20} {:>5} {:>8} {:>13} {:>13} {:>7} {:>9} {:>9} {:>10} {:>11}\n", "stored stream", "ratio",
             "rows", "stored bytes", "as BF16", "saving", "rel RMSE", "mean cos", "max |err|", "bit-exact");
  std::int64_t stored = 0, bf16 = 0;
  for (const stream_report& s : r.streams) {
    fmt::print("{:<20} {:>5} {:>8} {:>13} {:>13} {:>6.2f}x {:>9.4f} {:>9.6f} {:>10.4g} {:>11}\n", s.name, s.ratio,
               s.rows, s.stored, s.bf16, compression_ratio(s.bf16, s.stored), s.q.rel_rmse, s.q.cosine, s.q.max_abs,
               s.exact);
    stored += s.stored;
    bf16 += s.bf16;
  }
  fmt::print("{:<20} {:>5} {:>8} {:>13} {:>13} {:>6.2f}x\n", "all layers", "", "", stored, bf16,
             compression_ratio(bf16, stored));
  fmt::print("bytes per row: NVFP4 main KV 292 vs 1024 BF16 (256/73 = {:.4f}x), FP8 indexer key 132 vs 256 "
             "(64/33 = {:.4f}x);\nallocated (layouts incl. alignment padding): {} bytes. Errors are against the FP32 "
             "rows the quantizer read,\nafter the BF16 read back; bit-exact = stored bytes and BF16 reads equal the host "
             "reference's.\n",
             compression_ratio(1024, 292), compression_ratio(256, 132), r.allocated);

  fmt::print("\n{:<44} {:>11} {:>12} {:>10}\n", "stage", gpu ? "time (ms)" : "host (ms)", "bytes moved", "GB/s");
  for (const stage_report& s : r.stages) {
    fmt::print("{:<44} {:>11.4f} {:>12.4g} {:>10.1f}\n", s.name, s.ms, s.bytes, s.ms > 0 ? s.bytes / (s.ms * 1e6) : 0.0);
  }
  fmt::print("{}\n", gpu ? "time: CUDA events, mean of the timed repetitions after a warm-up; GB/s counts each input "
                           "read once and each output written once."
                         : "time: one run of the single-threaded host reference (double-precision compress).");
  fmt::print("\n");
  for (const std::string& c : r.checks) fmt::print("check: {}\n", c);
}

}  // namespace

int main(int argc, char** argv) {
  run_config cfg;
  cfg.opt = parse(argc, argv);
  options& o = cfg.opt;

  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  cudaDeviceProp prop{};
  std::string why_host;
  if (o.force_host) {
    why_host = "--host";
  } else if (e != cudaSuccess || devices == 0) {
    why_host = fmt::format("no CUDA device: {}", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
  } else if (!device_is_supported(0)) {
    why_host = "device 0 is older than sm_90 (Hopper), which this build targets";
  }
  (void)cudaGetLastError();
  cfg.gpu = why_host.empty();
  if (o.tokens < 0) o.tokens = cfg.gpu ? 32768 : 4096;
  if (o.queries < 0) o.queries = cfg.gpu ? 128 : 16;
  if (o.queries * o.topk > (std::int64_t{1} << 22)) {
    bad_argument(fmt::format("--queries x --topk is at most 4194304 selected rows, got {} x {}", o.queries, o.topk));
  }
  std::vector<layer_spec> layers;
  if (o.csa) layers.push_back(csa_layer);
  if (o.hca) layers.push_back(hca_layer);
  std::string names;
  for (const layer_spec& L : layers) names += std::string(names.empty() ? "" : " + ") + L.name;

  if (cfg.gpu) {
    DEMO_CUDA(cudaGetDeviceProperties(&prop, 0));
    fmt::print("dsv4kv_demo: GPU kernels on {} (sm_{}{}, {} SMs): {} tokens, layers {}, top-{} rows for {} query "
               "tokens, seed {}\n",
               prop.name, prop.major, prop.minor, prop.multiProcessorCount, o.tokens, names, o.topk, o.queries, o.seed);
  } else {
    fmt::print("dsv4kv_demo: HOST REFERENCE, no GPU kernels run ({}): {} tokens, layers {}, top-{} rows for {} query "
               "tokens, seed {}\n",
               why_host, o.tokens, names, o.topk, o.queries, o.seed);
  }
  std::fflush(stdout);

  rope_table table;  // DeepSeek-V4 YaRN, rope_dim 64, one entry per prompt position
  demo_ok(make_yarn_rope_table(o.tokens, 64, table), "make_yarn_rope_table");
  results r;
  if (cfg.gpu) {
    cudaStream_t stream = nullptr;
    DEMO_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    {
      const device_array<float> cos(table.cos), sin(table.sin);
      const rope_table_view rope{cos.get(), sin.get(), table.max_pos, table.rope_dim};
      for (const layer_spec& L : layers) run_layer_gpu(L, cfg, rope, stream, r);
    }
    DEMO_CUDA(cudaStreamDestroy(stream));
  } else {
    for (const layer_spec& L : layers) run_layer_host(L, cfg, table.view(), r);
  }
  for (const stream_report& s : r.streams) r.ok = r.ok && s.exact != "NO";
  print_results(r, cfg.gpu);
  fmt::print("dsv4kv_demo: {}\n", r.ok ? "all checks passed" : "SOME CHECKS FAILED");
  return r.ok ? 0 : 1;
}
