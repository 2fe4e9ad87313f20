// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Vector loads and stores of 4 (or 2) consecutive elements as float4 (float2), FP32 or BF16
//! storage, and prefetch hints.
//!
//! FP32: one 16-byte access (pointer 16-byte aligned). BF16: one 8-byte access (8-byte aligned),
//! widened exactly to FP32. "stream" loads are for data read once (cache-streaming hint); "cached"
//! loads are for small tensors every CTA reads (bias, norm weight, RoPE table).

#include <cuda_bf16.h>

#include <cstdint>

#include "dsv4kv/numerics/bf16.hpp"

namespace dsv4kv::detail {

//! Elements per vector access in the row kernels (one float4 of FP32 math).
inline constexpr int vec_elems = 4;

//! Bytes of one 4-element vector of T (the alignment a vector access needs).
template <class T>
inline constexpr int vec4_bytes = vec_elems * static_cast<int>(sizeof(T));

__device__ __forceinline__ float4 bf16x4_to_float4(uint2 u) {
  return make_float4(bf16_decode(static_cast<std::uint16_t>(u.x & 0xFFFFu)), bf16_decode(static_cast<std::uint16_t>(u.x >> 16)),
                     bf16_decode(static_cast<std::uint16_t>(u.y & 0xFFFFu)), bf16_decode(static_cast<std::uint16_t>(u.y >> 16)));
}

//! 4 elements at p (read once), as float4.
__device__ __forceinline__ float4 load4_stream(const float* p) { return __ldcs(reinterpret_cast<const float4*>(p)); }
__device__ __forceinline__ float4 load4_stream(const __nv_bfloat16* p) {
  return bf16x4_to_float4(__ldcs(reinterpret_cast<const uint2*>(p)));
}

//! 4 elements at p (read by many threads), as float4.
__device__ __forceinline__ float4 load4_cached(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }
__device__ __forceinline__ float4 load4_cached(const __nv_bfloat16* p) {
  return bf16x4_to_float4(__ldg(reinterpret_cast<const uint2*>(p)));
}

//! 4 FP32 elements from / to p (16-byte aligned), ordinary coherent accesses (in-place stages).
__device__ __forceinline__ float4 load4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

//! 2 consecutive elements as float2: the narrower access of rows whose threads hold 2 channels
//! (8 bytes FP32, 4 bytes BF16; aligned to that size).
__device__ __forceinline__ float2 bf16x2_to_float2(unsigned u) {
  return make_float2(bf16_decode(static_cast<std::uint16_t>(u & 0xFFFFu)), bf16_decode(static_cast<std::uint16_t>(u >> 16)));
}
__device__ __forceinline__ float2 load2_stream(const float* p) { return __ldcs(reinterpret_cast<const float2*>(p)); }
__device__ __forceinline__ float2 load2_stream(const __nv_bfloat16* p) {
  return bf16x2_to_float2(__ldcs(reinterpret_cast<const unsigned*>(p)));
}
__device__ __forceinline__ float2 load2_cached(const float* p) { return __ldg(reinterpret_cast<const float2*>(p)); }
__device__ __forceinline__ float2 load2_cached(const __nv_bfloat16* p) {
  return bf16x2_to_float2(__ldg(reinterpret_cast<const unsigned*>(p)));
}
__device__ __forceinline__ float2 load2(const float* p) { return *reinterpret_cast<const float2*>(p); }

//! N (4 or 2) elements as one vector: vecf<4> is float4, vecf<2> float2; loadn_* pick the access.
template <int N>
struct vec_type;
template <>
struct vec_type<4> {
  using type = float4;
};
template <>
struct vec_type<2> {
  using type = float2;
};
template <int N>
using vecf = typename vec_type<N>::type;

template <int N, class T>
__device__ __forceinline__ vecf<N> loadn_stream(const T* p) {
  if constexpr (N == 4) {
    return load4_stream(p);
  } else {
    return load2_stream(p);
  }
}
template <int N, class T>
__device__ __forceinline__ vecf<N> loadn_cached(const T* p) {
  if constexpr (N == 4) {
    return load4_cached(p);
  } else {
    return load2_cached(p);
  }
}
template <int N>
__device__ __forceinline__ vecf<N> loadn(const float* p) {
  if constexpr (N == 4) {
    return load4(p);
  } else {
    return load2(p);
  }
}

//! Hints the line holding *p into L1 / L2 (no value, never faults: a load later finds it closer).
__device__ __forceinline__ void prefetch_l1(const void* p) {
  asm volatile("prefetch.global.L1 [%0];" ::"l"(__cvta_generic_to_global(p)));
}
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(__cvta_generic_to_global(p)));
}

//! Component k (0..3, a compile-time index after unrolling) of a float4, (0..1) of a float2.
__device__ __forceinline__ float& component(float4& v, int k) {
  return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w;
}
__device__ __forceinline__ float& component(float2& v, int k) { return k == 0 ? v.x : v.y; }

}  // namespace dsv4kv::detail
