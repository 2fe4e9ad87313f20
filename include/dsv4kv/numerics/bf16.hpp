// SPDX-License-Identifier: Apache-2.0
#pragma once
//! BF16 rounding: float -> bfloat16 bits with round-to-nearest-even, and back.
//!
//! Bit-identical to `__float2bfloat16_rn` (host) and `cvt.rn.bf16.f32` (device): NaN becomes the
//! canonical 0x7FFF, overflow rounds to ±Inf.

#include <cstdint>

#include "dsv4kv/config.hpp"
#include "dsv4kv/numerics/float_bits.hpp"

namespace dsv4kv {

//! float -> BF16 bits, round to nearest even; NaN -> 0x7FFF.
DSV4KV_HOST_DEVICE std::uint16_t bf16_encode(float x) {
  const std::uint32_t u = float_to_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFFu;
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

//! BF16 bits -> float (exact).
DSV4KV_HOST_DEVICE float bf16_decode(std::uint16_t bits) {
  return bits_to_float(static_cast<std::uint32_t>(bits) << 16);
}

//! x rounded to the nearest BF16 value, returned as float.
DSV4KV_HOST_DEVICE float bf16_round(float x) { return bf16_decode(bf16_encode(x)); }

}  // namespace dsv4kv
