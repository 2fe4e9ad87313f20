// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test-only launchers that evaluate the numerics/ and formats/*_encoding.hpp functions on the GPU.
#include <cstdint>
#include <vector>

namespace dsv4kv::test {

// Per-input results computed on the device.
struct device_numerics {
  std::vector<std::uint8_t> e2m1, e4m3;    // ours: e2m1_encode, e4m3_encode
  std::vector<std::uint16_t> bf16;         // ours: bf16_encode
  std::vector<std::uint8_t> e2m1_cuda, e4m3_cuda;  // cuda_fp4.h / cuda_fp8.h device conversions (PTX cvt where the arch has it)
  std::vector<std::uint16_t> bf16_cuda;    // __float2bfloat16_rn on the device (cvt.rn.bf16.f32)
  std::vector<float> nvfp4_g, nvfp4_s_enc, fp8_pow2, nvfp4_mul;  // recipe steps with |x| as amax
  std::vector<std::uint8_t> nvfp4_sf;      // nvfp4_block_scale(|x|, S_enc(|x| * 4.5))
  std::vector<float> e2m1_decoded;         // [16]
  std::vector<float> e4m3_decoded;         // [256]
};

// Runs the device numerics kernel over `x` (throws std::runtime_error on a CUDA failure).
device_numerics run_device_numerics(const std::vector<float>& x);

}  // namespace dsv4kv::test
