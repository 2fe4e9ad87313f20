// SPDX-License-Identifier: Apache-2.0
// Streaming append (issue 7) on the GPU, for CSA-512 NVFP4, HCA-512 NVFP4 and the CSA-128 indexer
// (Hadamard, FP8), FP32 projections:
//   1. decode steps: B = 1, 32, 256 sequences, one token each, positions aligned so that every 4th
//      step finishes a CSA block for every sequence; 128 consecutive steps (one HCA period: the
//      64th finishes an HCA block for every sequence), each a separate append call (metadata of
//      each step in device memory) declaring max_segment_tokens = 1 as a decode step does, timed
//      per call (launches back to back), per call with programmatic dependent launch
//      (append_params::pdl), per CUDA-graph replay (one graph per step, captured once), and per
//      call with PDL without the declaration (the prefix-sum mapping). Target: <= 5 us per step
//      at B = 256.
//   2. prefill of 32K tokens: one-shot append vs 8 chunks of 4K (same bytes, checked), with the
//      L2 flushed before each run; target: chunked within 10 % of one-shot. The chunks also with PDL.
//      Beside it, the floor of chunking: a kernel that only reads the same projections, in one
//      launch and in 8 launches of 4K tokens (with and without PDL).
// Every timed configuration is verified first: per-call and graph runs give the same pool bytes
// and raise no error flag; chunked and one-shot prefill give the same bytes.
// Usage: dsv4kv_bench_append [--json PATH] [--config I] [--batch B] [--verify-only]
//   (--config / --batch: a subset, --batch 0: prefill only; --verify-only: the verified launches
//   alone, no timing, e.g. under Nsight Compute, which slows the host past the hold)
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "bench_common.hpp"
#include "dsv4kv/append.hpp"
#include "dsv4kv/kernels/grid_dependency.cuh"
#include "dsv4kv/rope_table.hpp"

using namespace dsv4kv;
using namespace dsv4kv::bench;

namespace {

struct config {
  const char* name;
  int ratio;
  std::int64_t d;
  bool nvfp4;
  bool hadamard;
};
const config configs[] = {
    {"CSA-512 NVFP4", 4, 512, true, false},
    {"HCA-512 NVFP4", 128, 512, true, false},
    {"CSA-128 FP8 (Hadamard)", 4, 128, false, true},
};

// Fills a device float array with a deterministic pattern of realistic scale (in [-2, 2)).
__global__ void fill_pattern(float* p, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = static_cast<float>(h & 0xFFFFu) * (4.0f / 65536.0f) - 2.0f;
  }
}
void fill(float* p, std::size_t n, std::uint32_t seed) {
  fill_pattern<<<512, 256>>>(p, n, seed);
  DSV4KV_BENCH_CUDA(cudaGetLastError());
}

// The model inputs shared by every call of a configuration.
struct model {
  const config& cfg;
  std::int64_t width;
  device_array<float> bias, norm;
  explicit model(const config& c)
      : cfg(c), width(compress_input_width(c.ratio, c.d)), bias(static_cast<std::size_t>(c.ratio * width)),
        norm(static_cast<std::size_t>(c.d)) {
    fill(bias.get(), bias.size(), 1);
    fill(norm.get(), norm.size(), 2);
  }
};

