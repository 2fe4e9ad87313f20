// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shared helpers of the dsv4kv benchmarks (include from .cu files: the L2 flush is a kernel):
// fail-loudly checks, the device description, an L2 flush that leaves only clean lines, per-run
// CUDA-event timing with warm-up and median (and back-to-back timing for launch-bound work), the
// device-to-device copy bandwidth every result is compared with, a device-side byte comparison,
// the result table and its JSON form.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "dsv4kv/status.hpp"

namespace dsv4kv::bench {

inline void cuda_check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "FATAL %s:%d: %s: %s\n", file, line, what, cudaGetErrorString(e));
    std::exit(1);
  }
}
#define DSV4KV_BENCH_CUDA(expr) ::dsv4kv::bench::cuda_check((expr), #expr, __FILE__, __LINE__)

inline void status_check(dsv4kv::status s, const char* what, const char* file, int line) {
  if (s != dsv4kv::status::ok) {
    std::fprintf(stderr, "FATAL %s:%d: %s returned %s\n", file, line, what, dsv4kv::status_string(s));
    std::exit(1);
  }
}
#define DSV4KV_BENCH_OK(expr) ::dsv4kv::bench::status_check((expr), #expr, __FILE__, __LINE__)

//! Stops the benchmark with a message (a wrong result must never produce a timing).
[[noreturn]] inline void fail(const std::string& why) {
  std::fprintf(stderr, "FATAL: %s\n", why.c_str());
  std::exit(1);
}

//! Device 0's name, SM count, L2 size and the CUDA runtime / driver API versions (e.g. 13000);
//! printed once at the top of every benchmark.
struct device_info {
  std::string name;
  int sms = 0;
  std::int64_t l2_bytes = 0;
  std::int64_t memory_bytes = 0;
  int runtime_version = 0;
  int driver_version = 0;
};
inline device_info describe_device(int device = 0) {
  cudaDeviceProp p{};
  DSV4KV_BENCH_CUDA(cudaGetDeviceProperties(&p, device));
  device_info d{p.name, p.multiProcessorCount, p.l2CacheSize, static_cast<std::int64_t>(p.totalGlobalMem)};
  DSV4KV_BENCH_CUDA(cudaRuntimeGetVersion(&d.runtime_version));
  DSV4KV_BENCH_CUDA(cudaDriverGetVersion(&d.driver_version));
  std::printf("device: %s, sm_%d%d, %d SMs, L2 %.1f MiB, %.1f GiB, CUDA runtime %d.%d, driver API %d.%d\n", p.name,
              p.major, p.minor, p.multiProcessorCount, d.l2_bytes / 1048576.0, d.memory_bytes / 1073741824.0,
              d.runtime_version / 1000, d.runtime_version % 1000 / 10, d.driver_version / 1000,
              d.driver_version % 1000 / 10);
  return d;
}

//! Owns `count` elements of device memory; contents undefined until written.
template <class T>
class device_array {
 public:
  explicit device_array(std::size_t count) : count_(count) {
    if (count_ > 0) DSV4KV_BENCH_CUDA(cudaMalloc(&ptr_, count_ * sizeof(T)));
  }
  ~device_array() {
    if (ptr_) cudaFree(ptr_);
  }
  device_array(const device_array&) = delete;
  device_array& operator=(const device_array&) = delete;
  T* get() const { return ptr_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

static __global__ void l2_flush_kernel(const uint4* __restrict__ p, std::size_t n, unsigned* __restrict__ sink) {
  unsigned acc = 0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9E3779B9u) *sink = acc;  // keeps the loads; practically never stores
}

//! Evicts the L2 by reading 4x its size (clean lines only: no write-backs spill into the next
//! timed interval, which a memset-based flush would cause).
class l2_flusher {
 public:
  explicit l2_flusher(std::int64_t l2_bytes) : buf_(static_cast<std::size_t>(std::max<std::int64_t>(l2_bytes, 1 << 20)) / 4), sink_(1) {
    DSV4KV_BENCH_CUDA(cudaMemset(buf_.get(), 0, buf_.bytes()));
  }
  void operator()(cudaStream_t stream) const {
    l2_flush_kernel<<<1024, 256, 0, stream>>>(buf_.get(), buf_.size(), sink_.get());
    DSV4KV_BENCH_CUDA(cudaGetLastError());
  }

