// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Device building block of the read path: loads and decodes 8 consecutive elements (a "chunk",
//! one 16-byte BF16 store) of an NVFP4 row (SPEC §5) to FP32, bit-identical to
//! nvfp4_decode_element (formats/nvfp4_encoding.hpp).
//!
//! Fast path, and why it gives the same bits. The reference computes (e2m1(c) * sf) * g in FP32.
//! The product P = e2m1(c) * sf is exact in FP32 (at most 6 significant bits, |P| in {0} or
//! [2^-10, 2688]) and P is a multiple of 2^-10, so the first multiply never rounds and only "* g"
//! rounds. Here:
//!   h = f16 bits (sign << 15 | magnitude << 9) of the nibble  = e2m1(c) * 2^-14, exactly;
//!   s = f16(sf) * 2^7 (cvt.rn.f16x2.e4m3x2, then HMUL2)        exact: |sf| <= 448 -> <= 57344;
//!   y = f32(h * s) (one HMUL2 for two elements)                = P * 2^-7, exact: a multiple of
//!       2^-17 with <= 6 significant bits and |y| <= 21, inside f16's normal/subnormal grid;
//!   x = y * (g * 2^7)                                          = RN(P * g) whenever g * 2^7 is
//!       exact, i.e. unless |g| * 2^7 overflows; then x = (y * 2^7) * g, again RN(P * g).
//! NaN and signed zeros propagate as in the reference (a NaN scale byte gives NaN through s).

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/numerics/e4m3.hpp"
#include "dsv4kv/numerics/float_bits.hpp"

namespace dsv4kv::detail {

//! The raw bytes of one chunk: 4 code bytes (8 E2M1 nibbles), its block scale, the row scale g.
struct nvfp4_chunk {
  std::uint32_t codes;        // element 2k in the low nibble of byte k
  std::uint32_t block_scale;  // E4M3 byte of the chunk's 16-element block
  float g;                    // FP32 decode scale of the row
};

//! f16x2 bits of two E2M1 nibbles scaled by 2^-14: nibble at bits [SHIFT+3 : SHIFT] of each 16-bit
//! half of `p` (other bits of p are masked off) -> sign to bit 15, magnitude to bits 11:9.
template <int SHIFT>
__device__ __forceinline__ std::uint32_t e2m1x2_to_f16x2_scaled(std::uint32_t p) {
  static_assert(SHIFT == 0 || SHIFT == 8, "nibble at bit 0 or 8 of each half");
  return ((p << (12 - SHIFT)) & 0x80008000u) | ((p << (9 - SHIFT)) & 0x0E000E00u);
}

//! f16(sf * 2^7) in both halves, exact for every E4M3 byte (|sf| * 2^7 <= 57344; NaN stays NaN).
__device__ __forceinline__ __half2 block_scale_f16x2_scaled(std::uint32_t sf) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  // cvt.rn.f16x2.e4m3x2 on the byte twice: E4M3 -> f16 is exact; * 2^7 in f16 is exact.
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(sf * 0x0101u), __NV_E4M3);
  return __hmul2(__half2(h), __float2half2_rn(128.0f));
#else
  return __float2half2_rn(e4m3_decode(static_cast<std::uint8_t>(sf)) * 128.0f);  // the shared recipe
#endif
}

//! Decodes one chunk to FP32: x[i] == nvfp4_decode_element(code i, block_scale, g) bit for bit
//! (NaN payloads aside: a NaN result is the GPU's canonical NaN).
__device__ __forceinline__ void nvfp4_decode_chunk(const nvfp4_chunk& in, float (&x)[8]) {
  const __half2 s = block_scale_f16x2_scaled(in.block_scale);
  const std::uint32_t even = in.codes & 0x0F0F0F0Fu;        // nibbles of elements 0, 2, 4, 6
  const std::uint32_t odd = (in.codes >> 4) & 0x0F0F0F0Fu;  // nibbles of elements 1, 3, 5, 7
  const std::uint32_t p01 = __byte_perm(even, odd, 0x5410);  // halves: {e0 | e2 << 8, e1 | e3 << 8}
  const std::uint32_t p23 = __byte_perm(even, odd, 0x7632);  // halves: {e4 | e6 << 8, e5 | e7 << 8}
  const std::uint32_t h[4] = {e2m1x2_to_f16x2_scaled<0>(p01), e2m1x2_to_f16x2_scaled<8>(p01),
                              e2m1x2_to_f16x2_scaled<0>(p23), e2m1x2_to_f16x2_scaled<8>(p23)};
  float y[8];  // P * 2^-7, exact
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(__hmul2(*reinterpret_cast<const __half2*>(&h[i]), s));
    y[2 * i] = f.x;
    y[2 * i + 1] = f.y;
  }
  const float g_scaled = in.g * 128.0f;
  const bool scaled_exact = is_finite_bits(g_scaled) || !is_finite_bits(in.g);  // no overflow
  if (scaled_exact) {
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = y[i] * g_scaled;
  } else {  // |g| * 2^7 > FLT_MAX: the encoder never writes it (g <= FLT_MAX / 2688); exact anyway
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = (y[i] * 128.0f) * in.g;
  }
}

//! Reads chunks of NVFP4 rows of width D: chunk c of row r holds elements [8c, 8c + 8).
template <int D>
struct nvfp4_chunk_reader {
  static_assert(D > 0 && D % nvfp4_block_size == 0, "NVFP4 rows are whole 16-element blocks");
  static constexpr int width = D;
  static constexpr int chunks_per_row = D / 8;
  using chunk = nvfp4_chunk;

  const std::uint8_t* codes;         // [rows, D/2], 4-byte aligned
  const std::uint8_t* block_scales;  // [rows, D/16]
  const float* global_scales;        // [rows]

  //! Loads chunk c of row `row` (64-bit offsets: a pool may exceed 2^31 bytes).
  __device__ __forceinline__ chunk load(std::int64_t row, int c) const {
    const auto* row_codes = reinterpret_cast<const std::uint32_t*>(codes + row * (D / 2));  // [D/8]
    return {__ldg(row_codes + c), __ldg(block_scales + row * (D / nvfp4_block_size) + (c >> 1)),
            __ldg(global_scales + row)};
  }
  __device__ __forceinline__ static void decode(const chunk& in, float (&x)[8]) { nvfp4_decode_chunk(in, x); }
};

}  // namespace dsv4kv::detail