// A pool of `rows` rows in the configuration's format.
struct pool {
  device_array<std::uint8_t> codes, scales, global;
  std::int64_t rows, d;
  bool nvfp4;
  pool(const config& c, std::int64_t r)
      : codes(static_cast<std::size_t>(r * (c.nvfp4 ? c.d / 2 : c.d))),
        scales(static_cast<std::size_t>(r * (c.nvfp4 ? c.d / 16 : 4))),
        global(static_cast<std::size_t>(c.nvfp4 ? r * 4 : 0)), rows(r), d(c.d), nvfp4(c.nvfp4) {}
  std::vector<std::uint8_t> download() const {
    std::vector<std::uint8_t> h(codes.bytes() + scales.bytes() + global.bytes());
    DSV4KV_BENCH_CUDA(cudaMemcpy(h.data(), codes.get(), codes.bytes(), cudaMemcpyDeviceToHost));
    DSV4KV_BENCH_CUDA(cudaMemcpy(h.data() + codes.bytes(), scales.get(), scales.bytes(), cudaMemcpyDeviceToHost));
    if (global.bytes()) {
      DSV4KV_BENCH_CUDA(
          cudaMemcpy(h.data() + codes.bytes() + scales.bytes(), global.get(), global.bytes(), cudaMemcpyDeviceToHost));
    }
    return h;
  }
  void clear() const {
    DSV4KV_BENCH_CUDA(cudaMemset(codes.get(), 0, codes.bytes()));
    DSV4KV_BENCH_CUDA(cudaMemset(scales.get(), 0, scales.bytes()));
    if (global.bytes()) DSV4KV_BENCH_CUDA(cudaMemset(global.get(), 0, global.bytes()));
    // The benchmark's stream is non-blocking: no implicit order with these legacy-stream memsets.
    DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());
  }
};

// One append call of the configuration.
status run_append(const model& m, const append_params<float, float>& p, const pool& out, cudaStream_t stream) {
  return m.cfg.nvfp4 ? append_nvfp4(p, {out.codes.get(), out.scales.get(), reinterpret_cast<float*>(out.global.get()),
                                        out.rows, out.d},
                                    stream)
                     : append_fp8(p, fp8_scale_mode::fp32,
                                  {out.codes.get(), reinterpret_cast<float*>(out.scales.get()), out.rows, out.d}, stream);
}

append_params<float, float> base_params(const model& m, rope_table_view rope) {
  append_params<float, float> p;
  p.ratio = m.cfg.ratio;
  p.position_bias = m.bias.get();
  p.norm_weight = m.norm.get();
  p.rope = rope;
  p.hadamard = m.cfg.hadamard;
  return p;
}

std::uint32_t read_flag(const device_array<std::uint32_t>& f) {
  std::uint32_t v = 0;
  DSV4KV_BENCH_CUDA(cudaMemcpy(&v, f.get(), 4, cudaMemcpyDeviceToHost));
  return v;
}

__global__ void empty_kernel() {}

// Reads kv[0, n) and gate[0, n) (float4) once, as the append kernel reads its projections, and
// does nothing else: the floor of a launch that must read those bytes. Waits on the kernel before
// it and lets the next one launch early, as append_kernel does under PDL.
__global__ void __launch_bounds__(256) read_floor_kernel(const float4* kv, const float4* gate, std::int64_t n,
                                                          float* sink) {
  dsv4kv::detail::grid_dependents_launch();
  dsv4kv::detail::grid_dependency_wait();
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  float acc = 0.0f;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float4 a = __ldcs(kv + i), b = __ldcs(gate + i);
    acc += a.x + a.y + a.z + a.w + b.x + b.y + b.z + b.w;
  }
  if (acc == -1.0f) sink[0] = acc;  // keeps the loads (should a thread's sum be -1, the write is harmless)
}

// Launches kernel<<<grid, block>>>(args...) on `stream`, with programmatic dependent launch when `pdl`.
template <class... Params, class... Args>
void launch_maybe_pdl(void (*kernel)(Params...), unsigned grid, unsigned block, cudaStream_t stream, bool pdl,
                      Args... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(grid);
  config.blockDim = dim3(block);
  config.stream = stream;
  cudaLaunchAttribute attr = {};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attr;
  config.numAttrs = pdl ? 1 : 0;
  DSV4KV_BENCH_CUDA(cudaLaunchKernelEx(&config, kernel, args...));
}

// Decode: `steps` consecutive one-token steps of B sequences starting at position p0 (p0 % 4 == 0).
bool verify_only = false;  // --verify-only: run the verified launches, time nothing

