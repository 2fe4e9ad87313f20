// SPDX-License-Identifier: Apache-2.0
// Test-only kernel: exhaustive device comparison of the hardware pair conversions with the
// portable recipes (see tests/host/test_convert_hw.cpp for the host half of the argument).
#include <cstdint>

#include "convert_hw_kernels.hpp"
#include "device_buffer.hpp"
#include "dsv4kv/numerics/convert_hw.cuh"
#include "dsv4kv/numerics/e2m1.hpp"
#include "dsv4kv/numerics/e4m3.hpp"
#include "dsv4kv/numerics/float_bits.hpp"

namespace dsv4kv::test {
namespace {

constexpr int max_examples = 8;

struct sweep_out {
  unsigned long long* mismatches;  // [4] e2m1, e4m3, e2m1 with a NaN input, e4m3 with a NaN input
  std::uint32_t* examples;         // [2, max_examples]
  int* flags;                      // [2] hardware paths compiled in this device pass
};

__global__ void convert_hw_sweep_kernel(sweep_out out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    out.flags[0] = DSV4KV_HW_E2M1X2;
    out.flags[1] = DSV4KV_HW_E4M3X2;
  }
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (1ull << 32);
       i += stride) {
    const std::uint32_t u = static_cast<std::uint32_t>(i);
    const float lo = bits_to_float(u), hi = bits_to_float(u * 0x9E3779B1u);
    const bool e2m1_bad = e2m1x2_encode(lo, hi) != e2m1_pack(e2m1_encode(lo), e2m1_encode(hi));
    const bool e4m3_bad =
        e4m3x2_encode(lo, hi) != static_cast<std::uint16_t>(e4m3_encode(lo) | (e4m3_encode(hi) << 8));
    const bool has_nan = is_nan_bits(lo) || is_nan_bits(hi);
    if (e2m1_bad) {
      const unsigned long long k = atomicAdd(&out.mismatches[0], 1ull);
      if (k < max_examples) out.examples[k] = u;
      if (has_nan) atomicAdd(&out.mismatches[2], 1ull);
    }
    if (e4m3_bad) {
      const unsigned long long k = atomicAdd(&out.mismatches[1], 1ull);
      if (k < max_examples) out.examples[max_examples + k] = u;
      if (has_nan) atomicAdd(&out.mismatches[3], 1ull);
    }
  }
}

}  // namespace

convert_hw_sweep run_convert_hw_sweep() {
  device_buffer<unsigned long long> mismatches(4);
  device_buffer<std::uint32_t> examples(2 * max_examples);
  device_buffer<int> flags(2);
  mismatches.fill_bytes(0);
  examples.fill_bytes(0);
  flags.fill_bytes(0);
  convert_hw_sweep_kernel<<<4096, 256>>>(sweep_out{mismatches.get(), examples.get(), flags.get()});
  DSV4KV_TEST_CUDA(cudaGetLastError());
  DSV4KV_TEST_CUDA(cudaDeviceSynchronize());
  const auto m = mismatches.download();
  const auto e = examples.download();
  const auto f = flags.download();
  convert_hw_sweep r;
  r.hw_e2m1x2 = f[0] != 0;
  r.hw_e4m3x2 = f[1] != 0;
  r.e2m1_mismatches = m[0];
  r.e4m3_mismatches = m[1];
  r.e2m1_nan_mismatches = m[2];
  r.e4m3_nan_mismatches = m[3];
  for (std::uint64_t k = 0; k < m[0] && k < max_examples; ++k) r.e2m1_examples.push_back(e[k]);
  for (std::uint64_t k = 0; k < m[1] && k < max_examples; ++k) r.e4m3_examples.push_back(e[max_examples + k]);
  return r;
}

}  // namespace dsv4kv::test
