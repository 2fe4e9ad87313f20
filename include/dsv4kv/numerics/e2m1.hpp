// SPDX-License-Identifier: Apache-2.0
#pragma once
//! FP4 E2M1 (the element type of NVFP4): encode with round-to-nearest-even and saturation, decode.
//!
//! The grid is {0, 0.5, 1, 1.5, 2, 3, 4, 6} with a sign bit (bit 3). Bit-identical to
//! `__nv_cvt_float_to_fp4(x, __NV_E2M1, cudaRoundNearest)` and to `cvt.rn.satfinite.e2m1x2.f32`
//! for every float input (tests/host/test_e2m1.cpp and the device test prove it).

#include <cstdint>

#include "dsv4kv/config.hpp"
#include "dsv4kv/numerics/float_bits.hpp"

namespace dsv4kv {

//! Largest E2M1 magnitude.
inline constexpr float e2m1_max = 6.0f;

//! float -> 4-bit E2M1 code (low nibble). Ties go to the even code; |x| > 6 and ±Inf saturate
//! to ±6; the sign is kept, also for results that round to zero; NaN -> +6 (0x7), as CUDA does.
DSV4KV_HOST_DEVICE std::uint8_t e2m1_encode(float x) {
  const std::uint32_t u = float_to_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7u;  // NaN
  const std::uint8_t sign = static_cast<std::uint8_t>((u >> 28) & 0x8u);
  const float a = bits_to_float(u & 0x7FFFFFFFu);
  // Each comparison counts one grid step passed. Midpoints go to the even code: 0.25 -> 0,
  // 0.75 -> 1.0, 1.25 -> 1.0, 1.75 -> 2.0, 2.5 -> 2.0, 3.5 -> 4.0, 5.0 -> 4.0.
  const int code = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) +
                   (a >= 3.5f) + (a > 5.0f);
  return static_cast<std::uint8_t>(sign | code);
}

//! 4-bit E2M1 code (low nibble of `code`) -> float (exact).
DSV4KV_HOST_DEVICE float e2m1_decode(std::uint8_t code) {
  const std::uint32_t sign = static_cast<std::uint32_t>(code & 0x8u) << 28;
  const std::uint32_t exp = (code >> 1) & 0x3u;
  const std::uint32_t man = code & 0x1u;
  // exp 0: 0 or 0.5 (subnormal); otherwise (1 + man/2) * 2^(exp-1).
  const std::uint32_t magnitude = exp == 0u ? (man ? 0x3F000000u : 0u) : (((exp + 126u) << 23) | (man << 22));
  return bits_to_float(sign | magnitude);
}

//! Packs two E2M1 codes into one byte: element 2k (`lo`) in the low nibble, 2k+1 (`hi`) high.
DSV4KV_HOST_DEVICE std::uint8_t e2m1_pack(std::uint8_t lo, std::uint8_t hi) {
  return static_cast<std::uint8_t>((lo & 0xFu) | ((hi & 0xFu) << 4));
}

}  // namespace dsv4kv