void bench_decode(const model& m, rope_table_view rope, int batch, std::vector<result_row>& rows, cudaStream_t stream) {
  constexpr int steps = 128;
  // p0 % 4 == 0: steps 4k+3 finish CSA blocks; p0 % 128 == 64: step 63 finishes HCA blocks (the
  // only one in the 128 steps: the average is over one HCA period).
  constexpr std::int64_t p0 = 960;
  const config& c = m.cfg;
  const std::int64_t w = m.width;
  device_array<float> kv(static_cast<std::size_t>(steps) * batch * w), gate(kv.size());
  fill(kv.get(), kv.size(), 11);
  fill(gate.get(), gate.size(), 12);
  // Metadata of every step: cu [B+1] | positions [B] | state slots [B] | mapping [B].
  const std::int64_t per_step = 4 * batch + 1;
  std::vector<std::int32_t> meta(static_cast<std::size_t>(steps * per_step));
  std::int64_t pool_rows = 0;
  for (int k = 0; k < steps; ++k) {
    std::int32_t* md = meta.data() + k * per_step;
    for (int b = 0; b <= batch; ++b) md[b] = b;
    for (int b = 0; b < batch; ++b) {
      const std::int64_t pos = p0 + k;
      md[batch + 1 + b] = static_cast<std::int32_t>(pos);
      md[2 * batch + 1 + b] = b;
      md[3 * batch + 1 + b] = (pos + 1) % c.ratio == 0 ? static_cast<std::int32_t>(pool_rows++) : -1;
    }
  }
  device_array<std::int32_t> dmeta(meta.size());
  DSV4KV_BENCH_CUDA(cudaMemcpy(dmeta.get(), meta.data(), meta.size() * 4, cudaMemcpyHostToDevice));
  const pool out(c, pool_rows > 0 ? pool_rows : 1);
  // States: valid headers at p0 (the rings' contents are arbitrary values, as after some prefix).
  const std::int64_t slot_bytes = append_state_bytes(c.ratio, c.d);
  device_array<std::uint8_t> state(static_cast<std::size_t>(batch * slot_bytes)), saved(state.size());
  fill(reinterpret_cast<float*>(state.get()), state.size() / 4, 13);
  for (int b = 0; b < batch; ++b) {
    const append_state_header h{p0, append_state_tag(c.ratio, c.d), 0u};
    DSV4KV_BENCH_CUDA(cudaMemcpy(state.get() + b * slot_bytes, &h, sizeof h, cudaMemcpyHostToDevice));
  }
  DSV4KV_BENCH_CUDA(cudaMemcpy(saved.get(), state.get(), state.bytes(), cudaMemcpyDeviceToDevice));
  device_array<std::uint32_t> flags(1);
  DSV4KV_BENCH_CUDA(cudaMemset(flags.get(), 0, 4));

  const auto params_of_step = [&](int k, bool pdl = false, bool declared = true) {
    append_params<float, float> p = base_params(m, rope);
    p.pdl = pdl;
    p.max_segment_tokens = declared ? 1 : 0;  // a decode step: one token per sequence
    p.kv = {kv.get() + static_cast<std::int64_t>(k) * batch * w, batch, w, w};
    p.gate = {gate.get() + static_cast<std::int64_t>(k) * batch * w, batch, w, w};
    const std::int32_t* md = dmeta.get() + k * per_step;
    p.segments = batch;
    p.cu_seqlens = md;
    p.positions = md + batch + 1;
    p.state_slots = md + 2 * batch + 1;
    p.slot_mapping = md + 3 * batch + 1;
    p.state = {state.get(), batch};
    p.error_flags = flags.get();
    return p;
  };
  const auto restore = [&] {
    DSV4KV_BENCH_CUDA(cudaMemcpyAsync(state.get(), saved.get(), state.bytes(), cudaMemcpyDeviceToDevice, stream));
  };
  // Graphs: one per step, captured once.
  std::vector<cudaGraphExec_t> graphs(steps);
  for (int k = 0; k < steps; ++k) {
    cudaGraph_t g = nullptr;
    DSV4KV_BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    const status s = run_append(m, params_of_step(k), out, stream);
    DSV4KV_BENCH_CUDA(cudaStreamEndCapture(stream, &g));
    DSV4KV_BENCH_OK(s);
    DSV4KV_BENCH_CUDA(cudaGraphInstantiate(&graphs[k], g, 0));
    DSV4KV_BENCH_CUDA(cudaGraphDestroy(g));
  }
  // The ways a step runs: a direct call, a direct call with PDL, a graph replay, a call with PDL
  // that does not declare the segments' length.
  const auto call_step = [&](int k) { DSV4KV_BENCH_OK(run_append(m, params_of_step(k), out, stream)); };
  const auto pdl_step = [&](int k) { DSV4KV_BENCH_OK(run_append(m, params_of_step(k, true), out, stream)); };
  const auto graph_step = [&](int k) { DSV4KV_BENCH_CUDA(cudaGraphLaunch(graphs[k], stream)); };
  const auto scan_step = [&](int k) { DSV4KV_BENCH_OK(run_append(m, params_of_step(k, true, false), out, stream)); };
  // Verify: they give the same bytes from the same states, no error raised.
  const auto bytes_after = [&](auto&& step) {
    out.clear();
    restore();
    for (int k = 0; k < steps; ++k) step(k);
    DSV4KV_BENCH_CUDA(cudaStreamSynchronize(stream));
    return out.download();
  };
  const std::vector<std::uint8_t> by_call = bytes_after(call_step);
  if (bytes_after(graph_step) != by_call) fail(std::string(c.name) + " decode: graph replays differ from calls");
  if (bytes_after(pdl_step) != by_call) fail(std::string(c.name) + " decode: PDL calls differ from calls");
  if (bytes_after(scan_step) != by_call) fail(std::string(c.name) + " decode: undeclared calls differ from calls");
  if (read_flag(flags) != 0u) fail(std::string(c.name) + " decode: error flag raised");
  if (verify_only) {
    for (cudaGraphExec_t g : graphs) DSV4KV_BENCH_CUDA(cudaGraphExecDestroy(g));
    return;
  }

  // Time: per rep, restore the states (untimed), hold the stream while the host queues the 64
  // steps (without the hold the events time the host's launch rate, ~5 us per call), then the
  // steps run back to back on the GPU. Also the host's own time per call (submission only).
  double host_us_per_call = 0;
  back_to_back_options timed;
  timed.reps = 30;
  timed.hold_us = 2000.0;
  timed.host_us_per_call = &host_us_per_call;
  const auto time_steps = [&](auto&& step) { return time_back_to_back(stream, step, steps, restore, timed); };
  // Minimum traffic per step (average over the steps). Every sequence reads its new token (all
  // c*d channels of kv and gate) and, unless the token finishes its block, keeps all of it in the
  // state. A finishing sequence reads the state tokens its row uses, d channels each (CSA: the
  // previous block's first half and the block's earlier tokens' second half, 2m - 1 tokens; HCA:
  // the block's m - 1 earlier tokens), keeps the finishing token's first half (CSA: the next row
  // reads it) and writes the quantized row. Reported, not a bandwidth target (decode is latency-bound).
  const bool csa = c.ratio == 4;
  const double token_bytes = 2.0 * w * 4.0;      // kv + gate, all c*d channels, FP32
  const double channel_bytes = 2.0 * c.d * 4.0;  // kv + gate, d channels
  const double row_bytes = c.nvfp4 ? c.d / 2 + c.d / 16 + 4 : c.d + 4;
  const double rows_per_step = static_cast<double>(pool_rows) / steps;
  const double finishing_bytes = (csa ? 2.0 * c.ratio : c.ratio - 1.0) * channel_bytes + row_bytes;
  const double bytes = batch * token_bytes + (batch - rows_per_step) * token_bytes + rows_per_step * finishing_bytes;
  const std::string op = std::string("decode ") + c.name + " B=" + std::to_string(batch);
  rows.push_back({op + " (per call)", time_steps(call_step), bytes, 0, op, "call"});
  std::printf("%s: host submission %.2f us per call (validation + launch)\n", op.c_str(), host_us_per_call);
  // PDL: the host may block while launches wait on the GPU, so a host-bound figure is reported, not fatal.
  const auto time_pdl = [&](auto&& step, const std::string& label, const std::string& key) {
    back_to_back_options pdl_timed = timed;
    bool host_bound = false;
    pdl_timed.host_bound = &host_bound;
    const timing t = time_back_to_back(stream, step, steps, restore, pdl_timed);
    std::printf("%s %s: host submission %.2f us per call%s\n", op.c_str(), label.c_str(), host_us_per_call,
                host_bound ? " (host-bound: the host took about as long as the hold)" : "");
    rows.push_back({op + " (per call, " + label + (host_bound ? ", host-bound)" : ")"), t, bytes, 0, op + " " + key, "call"});
  };
  time_pdl(pdl_step, "PDL", "PDL");
  rows.push_back({op + " (per graph replay)", time_steps(graph_step), bytes, 0, op, "graph"});
  time_pdl(scan_step, "PDL, length not declared", "PDL undeclared");
  for (cudaGraphExec_t g : graphs) DSV4KV_BENCH_CUDA(cudaGraphExecDestroy(g));
  if (read_flag(flags) != 0u) fail(std::string(c.name) + " decode: error flag raised while timing");
}