 private:
  device_array<uint4> buf_;  // 4 x L2 bytes (16 bytes per element)
  device_array<unsigned> sink_;
};

static __global__ void gpu_hold_kernel(unsigned long long ns) {
  unsigned long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

//! Holds `stream` for `us` microseconds with one tiny spinning kernel. Enqueued before a timed
//! run of many short launches, it lets the host queue all of them before the GPU starts, so the
//! events time the GPU (back-to-back kernels) rather than the host's launch rate.
inline void gpu_hold(cudaStream_t stream, double us) {
  gpu_hold_kernel<<<1, 1, 0, stream>>>(static_cast<unsigned long long>(us * 1000.0));
  DSV4KV_BENCH_CUDA(cudaGetLastError());
}

//! Statistics of the timed runs, in microseconds.
struct timing {
  double median_us = 0, min_us = 0, max_us = 0;
  int reps = 0;
};

//! Statistics of timed runs `us` (microseconds, at least one).
inline timing summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  const std::size_t n = us.size();
  timing t;
  t.reps = static_cast<int>(n);
  t.min_us = us.front();
  t.max_us = us.back();
  t.median_us = n % 2 ? us[n / 2] : 0.5 * (us[n / 2 - 1] + us[n / 2]);
  return t;
}

//! Times `op()` (which enqueues the work on `stream`): `warmup` untimed runs, then `reps` runs,
//! each bracketed by its own pair of events; `before(stream)` is enqueued ahead of every run,
//! outside the timed interval (e.g. an l2_flusher). Synchronizes once at the end.
template <class OP, class BEFORE>
timing time_on_stream(cudaStream_t stream, OP&& op, BEFORE&& before, int warmup = 5, int reps = 50) {
  for (int i = 0; i < warmup; ++i) {
    before(stream);
    op();
  }
  std::vector<cudaEvent_t> start(reps), stop(reps);
  for (int i = 0; i < reps; ++i) {
    DSV4KV_BENCH_CUDA(cudaEventCreate(&start[i]));
    DSV4KV_BENCH_CUDA(cudaEventCreate(&stop[i]));
  }
  for (int i = 0; i < reps; ++i) {
    before(stream);
    DSV4KV_BENCH_CUDA(cudaEventRecord(start[i], stream));
    op();
    DSV4KV_BENCH_CUDA(cudaEventRecord(stop[i], stream));
  }
  DSV4KV_BENCH_CUDA(cudaStreamSynchronize(stream));
  std::vector<double> us(reps);
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    DSV4KV_BENCH_CUDA(cudaEventElapsedTime(&ms, start[i], stop[i]));
    us[i] = ms * 1000.0;
    DSV4KV_BENCH_CUDA(cudaEventDestroy(start[i]));
    DSV4KV_BENCH_CUDA(cudaEventDestroy(stop[i]));
  }
  return summarize(std::move(us));
}

//! Options of time_back_to_back.
struct back_to_back_options {
  int warmup = 3;   // untimed repetitions first
  int reps = 50;    // timed repetitions
  double hold_us = 0;  // > 0: gpu_hold the stream this long before each timed repetition, so the
                       // host queues every call first and the events time the GPU alone
  double* host_us_per_call = nullptr;  // if set: the median host time per call (submission only)
  bool* host_bound = nullptr;  // if set: whether the host took about as long as the hold (reported
                               // there; without it such a run is fatal)
};

