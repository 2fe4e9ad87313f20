// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Vector loads and stores of 4 (or 2) consecutive elements as float4 (float2), FP32 or BF16
//! storage, and prefetch hints.
//!
//! FP32: one 16-byte (8-byte) access, aligned to its size. BF16: one 8-byte (4-byte) access,
//! aligned to its size, widened exactly to FP32. "stream" loads are for data read once (cache-streaming hint); "cached"
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

//! N (4 or 2) consecutive elements as one vector: vecf<4> is float4, vecf<2> float2; their BF16
//! storage as bf16_bits<N> (uint2, unsigned), widened exactly by widen_bf16.
template <int N>
struct vec_type;
template <>
struct vec_type<4> {
  using type = float4;
  using bf16_bits = uint2;
};
template <>
struct vec_type<2> {
  using type = float2;
  using bf16_bits = unsigned;
};
template <int N>
using vecf = typename vec_type<N>::type;
template <int N>
using bf16_bits = typename vec_type<N>::bf16_bits;

__device__ __forceinline__ float2 widen_bf16(unsigned u) {
  return make_float2(bf16_decode(static_cast<std::uint16_t>(u & 0xFFFFu)), bf16_decode(static_cast<std::uint16_t>(u >> 16)));
}
__device__ __forceinline__ float4 widen_bf16(uint2 u) {
  const float2 lo = widen_bf16(u.x), hi = widen_bf16(u.y);
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}

//! N elements at p (read once), as vecf<N>: one 16- / 8-byte access for FP32, 8- / 4-byte for BF16.
template <int N>
__device__ __forceinline__ vecf<N> loadn_stream(const float* p) {
  return __ldcs(reinterpret_cast<const vecf<N>*>(p));
}
template <int N>
__device__ __forceinline__ vecf<N> loadn_stream(const __nv_bfloat16* p) {
  return widen_bf16(__ldcs(reinterpret_cast<const bf16_bits<N>*>(p)));
}

//! N elements at p (read by many threads), as vecf<N>.
template <int N>
__device__ __forceinline__ vecf<N> loadn_cached(const float* p) {
  return __ldg(reinterpret_cast<const vecf<N>*>(p));
}
template <int N>
__device__ __forceinline__ vecf<N> loadn_cached(const __nv_bfloat16* p) {
  return widen_bf16(__ldg(reinterpret_cast<const bf16_bits<N>*>(p)));
}

//! N FP32 elements from p (aligned to the vector), an ordinary coherent access (in-place stages).
template <int N>
__device__ __forceinline__ vecf<N> loadn(const float* p) {
  return *reinterpret_cast<const vecf<N>*>(p);
}

//! The 4-element accesses most kernels use.
template <class T>
__device__ __forceinline__ float4 load4_stream(const T* p) {
  return loadn_stream<4>(p);
}
template <class T>
__device__ __forceinline__ float4 load4_cached(const T* p) {
  return loadn_cached<4>(p);
}
__device__ __forceinline__ float4 load4(const float* p) { return loadn<4>(p); }
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

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
