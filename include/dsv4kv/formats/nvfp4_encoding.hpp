// SPDX-License-Identifier: Apache-2.0
#pragma once
//! The NVFP4 recipe of SPEC §5 as scalar steps shared by the host reference and every kernel.
//!
//! One row x[d]:
//!   amax  = max |x|                                    (row_amax, NaN-aware)
//!   S_enc = 2688 / amax, clamped to FLT_MAX; 1 if amax == 0; g = 1 / S_enc   (nvfp4_row_scale)
//!   sf_b  = e4m3(vmax_b * (S_enc * (1/6)))             (nvfp4_block_scale)
//!   mul_b = sf_b == 0 ? 0 : min(1 / (float(sf_b) * g), FLT_MAX)   (nvfp4_block_multiplier)
//!   code  = e2m1(x * mul_b)                            (e2m1_encode)
//!   x'    = e2m1(code) * float(sf_b) * g               (nvfp4_decode_element)
//! A row holding NaN or ±Inf gets g = NaN and all codes / block scales 0, so it decodes to NaN.
//! Every step is one IEEE float32 operation with round-to-nearest (no FMA can form: no additions),
//! so host and device produce identical bytes. Never build this with --use_fast_math.

#include <cfloat>
#include <cstdint>

#include "dsv4kv/config.hpp"
#include "dsv4kv/numerics/e2m1.hpp"
#include "dsv4kv/numerics/e4m3.hpp"
#include "dsv4kv/numerics/float_bits.hpp"

namespace dsv4kv {

//! Running max of |x| that also records whether any value was NaN or ±Inf (fmaxf drops NaN).
struct row_amax {
  float amax = 0.0f;
  bool finite = true;

  DSV4KV_HOST_DEVICE void add(float x) {
    finite = finite && is_finite_bits(x);
    const float a = abs_bits(x);
    amax = a > amax ? a : amax;  // NaN compares false and is never taken
  }
  DSV4KV_HOST_DEVICE void merge(const row_amax& o) {
    finite = finite && o.finite;
    amax = o.amax > amax ? o.amax : amax;
  }
};

//! Per-row NVFP4 scales: `encode` = S_enc (multiplies data into the FP8 x FP4 range),
//! `decode` = g = 1 / S_enc (stored with the row).
struct nvfp4_row_scale {
  float encode;
  float decode;
};

//! SPEC §5 step 2-3: the row scales from the row's amax; NaN decode scale for a non-finite row.
DSV4KV_HOST_DEVICE nvfp4_row_scale nvfp4_row_scale_from_amax(row_amax a) {
  if (!a.finite) return {0.0f, bits_to_float(0x7FC00000u)};
  float s_enc = 1.0f;
  if (a.amax != 0.0f) {
    s_enc = (e4m3_max * e2m1_max) / a.amax;  // 2688 / amax, IEEE division
    s_enc = s_enc < FLT_MAX ? s_enc : FLT_MAX;
  }
  return {s_enc, 1.0f / s_enc};
}

//! SPEC §5 step 4: E4M3 code of the block scale from the block's max |x| and S_enc.
//! Only meaningful for finite rows (the caller writes 0 for a non-finite row).
DSV4KV_HOST_DEVICE std::uint8_t nvfp4_block_scale(float block_amax, float s_enc) {
  return e4m3_encode(block_amax * (s_enc * (1.0f / 6.0f)));
}

//! SPEC §5 step 5: the multiplier that maps a block's values onto the E2M1 grid.
DSV4KV_HOST_DEVICE float nvfp4_block_multiplier(std::uint8_t block_scale, float g) {
  if (block_scale == 0) return 0.0f;
  const float m = 1.0f / (e4m3_decode(block_scale) * g);
  return m < FLT_MAX ? m : FLT_MAX;
}

//! SPEC §5 decoding of one element, in FP32: e2m1(code) * float(sf) * g, left to right.
DSV4KV_HOST_DEVICE float nvfp4_decode_element(std::uint8_t code, std::uint8_t block_scale, float g) {
  return e2m1_decode(code) * e4m3_decode(block_scale) * g;
}

}  // namespace dsv4kv
