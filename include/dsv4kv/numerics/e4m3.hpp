// SPDX-License-Identifier: Apache-2.0
#pragma once
//! OCP FP8 E4M3FN (`__nv_fp8_e4m3`): encode with round-to-nearest-even and saturation, decode.
//!
//! Bit-identical to `__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3)` and to
//! `cvt.rn.satfinite.e4m3x2.f32` for every float input (proven by tests/host/test_e4m3.cpp and the
//! device test). Pure integer arithmetic, so the host and every GPU give the same bytes.

#include <cstdint>

#include "dsv4kv/config.hpp"
#include "dsv4kv/numerics/float_bits.hpp"

namespace dsv4kv {

//! Largest finite E4M3FN magnitude.
inline constexpr float e4m3_max = 448.0f;
//! E4M3FN code of +448 (the saturation value); 0x7F / 0xFF are the NaN codes.
inline constexpr std::uint8_t e4m3_max_code = 0x7E;
inline constexpr std::uint8_t e4m3_nan_code = 0x7F;

//! float -> E4M3FN code. Round to nearest, ties to even; |x| > 448 and ±Inf saturate to ±448;
//! NaN of either sign -> the canonical 0x7F (as CUDA does); values below 2^-10 in magnitude
//! become a signed zero.
DSV4KV_HOST_DEVICE std::uint8_t e4m3_encode(float x) {
  const std::uint32_t u = float_to_bits(x);
  const std::uint8_t sign = static_cast<std::uint8_t>((u >> 24) & 0x80u);
  const std::uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return e4m3_nan_code;              // NaN: canonical, sign dropped
  if (a >= 0x43E00000u) return sign | e4m3_max_code;      // >= 448 (and Inf): saturate
  const std::uint32_t biased_exp = a >> 23;                // float exponent field
  if (biased_exp >= 121u) {                                 // >= 2^-6: E4M3 normal range
    // Keep 3 mantissa bits, round the 20 dropped bits to nearest even; a carry correctly bumps the
    // exponent. Rebias from 127 to 7: subtract (127 - 7) << 3 from the exponent|mantissa field.
    const std::uint32_t rounded = a + 0x7FFFFu + ((a >> 20) & 1u);
    return sign | static_cast<std::uint8_t>((rounded >> 20) - (120u << 3));
  }
  if (biased_exp <= 116u) return sign;                      // < 2^-10: rounds to zero (2^-10 ties to 0)
  // E4M3 subnormal range [2^-10, 2^-6): code = round(|x| / 2^-9), 0..8 (8 is the smallest normal).
  const std::uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;   // 24-bit significand
  const std::uint32_t shift = 141u - biased_exp;            // 21..24
  std::uint32_t q = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return sign | static_cast<std::uint8_t>(q);
}

//! E4M3FN code -> float (exact). 0x7F / 0xFF decode to NaN.
DSV4KV_HOST_DEVICE float e4m3_decode(std::uint8_t code) {
  const std::uint32_t sign = static_cast<std::uint32_t>(code & 0x80u) << 24;
  const std::uint32_t exp = (code >> 3) & 0xFu;
  const std::uint32_t man = code & 0x7u;
  if (exp == 0xFu && man == 0x7u) return bits_to_float(sign | 0x7FC00000u);
  if (exp == 0u) {
    // man * 2^-9, exact in float
    const float magnitude = static_cast<float>(man) * 0.001953125f;
    return bits_to_float(sign | float_to_bits(magnitude));
  }
  return bits_to_float(sign | ((exp + 120u) << 23) | (man << 20));
}

}  // namespace dsv4kv
