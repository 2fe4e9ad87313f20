// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Bit views of IEEE float32, identical on host and device.

#include <cstdint>
#include <cstring>

#include "dsv4kv/config.hpp"

namespace dsv4kv {

//! The 32 bits of `x`.
DSV4KV_HOST_DEVICE std::uint32_t float_to_bits(float x) {
#if DSV4KV_DEVICE_PASS
  return __float_as_uint(x);
#else
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

//! The float whose bits are `u`.
DSV4KV_HOST_DEVICE float bits_to_float(std::uint32_t u) {
#if DSV4KV_DEVICE_PASS
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

//! True when `x` is NaN (tested on the bits, so it survives any compiler float mode).
DSV4KV_HOST_DEVICE bool is_nan_bits(float x) { return (float_to_bits(x) & 0x7FFFFFFFu) > 0x7F800000u; }

//! True when `x` is neither NaN nor ±Inf.
DSV4KV_HOST_DEVICE bool is_finite_bits(float x) { return (float_to_bits(x) & 0x7F800000u) != 0x7F800000u; }

//! |x| by clearing the sign bit (NaN stays NaN).
DSV4KV_HOST_DEVICE float abs_bits(float x) { return bits_to_float(float_to_bits(x) & 0x7FFFFFFFu); }

}  // namespace dsv4kv