// Prefill of `tokens` tokens: one-shot append vs chunks of `chunk` tokens.
void bench_prefill(const model& m, rope_table_view rope, const l2_flusher& flush, std::vector<result_row>& rows,
                   cudaStream_t stream) {
  constexpr std::int64_t tokens = 32768, chunk = 4096, chunks = tokens / chunk;
  const config& c = m.cfg;
  const std::int64_t w = m.width, n = tokens / c.ratio;
  device_array<float> kv(static_cast<std::size_t>(tokens * w)), gate(kv.size());
  fill(kv.get(), kv.size(), 21);
  fill(gate.get(), gate.size(), 22);
  // Metadata: one-shot {cu 0, T | pos 0 | slot 0}, chunk k {cu 0, 4096 | pos 4096k | slot 0};
  // the mapping of every token [T]: block i -> pool row i.
  std::vector<std::int32_t> meta(static_cast<std::size_t>(4 * (chunks + 1) + tokens), -1);
  for (std::int64_t k = 0; k <= chunks; ++k) {
    std::int32_t* md = meta.data() + 4 * k;
    md[0] = 0;
    md[1] = static_cast<std::int32_t>(k == chunks ? tokens : chunk);
    md[2] = static_cast<std::int32_t>(k == chunks ? 0 : k * chunk);
    md[3] = 0;
  }
  std::int32_t* mapping = meta.data() + 4 * (chunks + 1);
  for (std::int64_t t = 0; t < tokens; ++t) mapping[t] = (t + 1) % c.ratio == 0 ? static_cast<std::int32_t>(t / c.ratio) : -1;
  device_array<std::int32_t> dmeta(meta.size());
  DSV4KV_BENCH_CUDA(cudaMemcpy(dmeta.get(), meta.data(), meta.size() * 4, cudaMemcpyHostToDevice));
  const std::int32_t* dmapping = dmeta.get() + 4 * (chunks + 1);
  device_array<std::uint8_t> state(static_cast<std::size_t>(append_state_bytes(c.ratio, c.d)));
  device_array<std::uint32_t> flags(1);
  DSV4KV_BENCH_CUDA(cudaMemset(flags.get(), 0, 4));
  const pool out(c, n);
  const auto call = [&](std::int64_t k, bool pdl) {  // k == chunks: the one-shot call
    append_params<float, float> p = base_params(m, rope);
    p.pdl = pdl;
    const std::int64_t first = k == chunks ? 0 : k * chunk, len = k == chunks ? tokens : chunk;
    p.kv = {kv.get() + first * w, len, w, w};
    p.gate = {gate.get() + first * w, len, w, w};
    p.segments = 1;
    p.cu_seqlens = dmeta.get() + 4 * k;
    p.positions = dmeta.get() + 4 * k + 2;
    p.state_slots = dmeta.get() + 4 * k + 3;
    p.slot_mapping = dmapping + first;
    p.state = {state.get(), 1};
    p.error_flags = flags.get();
    DSV4KV_BENCH_OK(run_append(m, p, out, stream));
  };
  const auto one_shot = [&] { call(chunks, false); };
  const auto chunked = [&](bool pdl) {
    for (std::int64_t k = 0; k < chunks; ++k) call(k, pdl);
  };
  out.clear();
  one_shot();
  DSV4KV_BENCH_CUDA(cudaStreamSynchronize(stream));
  const std::vector<std::uint8_t> want = out.download();
  for (const bool pdl : {false, true}) {
    out.clear();
    chunked(pdl);
    DSV4KV_BENCH_CUDA(cudaStreamSynchronize(stream));
    if (out.download() != want) fail(std::string(c.name) + " prefill: chunked bytes differ from one-shot" + (pdl ? " (PDL)" : ""));
  }
  if (read_flag(flags) != 0u) fail(std::string(c.name) + " prefill: error flag raised");
  if (verify_only) return;
  const double bytes = 2.0 * tokens * w * 4.0 + static_cast<double>(out.codes.bytes() + out.scales.bytes() + out.global.bytes());
  const std::string op = std::string("prefill 32K ") + c.name;
  rows.push_back({op + " one-shot append", time_on_stream(stream, one_shot, flush), bytes, 0.85, op, "one-shot"});
  rows.push_back({op + " 8 x 4K chunks", time_on_stream(stream, [&] { chunked(false); }, flush), bytes, 0, op, "chunked"});
  rows.push_back({op + " 8 x 4K chunks, PDL", time_on_stream(stream, [&] { chunked(true); }, flush), bytes, 0, op, "chunked"});

  // The floor of chunking itself: a kernel that only reads the same projections (all of them in one
  // launch, or 4K tokens per launch, 8 launches back to back), 8 CTAs of 256 threads per SM. What
  // the chunked / one-shot ratio of this read is, no append kernel can beat.
  int sms = 0, device = 0;
  DSV4KV_BENCH_CUDA(cudaGetDevice(&device));
  DSV4KV_BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  device_array<float> sink(1);
  const auto read = [&](std::int64_t first, std::int64_t len, bool pdl) {  // tokens [first, first + len)
    const auto* kv4 = reinterpret_cast<const float4*>(kv.get() + first * w);
    const auto* gate4 = reinterpret_cast<const float4*>(gate.get() + first * w);
    launch_maybe_pdl(read_floor_kernel, static_cast<unsigned>(8 * sms), 256, stream, pdl, kv4, gate4, len * w / 4, sink.get());
  };
  const double read_bytes = 2.0 * tokens * w * 4.0;
  const std::string floor_op = std::string("read only (floor) 32K ") + c.name;
  rows.push_back({floor_op + " one launch", time_on_stream(stream, [&] { read(0, tokens, false); }, flush), read_bytes, 0,
                  floor_op, "one-shot"});
  for (const bool pdl : {false, true}) {
    const auto reads = [&] {
      for (std::int64_t k = 0; k < chunks; ++k) read(k * chunk, chunk, pdl);
    };
    rows.push_back({floor_op + (pdl ? " 8 x 4K launches, PDL" : " 8 x 4K launches"), time_on_stream(stream, reads, flush),
                    read_bytes, 0, floor_op, "chunked"});
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string json;
  int only_config = -1, only_batch = -1;  // --config I (index into configs), --batch B: a profiling subset
  bool decode_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json = argv[++i];
    } else if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      only_config = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
      only_batch = std::atoi(argv[++i]);
      decode_only = only_batch != 0;  // --batch 0: the prefill comparison only
    } else if (std::strcmp(argv[i], "--verify-only") == 0) {
      verify_only = true;
    } else {
      std::fprintf(stderr, "usage: %s [--json PATH] [--config 0|1|2] [--batch B (decode only; 0: prefill only)] [--verify-only]\n", argv[0]);
      return 2;
    }
  }
  const device_info dev = describe_device();
  cudaStream_t stream = nullptr;
  DSV4KV_BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const l2_flusher flush(dev.l2_bytes);
  const copy_baseline copy = measure_copy_bandwidth(std::size_t{512} << 20, stream, flush);
  rope_table host_table;
  DSV4KV_BENCH_OK(make_yarn_rope_table(65536, 64, host_table));
  device_array<float> cos(host_table.cos.size()), sin(host_table.sin.size());
  DSV4KV_BENCH_CUDA(cudaMemcpy(cos.get(), host_table.cos.data(), cos.bytes(), cudaMemcpyHostToDevice));
  DSV4KV_BENCH_CUDA(cudaMemcpy(sin.get(), host_table.sin.data(), sin.bytes(), cudaMemcpyHostToDevice));
  const rope_table_view rope{cos.get(), sin.get(), host_table.max_pos, host_table.rope_dim};

  std::vector<result_row> rows;
  if (!verify_only) {  // The floor of a decode step: 64 empty kernels back to back, queued behind a hold like the steps.
    back_to_back_options timed;
    timed.reps = 30;
    timed.hold_us = 1000.0;
    const timing t = time_back_to_back(stream, [&](int) { empty_kernel<<<1, 32, 0, stream>>>(); }, 64, [] {}, timed);
    rows.push_back({"empty kernel, back to back (launch floor)", t, 0, 0, "floor", "floor"});
    // The same, each launch with PDL (the floor of the PDL rows).
    const auto empty_pdl = [&](int) { launch_maybe_pdl(empty_kernel, 1, 32, stream, true); };
    rows.push_back({"empty kernel, back to back, PDL", time_back_to_back(stream, empty_pdl, 64, [] {}, timed), 0, 0,
                    "floor PDL", "floor"});
  }
  for (int ci = 0; ci < static_cast<int>(sizeof configs / sizeof configs[0]); ++ci) {
    if (only_config >= 0 && ci != only_config) continue;
    const model m(configs[ci]);
    for (const int batch : {1, 32, 256}) {
      if (only_batch < 0 || batch == only_batch) bench_decode(m, rope, batch, rows, stream);
    }
    if (!decode_only) bench_prefill(m, rope, flush, rows, stream);
  }
  print_table(rows, copy);
  // The two issue-7 ratios (and the chunking floor's).
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].variant != "one-shot") continue;
    for (std::size_t j = i + 1; j < rows.size() && rows[j].variant == "chunked"; ++j) {
      const bool floor = rows[j].op.rfind("read only", 0) == 0;
      std::printf("%s: chunked / one-shot = %.3f (%s)\n", rows[j].op.c_str(), rows[j].t.median_us / rows[i].t.median_us,
                  floor ? "the floor of chunking: reads only" : "target <= 1.10");
    }
  }
  for (const result_row& r : rows) {
    if (r.op.find("B=256") != std::string::npos) {
      std::printf("%s: %.2f us per step (target <= 5 us)\n", r.op.c_str(), r.t.median_us);
    }
  }
  if (!json.empty()) write_json(json, "dsv4kv_bench_append", dev, copy, rows);
  DSV4KV_BENCH_CUDA(cudaStreamDestroy(stream));
  return 0;
}
