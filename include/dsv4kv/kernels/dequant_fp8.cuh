// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Device building block of the read path: loads and decodes 8 consecutive elements (a "chunk",
//! one 16-byte BF16 store) of an FP8-E4M3 row (SPEC §6) to FP32, bit-identical to
//! fp8_decode_element (formats/fp8_encoding.hpp): x = float(q) * s.
//!
//! Fast path: cvt.rn.f16x2.e4m3x2 (sm_89+) turns two codes into f16 at once. Every E4M3 value,
//! subnormals and NaN included, is exactly representable in f16, and f16 -> f32 is exact, so
//! float(q) is the reference's e4m3_decode(q) and the single multiply by s rounds identically.

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "dsv4kv/formats/fp8_encoding.hpp"

namespace dsv4kv::detail {

//! The raw bytes of one chunk: 8 E4M3 codes and the row's decode scale s.
struct fp8_chunk {
  uint2 codes;  // element i in byte i (little endian)
  float s;      // FP32 decode scale of the row
};

//! Two E4M3 codes (element 2k in the low byte) -> exact FP32 values.
__device__ __forceinline__ float2 e4m3x2_to_float2(std::uint16_t codes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes), __NV_E4M3);
  return __half22float2(__half2(h));
#else
  return {e4m3_decode(static_cast<std::uint8_t>(codes & 0xFFu)), e4m3_decode(static_cast<std::uint8_t>(codes >> 8))};
#endif
}

//! Decodes one chunk to FP32: x[i] == fp8_decode_element(code i, s) bit for bit (NaN payloads
//! aside: a NaN result is the GPU's canonical NaN).
__device__ __forceinline__ void fp8_decode_chunk(const fp8_chunk& in, float (&x)[8]) {
  const std::uint32_t words[2] = {in.codes.x, in.codes.y};
#pragma unroll
  for (int w = 0; w < 2; ++w) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float2 q = e4m3x2_to_float2(static_cast<std::uint16_t>(words[w] >> (16 * half)));
      x[4 * w + 2 * half] = q.x * in.s;
      x[4 * w + 2 * half + 1] = q.y * in.s;
    }
  }
}

//! Reads chunks of FP8 rows of width D: chunk c of row r holds elements [8c, 8c + 8).
template <int D>
struct fp8_chunk_reader {
  static_assert(D > 0 && D % 8 == 0, "FP8 rows are read in 8-element chunks");
  static constexpr int width = D;
  static constexpr int chunks_per_row = D / 8;
  using chunk = fp8_chunk;

  const std::uint8_t* codes;  // [rows, D], 8-byte aligned
  const float* scales;        // [rows]

  //! Loads chunk c of row `row` (64-bit offsets: a pool may exceed 2^31 bytes).
  __device__ __forceinline__ chunk load(std::int64_t row, int c) const {
    const auto* row_codes = reinterpret_cast<const uint2*>(codes + row * D);  // [D/8]
    return {__ldg(row_codes + c), __ldg(scales + row)};
  }
  __device__ __forceinline__ static void decode(const chunk& in, float (&x)[8]) { fp8_decode_chunk(in, x); }
};

}  // namespace dsv4kv::detail
