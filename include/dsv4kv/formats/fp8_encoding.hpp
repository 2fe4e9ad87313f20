// SPDX-License-Identifier: Apache-2.0
#pragma once
//! The FP8-E4M3 row recipe of SPEC §6 as scalar steps shared by the host reference and kernels.
//!
//! fp32 mode: s = amax / 448, q = e4m3(x * min(448 / amax, FLT_MAX)).
//! pow2 mode: s = 2^ceil(log2(amax / 448)) (exponent computed exactly, at least 2^-149),
//!            q = e4m3(x / s).
//! amax == 0: s = 0, codes 0. Any NaN or ±Inf in the row: s = NaN, codes 0.
//! Decode: x' = float(q) * s.
//! The FLT_MAX clamp (as in SPEC §5 step 3) only acts for amax < 448 / FLT_MAX, where 448 / amax
//! would be +Inf and 0 * Inf a NaN code; the 2^-149 floor keeps s non-zero for subnormal rows.

#include <cfloat>
#include <cstdint>

#include "dsv4kv/config.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/numerics/e4m3.hpp"
#include "dsv4kv/numerics/float_bits.hpp"

namespace dsv4kv {

//! Per-row FP8 scales: `decode` = s (stored with the row); `encode` = the factor applied to x
//! (fp32 mode: x * encode; pow2 mode: x / decode, see fp8_encode_element).
struct fp8_row_scale {
  float encode;
  float decode;
};

//! 2^ceil(log2(amax / 448)) computed on the exponent, exact for every finite amax > 0.
DSV4KV_HOST_DEVICE float fp8_pow2_scale(float amax) {
  // amax = m * 2^(e-23) with integer significand m; amax / 448 = (m / 7) * 2^(e-29).
  // ceil(log2(amax / 448)) = ceil(log2(m / 7)) + e - 29 is found from the bits: the exact
  // quotient m / 7 is a power of two only when m = 7 * 2^k.
  const std::uint32_t u = float_to_bits(amax);
  std::int32_t exp = static_cast<std::int32_t>(u >> 23);       // biased exponent
  std::uint32_t sig = u & 0x7FFFFFu;
  if (exp == 0) {  // subnormal: normalise the significand
    exp = 1;
    while ((sig & 0x800000u) == 0u) { sig <<= 1; --exp; }
  } else {
    sig |= 0x800000u;
  }
  // amax = sig * 2^(exp - 150), sig in [2^23, 2^24). log2(sig / 7) lies in [23 - log2 7, 24 - log2 7)
  // = [20.19, 21.19): its ceiling is 21, or 22 when sig / 7 > 2^21, i.e. sig > 7 * 2^21.
  const std::int32_t ceil_log2_sig_over_7 = sig > 7u * (1u << 21) ? 22 : 21;
  std::int32_t e = ceil_log2_sig_over_7 + exp - 150 - 6;        // / 448 = / 7 / 2^6
  if (e < -149) e = -149;
  if (e >= -126) return bits_to_float(static_cast<std::uint32_t>(e + 127) << 23);
  return bits_to_float(1u << (e + 149));                          // subnormal power of two
}

//! SPEC §6: the row scales for `mode` from the row's amax (NaN for a non-finite row).
DSV4KV_HOST_DEVICE fp8_row_scale fp8_row_scale_from_amax(row_amax a, fp8_scale_mode mode) {
  if (!a.finite) return {0.0f, bits_to_float(0x7FC00000u)};
  if (a.amax == 0.0f) return {0.0f, 0.0f};
  if (mode == fp8_scale_mode::pow2) {
    const float s = fp8_pow2_scale(a.amax);
    return {s, s};
  }
  const float inv = e4m3_max / a.amax;
  return {inv < FLT_MAX ? inv : FLT_MAX, a.amax / e4m3_max};
}

//! SPEC §6: one element of a finite row with non-zero amax, scaled into the E4M3 range (the value
//! that is then rounded to E4M3; kernels may round pairs of them with a conversion instruction).
DSV4KV_HOST_DEVICE float fp8_scaled_element(float x, fp8_row_scale s, fp8_scale_mode mode) {
  return mode == fp8_scale_mode::pow2 ? x / s.encode : x * s.encode;
}

//! SPEC §6: E4M3 code of one element of a finite row with non-zero amax.
DSV4KV_HOST_DEVICE std::uint8_t fp8_encode_element(float x, fp8_row_scale s, fp8_scale_mode mode) {
  return e4m3_encode(fp8_scaled_element(x, s, mode));
}

//! SPEC §6 decoding of one element, in FP32.
DSV4KV_HOST_DEVICE float fp8_decode_element(std::uint8_t code, float s) { return e4m3_decode(code) * s; }

}  // namespace dsv4kv
