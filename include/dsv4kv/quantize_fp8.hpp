// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host API of FP8-E4M3 row quantization on the GPU (SPEC §6), both scale modes: the two-kernel
//! chain per-row amax -> scale, then quantize from that buffer, as one call. No host sync.

#include <cuda_runtime_api.h>

#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv {

//! Encodes FP32 rows x [n, d] into `out` (out.rows == n, out.d == d, d % 16 == 0) with scale
//! `mode`, bit-exact with ref::encode_fp8. All device memory:
//!   x:         16-byte aligned, row stride % 4 == 0;
//!   out:       codes and scales 4-byte aligned;
//!   row_amax:  [n] FP32 scratch (4-byte aligned); afterwards it holds each row's amax (NaN for a
//!              row with NaN or Inf).
//! No output may overlap x or another output (status::aliasing). n == 0 launches nothing.
[[nodiscard]] status quantize_fp8(tensor_view<const float> x, fp8_scale_mode mode, fp8_rows out, float* row_amax,
                                  cudaStream_t stream);

//! The validation of quantize_fp8() alone (CUTLASS's can_implement): the status it returns before
//! it launches; ok when it would launch. Host only: reads no pointed-to memory, no CUDA call.
[[nodiscard]] status can_implement_quantize_fp8(tensor_view<const float> x, fp8_scale_mode mode, fp8_rows out,
                                                const float* row_amax) noexcept;

}  // namespace dsv4kv
