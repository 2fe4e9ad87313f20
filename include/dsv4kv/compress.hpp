// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host API of the compress stage (SPEC §3) on the GPU, with its optional fused epilogue
//! (RMSNorm -> RoPE -> Walsh-Hadamard). Plain C++: no CUDA compiler needed to include it.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv {

//! One prefill of one sequence starting at token 0 (all pointers are device memory).
//! IN: element type of kv / gate, BIAS: of position_bias; each is float (FP32) or std::uint16_t
//! (BF16 bits, see numerics/bf16.hpp). With m = ratio, c = 1 + (m == 4), d = the output width:
template <class IN, class BIAS = IN>
struct compress_params {
  int ratio = csa_ratio;                    // m: 4 (CSA, overlapping blocks) or 128 (HCA)
  tensor_view<const IN> kv;                 // [T, c*d], row stride % 4 == 0, 4*sizeof(IN)-aligned
  tensor_view<const IN> gate;               // [T, c*d], same rules
  const BIAS* position_bias = nullptr;      // [m, c*d] contiguous, 4*sizeof(BIAS)-aligned; nullptr: zeros
  const float* norm_weight = nullptr;       // [d] FP32, 16-byte aligned; nullptr: no RMSNorm
  float eps = 1e-6f;                        // RMSNorm epsilon, finite and >= 0
  rope_table_view rope{};                   // device cos/sin [max_pos, rope_dim/2], 8-byte aligned;
                                            //   rope_dim 0: no RoPE, else rope_dim % 4 == 0, <= d
  std::int64_t start_position = 0;         // row i rotates at start_position + i*m ...
  const std::int32_t* positions = nullptr;  // ... or at positions[i] ([n] int32) when non-null;
                                            //   a position outside [0, max_pos) gives NaN channels
  bool hadamard = false;                    // indexer keys: rotate by H_d * d^-1/2 after RoPE
};

//! Compresses T = kv.rows tokens into out [n, d] FP32, n = floor(T / m) (SPEC §3), then applies
//! the epilogue stages that `p` enables. out: row stride % 4 == 0, 16-byte aligned.
//! Supported (m, d): (4, 128), (4, 512), (128, 128), (128, 512); others -> unsupported_shape.
//! Instantiated for IN, BIAS in {float, std::uint16_t}. Never synchronizes; n == 0 launches nothing.
template <class IN, class BIAS>
[[nodiscard]] status compress(const compress_params<IN, BIAS>& p, tensor_view<float> out, cudaStream_t stream);

//! The validation of compress() alone (CUTLASS's can_implement): the status compress() returns
//! before it launches; ok when it would launch. Host only: reads no pointed-to memory, no CUDA call.
template <class IN, class BIAS>
[[nodiscard]] status can_implement_compress(const compress_params<IN, BIAS>& p, tensor_view<float> out) noexcept;

}  // namespace dsv4kv
