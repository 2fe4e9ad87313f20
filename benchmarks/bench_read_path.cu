// SPDX-License-Identifier: Apache-2.0
// Read-path benchmark (SPEC §8, issue 4): dequant of all rows and selective dequant, NVFP4 d = 512
// and FP8 d = 128, each as a fraction of the device-to-device copy bandwidth measured in the same
// run. Every op's output is first checked bit for bit against the host reference (ref::decode_*);
// a wrong result stops the benchmark before any timing.
//
//   dsv4kv_bench_read_path [--reps N] [--no-sweep]
//
// Pools are 1M rows (NVFP4: 292 MiB, FP8: 132 MiB, both > L2); the L2 is flushed (by reading a
// buffer 4x its size) before every timed run. The sweep times other launch configurations of the
// same kernel (kernels/dequant.cuh) and checks that they give the same bytes.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "bench_common.hpp"
#include "bench_pools.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/kernels/dequant.cuh"

using namespace dsv4kv;
using namespace dsv4kv::bench;

namespace {

constexpr std::int64_t pool_rows = std::int64_t{1} << 20;  // rows in each pool (bench_pools.hpp)
constexpr std::int64_t tokens = 64, top_k = 2048;          // selective: 64 tokens x 2048 indices

// Kernel parameters for tokens x k output rows (full dequant: tokens = 1, k = pool_rows, no indices).
template <class READER>
detail::dequant_params<READER, std::uint16_t> params(READER reader, const std::int32_t* indices, std::int64_t t,
                                                      std::int64_t k, std::uint16_t* out) {
  detail::dequant_params<READER, std::uint16_t> p;
  p.in = reader;
  p.pool_rows = pool_rows;
  p.indices = indices;
  p.index_stride = k;
  p.out = out;
  p.row_stride = READER::width;
  p.token_stride = k * READER::width;
  p.rows_per_token = detail::fast_divmod(static_cast<std::uint32_t>(k));
  p.chunks = static_cast<std::uint64_t>(t * k) * READER::chunks_per_row;
  return p;
}

template <int BLOCK, int UNROLL>
struct config {
  static constexpr int block = BLOCK, unroll = UNROLL;
};
using sweep_configs = std::tuple<config<128, 4>, config<256, 2>, config<256, 4>, config<256, 8>, config<512, 4>>;

// Times every sweep configuration of one op; each must reproduce `reference` (the verified API output).
template <bool SELECTED, class READER>
void sweep(const char* op, const detail::dequant_params<READER, std::uint16_t>& p, const std::uint16_t* reference,
           std::size_t out_bytes, double bytes_moved, const copy_baseline& copy, const l2_flusher& flush,
           cudaStream_t stream, int reps) {
  std::apply(
      [&](auto... cfgs) {
        (
            [&](auto cfg) {
              constexpr int BLOCK = decltype(cfg)::block, UNROLL = decltype(cfg)::unroll;
              (void)cfg;
              DSV4KV_BENCH_CUDA(cudaMemset(p.out, 0xFF, out_bytes));
              DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());  // legacy-stream memset before `stream` writes
              auto run = [&] { DSV4KV_BENCH_OK((detail::launch_dequant<READER, std::uint16_t, SELECTED, BLOCK, UNROLL>(p, stream))); };
              const timing t = time_on_stream(stream, run, flush, 3, reps);
              DSV4KV_BENCH_CUDA(cudaStreamSynchronize(stream));
              if (differing_words(p.out, reference, out_bytes) != 0) {
                fail(std::string(op) + ": sweep configuration differs from the verified output");
              }
              const double bw = gbps(bytes_moved, t.median_us);
              std::printf("  sweep %-34s block %4d unroll %d: %9.1f us %8.1f GB/s %6.1f %% copy\n", op, BLOCK, UNROLL,
                          t.median_us, bw, 100.0 * bw / copy.gbps);
            }(cfgs),
            ...);
      },
      sweep_configs{});
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 50;
  bool do_sweep = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    if (std::strcmp(argv[i], "--no-sweep") == 0) do_sweep = false;
  }
  const device_info dev = describe_device();
  cudaStream_t stream;
  DSV4KV_BENCH_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const l2_flusher flush(dev.l2_bytes);

  const copy_baseline copy = measure_copy_bandwidth(std::size_t{512} << 20, stream, flush, reps);
  std::printf("d2d copy of 512 MiB: %.1f us median, %.1f GB/s (read + write)\n", copy.t.median_us, copy.gbps);

  // Random top-k indices (with repeats, any order) into the 1M-row pools.
  std::vector<std::int32_t> idx(static_cast<std::size_t>(tokens * top_k));
  std::mt19937 rng(3u);
  for (auto& i : idx) i = static_cast<std::int32_t>(rng() % pool_rows);
  device_array<std::int32_t> d_idx(idx.size());
  DSV4KV_BENCH_CUDA(cudaMemcpy(d_idx.get(), idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
  const tensor_view<const std::int32_t> idx_view{d_idx.get(), tokens, top_k, top_k};
  auto by_index = [&](std::int64_t r) { return static_cast<std::int64_t>(idx[r]); };
  auto identity = [](std::int64_t r) { return r; };

  std::vector<result_row> rows;
  auto run_format = [&](const auto& pool, const char* name) {
    using pool_t = std::decay_t<decltype(pool)>;
    constexpr std::int64_t d = pool_t::d;
    const double in_row = pool_t::row_bytes(), out_row = 2.0 * d;
    device_array<std::uint16_t> all(pool_rows * d), all_sweep(pool_rows * d);
    device_array<std::uint16_t> sel(tokens * top_k * d), sel_sweep(tokens * top_k * d);
    const tensor_view<std::uint16_t> all_view{all.get(), pool_rows, d, d};
    const batched_rows_view<std::uint16_t> sel_view{sel.get(), tokens, top_k, d, d, top_k * d};
    auto dequant_all = [&] {
      if constexpr (std::is_same_v<pool_t, nvfp4_pool>) {
        DSV4KV_BENCH_OK(dequant_nvfp4(pool.view(), all_view, stream));
      } else {
        DSV4KV_BENCH_OK(dequant_fp8(pool.view(), all_view, stream));
      }
    };
    auto dequant_sel = [&] {
      if constexpr (std::is_same_v<pool_t, nvfp4_pool>) {
        DSV4KV_BENCH_OK(dequant_nvfp4_selected_batched(pool.view(), idx_view, sel_view, stream));
      } else {
        DSV4KV_BENCH_OK(dequant_fp8_selected_batched(pool.view(), idx_view, sel_view, stream));
      }
    };
    // 1. correctness first
    dequant_all();
    verify_bf16_rows(std::string(name) + " dequant", all.get(), pool_rows, d, pool.ref, identity);
    dequant_sel();
    verify_bf16_rows(std::string(name) + " selected", sel.get(), tokens * top_k, d, pool.ref, by_index);
    // 2. timings of the library calls
    const std::string shape = std::to_string(pool_rows >> 20) + "M x " + std::to_string(d);
    const double all_bytes = pool_rows * (in_row + out_row);
    const double sel_bytes = tokens * top_k * (in_row + 4.0 + out_row);  // rows + indices read, rows written
    rows.push_back({std::string(name) + " dequant " + shape + " -> bf16", time_on_stream(stream, dequant_all, flush, 5, reps),
                    all_bytes, 0.85});
    rows.push_back({std::string(name) + " selected 64x2048 of " + shape + " -> bf16",
                    time_on_stream(stream, dequant_sel, flush, 5, reps), sel_bytes, 0.70});
    // 3. other launch configurations of the same kernel
    if (do_sweep) {
      sweep<false>((std::string(name) + " dequant").c_str(), params(pool.reader(), nullptr, 1, pool_rows, all_sweep.get()),
                   all.get(), all.bytes(), all_bytes, copy, flush, stream, reps);
      sweep<true>((std::string(name) + " selected").c_str(), params(pool.reader(), d_idx.get(), tokens, top_k, sel_sweep.get()),
                  sel.get(), sel.bytes(), sel_bytes, copy, flush, stream, reps);
    }
  };
  {
    const nvfp4_pool pool(pool_rows);
    run_format(pool, "nvfp4");
  }
  {
    const fp8_pool pool(pool_rows);
    run_format(pool, "fp8");
  }

  std::printf("\nread path on %s (median of %d runs, L2 flushed before each; bytes moved = minimum traffic)\n",
              dev.name.c_str(), reps);
  print_table(rows, copy);
  DSV4KV_BENCH_CUDA(cudaStreamDestroy(stream));
  return 0;
}