//! Times launch-bound work: each repetition runs `before()` (untimed, e.g. a state restore), then
//! enqueues op(0) .. op(calls - 1) back to back between one pair of events and counts elapsed /
//! calls. Without a hold, host launch overhead the GPU cannot hide is part of the figure. Nothing
//! is flushed in between.
template <class OP, class BEFORE>
timing time_back_to_back(cudaStream_t stream, OP&& op, int calls, BEFORE&& before, const back_to_back_options& o) {
  for (int w = 0; w < o.warmup; ++w) {
    before();
    for (int i = 0; i < calls; ++i) op(i);
  }
  cudaEvent_t start, stop;
  DSV4KV_BENCH_CUDA(cudaEventCreate(&start));
  DSV4KV_BENCH_CUDA(cudaEventCreate(&stop));
  std::vector<double> us(static_cast<std::size_t>(o.reps)), host_us(us.size());
  for (int r = 0; r < o.reps; ++r) {
    before();
    if (o.hold_us > 0) gpu_hold(stream, o.hold_us);
    DSV4KV_BENCH_CUDA(cudaEventRecord(start, stream));
    const auto h0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) op(i);
    host_us[static_cast<std::size_t>(r)] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - h0).count();
    DSV4KV_BENCH_CUDA(cudaEventRecord(stop, stream));
    DSV4KV_BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    DSV4KV_BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    us[static_cast<std::size_t>(r)] = ms * 1000.0 / calls;
  }
  DSV4KV_BENCH_CUDA(cudaEventDestroy(start));
  DSV4KV_BENCH_CUDA(cudaEventDestroy(stop));
  const double host = summarize(host_us).median_us;  // per repetition
  const bool bound = o.hold_us > 0 && host > 0.75 * o.hold_us;
  if (bound && o.host_bound == nullptr) fail("the host took about as long as the hold to queue the calls");
  if (o.host_bound != nullptr) *o.host_bound = bound;
  if (o.host_us_per_call != nullptr) *o.host_us_per_call = host / calls;
  return summarize(std::move(us));
}

//! time_back_to_back of op() without a hold or a per-repetition step.
template <class OP>
timing time_back_to_back(cudaStream_t stream, OP&& op, int calls, int warmup = 3, int reps = 50) {
  back_to_back_options o;
  o.warmup = warmup;
  o.reps = reps;
  return time_back_to_back(stream, [&](int) { op(); }, calls, [] {}, o);
}

//! GB/s (10^9 bytes per second) for `bytes` moved in `us` microseconds.
inline double gbps(double bytes, double us) { return bytes / (us * 1e3); }

//! Device-to-device copy of `bytes` (cudaMemcpyAsync) timed like everything else; the returned
//! bandwidth counts bytes read + bytes written (2 * bytes), the yardstick of the memory-bound ops.
struct copy_baseline {
  timing t;
  double bytes_moved = 0;
  double gbps = 0;
};
inline copy_baseline measure_copy_bandwidth(std::size_t bytes, cudaStream_t stream, const l2_flusher& flush,
                                            int reps = 50) {
  device_array<unsigned char> src(bytes), dst(bytes);
  DSV4KV_BENCH_CUDA(cudaMemset(src.get(), 1, bytes));
  copy_baseline c;
  c.t = time_on_stream(
      stream, [&] { DSV4KV_BENCH_CUDA(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, stream)); },
      flush, 5, reps);
  c.bytes_moved = 2.0 * static_cast<double>(bytes);
  c.gbps = gbps(c.bytes_moved, c.t.median_us);
  return c;
}

//! One line of a result table: an op, its timing, its minimum traffic and (optionally) a target
//! as a fraction of the copy bandwidth.
struct result_row {
  std::string op;
  timing t;
  double bytes_moved = 0;  // minimum traffic: bytes read + bytes written
  double target = 0;       // fraction of copy bandwidth; 0: none
  std::string key;         // the operation and size, shared with other implementations (e.g. the torch
                           //   peer); empty: op
  std::string variant;     // how it ran (e.g. "fused", "two-kernel", "graph"); may be empty
};

//! Prints rows as: op, median us, bytes moved, GB/s, % of copy bandwidth, target.
inline void print_table(const std::vector<result_row>& rows, const copy_baseline& copy) {
  std::printf("%-46s %10s %10s %12s %9s %8s %8s\n", "op", "median us", "min us", "bytes moved", "GB/s", "% copy",
              "target");
  std::printf("%-46s %10.1f %10.1f %12.4g %9.1f %8.1f %8s\n", "d2d copy (cudaMemcpyAsync, read + write)",
              copy.t.median_us, copy.t.min_us, copy.bytes_moved, copy.gbps, 100.0, "-");
  for (const result_row& r : rows) {
    const double bw = gbps(r.bytes_moved, r.t.median_us);
    const double pct = 100.0 * bw / copy.gbps;
    char target[32] = "-";
    if (r.target > 0) std::snprintf(target, sizeof target, ">=%.0f%% %s", 100.0 * r.target, pct >= 100.0 * r.target ? "ok" : "LOW");
    std::printf("%-46s %10.1f %10.1f %12.4g %9.1f %8.1f %8s\n", r.op.c_str(), r.t.median_us, r.t.min_us, r.bytes_moved,
                bw, pct, target);
  }
}

