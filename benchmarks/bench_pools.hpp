// SPDX-License-Identifier: Apache-2.0
#pragma once
// Stored-row pools of the read-path benchmarks (include from .cu files): NVFP4 rows of width 512
// and FP8 rows of width 128 on the device, built from pool_base_rows host-encoded Gaussian rows
// tiled over the pool, with the host reference's BF16 decode of those base rows; and the bit-exact
// check of a dequant output against that reference.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/kernels/dequant.cuh"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"

namespace dsv4kv::bench {

//! Distinct rows of every pool; pool row r holds base row r % pool_base_rows.
inline constexpr std::int64_t pool_base_rows = std::int64_t{1} << 14;

//! Gaussian rows [rows, d] with a per-row scale 2^U(-8, 8).
inline std::vector<float> gaussian_rows(std::int64_t rows, std::int64_t d, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-8.0f, 8.0f);
  std::vector<float> x(static_cast<std::size_t>(rows * d));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float s = std::exp2(exponent(rng));
    for (std::int64_t k = 0; k < d; ++k) x[r * d + k] = normal(rng) * s;
  }
  return x;
}

//! Uploads `base_rows` rows of `row_bytes` (host) to dst (device) and repeats them, by doubling
//! device-to-device copies, until `rows` rows are filled: row r of dst = base row r % base_rows.
//! Synchronizes the device at the end: the copies run on the legacy default stream, which work on
//! a non-blocking stream does not wait for.
inline void upload_tiled(void* dst, const void* base, std::int64_t base_rows, std::int64_t rows, std::int64_t row_bytes) {
  auto* d = static_cast<unsigned char*>(dst);  // [rows, row_bytes]
  const std::int64_t first = std::min(base_rows, rows);
  DSV4KV_BENCH_CUDA(cudaMemcpy(d, base, static_cast<std::size_t>(first * row_bytes), cudaMemcpyHostToDevice));
  for (std::int64_t filled = first; filled < rows; filled *= 2) {
    const std::int64_t n = std::min(filled, rows - filled);
    DSV4KV_BENCH_CUDA(cudaMemcpy(d + filled * row_bytes, d, static_cast<std::size_t>(n * row_bytes),
                                 cudaMemcpyDeviceToDevice));
  }
  DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());
}

//! `rows` NVFP4 rows of width 512 on the device; ref = the BF16 decode of the base rows.
struct nvfp4_pool {
  static constexpr std::int64_t d = 512;
  std::int64_t rows;
  device_array<std::uint8_t> codes, scales;  // [rows, d/2], [rows, d/16]
  device_array<float> g;                     // [rows]
  std::vector<std::uint16_t> ref;            // [pool_base_rows, d]
  explicit nvfp4_pool(std::int64_t pool_rows)
      : rows(pool_rows), codes(pool_rows * d / 2), scales(pool_rows * d / 16), g(pool_rows) {
    std::vector<std::uint8_t> c(pool_base_rows * d / 2), s(pool_base_rows * d / 16);  // [base, d/2], [base, d/16]
    std::vector<float> gg(pool_base_rows);                                            // [base]
    const std::vector<float> x = gaussian_rows(pool_base_rows, d, 1u);                // [base, d]
    const nvfp4_rows host{c.data(), s.data(), gg.data(), pool_base_rows, d};
    DSV4KV_BENCH_OK(ref::encode_nvfp4(make_tensor_view(x.data(), pool_base_rows, d), host));
    ref.resize(pool_base_rows * d);
    DSV4KV_BENCH_OK(ref::decode_nvfp4_bf16(host, make_tensor_view(ref.data(), pool_base_rows, d)));
    upload_tiled(codes.get(), c.data(), pool_base_rows, rows, d / 2);
    upload_tiled(scales.get(), s.data(), pool_base_rows, rows, d / 16);
    upload_tiled(g.get(), gg.data(), pool_base_rows, rows, 4);
  }
  const_nvfp4_rows view() const { return {codes.get(), scales.get(), g.get(), rows, d}; }
  detail::nvfp4_chunk_reader<d> reader() const { return {codes.get(), scales.get(), g.get()}; }
  static double row_bytes() { return static_cast<double>(nvfp4_bytes_per_row(d)); }
};

//! `rows` FP8 rows of width 128 on the device (rows alternate fp32 / pow2 scale modes).
struct fp8_pool {
  static constexpr std::int64_t d = 128;
  std::int64_t rows;
  device_array<std::uint8_t> codes;  // [rows, d]
  device_array<float> scales;        // [rows]
  std::vector<std::uint16_t> ref;    // [pool_base_rows, d]
  explicit fp8_pool(std::int64_t pool_rows) : rows(pool_rows), codes(pool_rows * d), scales(pool_rows) {
    std::vector<std::uint8_t> c(pool_base_rows * d);                    // [base, d]
    std::vector<float> s(pool_base_rows);                               // [base]
    const std::vector<float> x = gaussian_rows(pool_base_rows, d, 2u);  // [base, d]
    for (std::int64_t r = 0; r < pool_base_rows; ++r) {
      ref::encode_fp8_row({x.data() + r * d, d}, r % 2 ? fp8_scale_mode::pow2 : fp8_scale_mode::fp32, c.data() + r * d,
                          s.data() + r);
    }
    ref.resize(pool_base_rows * d);
    DSV4KV_BENCH_OK(ref::decode_fp8_bf16(fp8_rows{c.data(), s.data(), pool_base_rows, d},
                                         make_tensor_view(ref.data(), pool_base_rows, d)));
    upload_tiled(codes.get(), c.data(), pool_base_rows, rows, d);
    upload_tiled(scales.get(), s.data(), pool_base_rows, rows, 4);
  }
  const_fp8_rows view() const { return {codes.get(), scales.get(), rows, d}; }
  detail::fp8_chunk_reader<d> reader() const { return {codes.get(), scales.get()}; }
  static double row_bytes() { return static_cast<double>(fp8_bytes_per_row(d)); }
};

//! Downloads out [rows, d] BF16 bits (device) and checks output row r against the reference of
//! pool row source(r) (`ref` [pool_base_rows, d]); stops the benchmark on the first difference.
template <class SOURCE>
void verify_bf16_rows(const std::string& what, const std::uint16_t* out, std::int64_t rows, std::int64_t d,
                      const std::vector<std::uint16_t>& ref, SOURCE source) {
  std::vector<std::uint16_t> got(static_cast<std::size_t>(rows * d));  // [rows, d]
  DSV4KV_BENCH_CUDA(cudaDeviceSynchronize());
  DSV4KV_BENCH_CUDA(cudaMemcpy(got.data(), out, got.size() * 2, cudaMemcpyDeviceToHost));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t src = source(r);
    const std::uint16_t* want = ref.data() + (src % pool_base_rows) * d;
    if (std::memcmp(got.data() + r * d, want, static_cast<std::size_t>(d * 2)) != 0) {
      fail(what + ": output row " + std::to_string(r) + " (pool row " + std::to_string(src) +
           ") differs from the host reference");
    }
  }
  std::printf("verified %s: %lld rows bit-exact against the host reference\n", what.c_str(), static_cast<long long>(rows));
}

}  // namespace dsv4kv::bench
