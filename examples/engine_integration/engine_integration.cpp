// SPDX-License-Identifier: Apache-2.0
// engine_integration: dsv4kv as an inference engine uses it.
//   - the engine sizes one layer's compressed KV cache with kv_cache_layout and allocates it with its
//     OWN allocator (here the stream-ordered cudaMallocAsync pool), then views it as a
//     compressed_kv_cache;
//   - on its own stream it captures the write path of a decode-sized batch (64 tokens of a CSA
//     layer: 16 main-KV rows as NVFP4 and 16 indexer keys as FP8) into a CUDA graph once, and
//     replays it each step after its GEMMs refreshed the projection buffers;
//   - each replay is checked: the bytes equal an eager call on the same inputs, and the rows read
//     back as BF16 are within NVFP4 / FP8 accuracy of the FP32 rows.
// With no usable GPU it prints one "skipped" line and exits 0.
//
// A captured append writes the rows that were next when it was captured (the row count is host
// bookkeeping), so this replays one step's writes into the same rows; positions, lengths and cache
// slots that change between replays come from device memory in the streaming-append API.
#include <cuda_runtime_api.h>

#include <dsv4kv/dsv4kv.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

using namespace dsv4kv;

int fail(const char* what, const char* why) {
  std::printf("engine_integration: FAILED: %s: %s\n", what, why);
  return 1;
}
#define ENGINE_CUDA(expr)                                                       \
  do {                                                                          \
    const cudaError_t e_ = (expr);                                              \
    if (e_ != cudaSuccess) return fail(#expr, cudaGetErrorString(e_));          \
  } while (0)
#define ENGINE_OK(expr)                                                         \
  do {                                                                          \
    const status s_ = (expr);                                                   \
    if (s_ != status::ok) return fail(#expr, status_string(s_));                \
  } while (0)

// Deterministic pseudo-random values in [-scale, scale) (the engine's GEMM output stands in here).
void fill(std::vector<float>& v, std::uint32_t seed, float scale) {
  std::uint32_t x = seed * 2654435761u + 1u;
  for (float& f : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    f = scale * (static_cast<float>(x >> 8) * 0x1.0p-23f - 1.0f);
  }
}

// Relative RMSE of BF16 rows against FP32 rows.
double rel_rmse(const std::vector<float>& want, const std::vector<std::uint16_t>& got) {
  double e = 0, n = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = bf16_decode(got[i]) - static_cast<double>(want[i]);
    e += d * d;
    n += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(e / n);
}

template <class T>
std::vector<T> download(const T* p, std::int64_t count, cudaStream_t s) {
  std::vector<T> h(static_cast<std::size_t>(count));
  if (cudaMemcpyAsync(h.data(), p, h.size() * sizeof(T), cudaMemcpyDeviceToHost, s) != cudaSuccess ||
      cudaStreamSynchronize(s) != cudaSuccess) {
    h.clear();
  }
  return h;
}

// All stored bytes of the first `rows` rows of a cache (main KV, then indexer keys).
std::vector<std::uint8_t> stored_bytes(const compressed_kv_cache& c, std::int64_t rows, cudaStream_t s) {
  const nvfp4_rows m = c.main_storage();
  const fp8_rows x = c.indexer_storage();
  std::vector<std::uint8_t> all;
  for (const auto& part : {download(m.codes, rows * m.d / 2, s), download(m.block_scales, rows * m.d / 16, s),
                           download(reinterpret_cast<const std::uint8_t*>(m.global_scales), rows * 4, s),
                           download(x.codes, rows * x.d, s),
                           download(reinterpret_cast<const std::uint8_t*>(x.scales), rows * 4, s)}) {
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

}  // namespace

int main() {
  int devices = 0;
  const cudaError_t probe = cudaGetDeviceCount(&devices);
  if (probe != cudaSuccess || devices == 0 || !device_is_supported(0)) {
    std::printf("engine_integration: skipped: no supported CUDA device (%s)\n",
                probe != cudaSuccess ? cudaGetErrorString(probe) : devices == 0 ? "0 devices" : "older than sm_90");
    return 0;
  }

  // --- the engine's stream and allocator ------------------------------------------------------------
  cudaStream_t stream = nullptr;
  ENGINE_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const auto engine_alloc = [&](std::int64_t bytes) -> void* {
    void* p = nullptr;
    return cudaMallocAsync(&p, static_cast<std::size_t>(bytes), stream) == cudaSuccess ? p : nullptr;
  };

  // --- one CSA layer's cache, sized by the layout, in the engine's memory ------------------------------
  constexpr std::int64_t capacity = 16384;  // rows: a 64K-token context at ratio 4
  kv_cache_layout layout;
  ENGINE_OK(make_kv_cache_layout(csa_layer_shape(capacity), layout));
  void* pool = engine_alloc(layout.total_bytes);
  void* check_pool = engine_alloc(layout.total_bytes);  // a second cache for the eager check
  if (pool == nullptr || check_pool == nullptr) return fail("cudaMallocAsync", "out of memory");
  compressed_kv_cache cache, check;
  ENGINE_OK(compressed_kv_cache::create(pool, layout.total_bytes, layout, cache));
  ENGINE_OK(compressed_kv_cache::create(check_pool, layout.total_bytes, layout, check));

  // --- a decode-sized batch: 64 tokens -> 16 rows per stream ---------------------------------------
  constexpr std::int64_t T = 64, n = T / csa_ratio;
  const std::int64_t wm = compress_input_width(csa_ratio, 512), wi = compress_input_width(csa_ratio, 128);
  rope_table table;
  ENGINE_OK(make_yarn_rope_table(T, 64, table));
  std::vector<float> kv_m(T * wm), gate_m(T * wm), kv_i(T * wi), gate_i(T * wi), norm_m(512, 1.0f), norm_i(128, 1.0f);
  const std::int64_t proj_bytes = 4 * (2 * T * wm + 2 * T * wi);
  auto* proj = static_cast<float*>(engine_alloc(proj_bytes + 4 * (512 + 128) + 4 * 2 * table.cos.size()));
  const std::int64_t ws_bytes = cache.workspace_bytes(n);
  auto* ws_ptr = static_cast<std::uint8_t*>(engine_alloc(ws_bytes));
  if (proj == nullptr || ws_ptr == nullptr) return fail("cudaMallocAsync", "out of memory");
  float* d_kv_m = proj;                     // [T, 1024]
  float* d_gate_m = d_kv_m + T * wm;        // [T, 1024]
  float* d_kv_i = d_gate_m + T * wm;        // [T, 256]
  float* d_gate_i = d_kv_i + T * wi;        // [T, 256]
  float* d_norm_m = d_gate_i + T * wi;      // [512]
  float* d_norm_i = d_norm_m + 512;         // [128]
  float* d_cos = d_norm_i + 128;            // [T, 32]
  float* d_sin = d_cos + table.cos.size();  // [T, 32]
  ENGINE_CUDA(cudaMemcpyAsync(d_norm_m, norm_m.data(), 4 * 512, cudaMemcpyHostToDevice, stream));
  ENGINE_CUDA(cudaMemcpyAsync(d_norm_i, norm_i.data(), 4 * 128, cudaMemcpyHostToDevice, stream));
  ENGINE_CUDA(cudaMemcpyAsync(d_cos, table.cos.data(), 4 * table.cos.size(), cudaMemcpyHostToDevice, stream));
  ENGINE_CUDA(cudaMemcpyAsync(d_sin, table.sin.data(), 4 * table.sin.size(), cudaMemcpyHostToDevice, stream));
  const rope_table_view rope{d_cos, d_sin, table.max_pos, table.rope_dim};

  compress_params<float> main, indexer;
  main.ratio = indexer.ratio = csa_ratio;
  main.kv = {d_kv_m, T, wm, wm};
  main.gate = {d_gate_m, T, wm, wm};
  main.norm_weight = d_norm_m;
  main.rope = rope;
  indexer.kv = {d_kv_i, T, wi, wi};
  indexer.gate = {d_gate_i, T, wi, wi};
  indexer.norm_weight = d_norm_i;
  indexer.rope = rope;
  indexer.hadamard = true;
  const span<std::uint8_t> ws{ws_ptr, ws_bytes};

  // --- capture the write once (nothing runs yet) ------------------------------------------------------
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ENGINE_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  const status captured = cache.append_prefill(main, indexer, fp8_scale_mode::fp32, ws, stream);
  ENGINE_CUDA(cudaStreamEndCapture(stream, &graph));
  ENGINE_OK(captured);
  ENGINE_CUDA(cudaGraphInstantiate(&exec, graph, 0));

  // --- replay it each step with fresh projections --------------------------------------------------
  double worst_main = 0, worst_keys = 0;
  for (std::uint32_t step = 0; step < 4; ++step) {
    fill(kv_m, 4 * step + 1, 2.0f);
    fill(gate_m, 4 * step + 2, 3.0f);
    fill(kv_i, 4 * step + 3, 2.0f);
    fill(gate_i, 4 * step + 4, 3.0f);
    ENGINE_CUDA(cudaMemcpyAsync(d_kv_m, kv_m.data(), 4 * kv_m.size(), cudaMemcpyHostToDevice, stream));
    ENGINE_CUDA(cudaMemcpyAsync(d_gate_m, gate_m.data(), 4 * gate_m.size(), cudaMemcpyHostToDevice, stream));
    ENGINE_CUDA(cudaMemcpyAsync(d_kv_i, kv_i.data(), 4 * kv_i.size(), cudaMemcpyHostToDevice, stream));
    ENGINE_CUDA(cudaMemcpyAsync(d_gate_i, gate_i.data(), 4 * gate_i.size(), cudaMemcpyHostToDevice, stream));
    ENGINE_CUDA(cudaGraphLaunch(exec, stream));

    // Check: an eager two-kernel append of the same inputs gives the same bytes, and leaves the FP32
    // rows the quantizer read in the workspace.
    check.reset();
    ENGINE_OK(check.append_prefill(main, indexer, fp8_scale_mode::fp32, ws, stream, write_path_mode::two_kernel));
    const std::vector<std::uint8_t> got = stored_bytes(cache, n, stream), want = stored_bytes(check, n, stream);
    if (got.empty() || got != want) return fail("graph replay", "stored bytes differ from the eager call");
    const std::vector<float> fp32_main = download(check.workspace_main_rows(ws, n).data, n * 512, stream);
    const std::vector<float> fp32_keys = download(check.workspace_indexer_rows(ws, n).data, n * 128, stream);
    auto* bf16 = static_cast<bf16_bits*>(engine_alloc(2 * n * (512 + 128)));
    if (bf16 == nullptr) return fail("cudaMallocAsync", "out of memory");
    ENGINE_OK(check.read_main(make_tensor_view(bf16, n, 512), stream));
    ENGINE_OK(check.read_indexer(make_tensor_view(bf16 + n * 512, n, 128), stream));
    const std::vector<std::uint16_t> back_main = download(bf16, n * 512, stream);
    const std::vector<std::uint16_t> back_keys = download(bf16 + n * 512, n * 128, stream);
    ENGINE_CUDA(cudaFreeAsync(bf16, stream));
    worst_main = std::fmax(worst_main, rel_rmse(fp32_main, back_main));
    worst_keys = std::fmax(worst_keys, rel_rmse(fp32_keys, back_keys));
  }
  ENGINE_CUDA(cudaGraphExecDestroy(exec));
  ENGINE_CUDA(cudaGraphDestroy(graph));
  for (void* p : {pool, check_pool, static_cast<void*>(proj), static_cast<void*>(ws_ptr)}) {
    ENGINE_CUDA(cudaFreeAsync(p, stream));
  }
  ENGINE_CUDA(cudaStreamSynchronize(stream));
  ENGINE_CUDA(cudaStreamDestroy(stream));

  const bool accurate = worst_main < 0.15 && worst_keys < 0.05;
  std::printf("engine_integration: cache %lld bytes for %lld rows (from the engine's allocator); 4 graph replays "
              "of a %lld-token CSA write (%lld rows) equal the eager calls; relative RMSE after BF16 read-back: "
              "main KV %.4f, indexer keys %.4f: %s\n",
              static_cast<long long>(layout.total_bytes), static_cast<long long>(capacity),
              static_cast<long long>(T), static_cast<long long>(n), worst_main, worst_keys,
              accurate ? "ok" : "FAILED");
  return accurate ? 0 : 1;
}