static __global__ void count_differences(const uint4* a, const uint4* b, std::size_t n, unsigned long long* count) {
  unsigned long long c = 0;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const uint4 x = a[i], y = b[i];
    c += (x.x != y.x) + (x.y != y.y) + (x.z != y.z) + (x.w != y.w);
  }
  if (c) atomicAdd(count, c);
}

//! 4-byte words that differ between device arrays `a` and `b` of `bytes` bytes (a multiple of 16,
//! both 16-byte aligned). Synchronizes.
inline unsigned long long differing_words(const void* a, const void* b, std::size_t bytes) {
  device_array<unsigned long long> count(1);
  DSV4KV_BENCH_CUDA(cudaMemset(count.get(), 0, 8));
  count_differences<<<1024, 256>>>(static_cast<const uint4*>(a), static_cast<const uint4*>(b), bytes / 16, count.get());
  DSV4KV_BENCH_CUDA(cudaGetLastError());
  unsigned long long c = 0;
  DSV4KV_BENCH_CUDA(cudaMemcpy(&c, count.get(), 8, cudaMemcpyDeviceToHost));
  return c;
}

//! `s` as a JSON string literal.
inline std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o + "\"";
}

//! Writes the device, the copy baseline and every row to `path` as JSON (for tooling; see
//! benchmarks/run_peers.sh): {"device": {...}, "copy": {...}, "results": [{"op", "key", "variant",
//! "median_us", "min_us", "max_us", "reps", "bytes", "gbps", "pct_copy", "target"}, ...]}.
inline void write_json(const std::string& path, const std::string& benchmark, const device_info& dev,
                       const copy_baseline& copy, const std::vector<result_row>& rows) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) fail("cannot write " + path);
  char date[32] = "";
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::fprintf(f, "{\n  \"benchmark\": %s,\n  \"date\": \"%s\",\n", json_string(benchmark).c_str(), date);
  std::fprintf(f,
               "  \"device\": {\"name\": %s, \"sms\": %d, \"l2_bytes\": %lld, \"memory_bytes\": %lld, "
               "\"cuda_runtime\": %d, \"cuda_driver_api\": %d},\n",
               json_string(dev.name).c_str(), dev.sms, static_cast<long long>(dev.l2_bytes),
               static_cast<long long>(dev.memory_bytes), dev.runtime_version, dev.driver_version);
  std::fprintf(f, "  \"copy\": {\"median_us\": %.3f, \"bytes\": %.0f, \"gbps\": %.2f},\n  \"results\": [",
               copy.t.median_us, copy.bytes_moved, copy.gbps);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const result_row& r = rows[i];
    const double bw = gbps(r.bytes_moved, r.t.median_us);
    std::fprintf(f,
                 "%s\n    {\"op\": %s, \"key\": %s, \"variant\": %s, \"median_us\": %.3f, \"min_us\": %.3f, "
                 "\"max_us\": %.3f, \"reps\": %d, \"bytes\": %.0f, \"gbps\": %.2f, \"pct_copy\": %.2f, "
                 "\"target\": %.2f}",
                 i ? "," : "", json_string(r.op).c_str(), json_string(r.key.empty() ? r.op : r.key).c_str(),
                 json_string(r.variant).c_str(), r.t.median_us, r.t.min_us, r.t.max_us, r.t.reps, r.bytes_moved, bw,
                 100.0 * bw / copy.gbps, r.target);
  }
  std::fprintf(f, "\n  ]\n}\n");
  if (std::fclose(f) != 0) fail("cannot write " + path);
  std::printf("wrote %s\n", path.c_str());
}

}  // namespace dsv4kv::bench
