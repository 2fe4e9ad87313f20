// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host API of NVFP4 row quantization on the GPU (SPEC §5): the two-kernel chain
//! per-row amax -> global scale, then quantize from that buffer, as one call. No host sync.

#include <cuda_runtime_api.h>

#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv {

//! Encodes FP32 rows x [n, d] into `out` (out.rows == n, out.d == d, d % 16 == 0), bit-exact with
//! ref::encode_nvfp4. All device memory:
//!   x:         16-byte aligned, row stride % 4 == 0;
//!   out:       codes 2-byte aligned, global_scales 4-byte aligned;
//!   row_amax:  [n] FP32 scratch (4-byte aligned); afterwards it holds each row's amax (NaN for a
//!              row with NaN or Inf), what kernel 2 read.
//! No output may overlap x or another output (status::aliasing). n == 0 launches nothing.
[[nodiscard]] status quantize_nvfp4(tensor_view<const float> x, nvfp4_rows out, float* row_amax, cudaStream_t stream);

//! The validation of quantize_nvfp4() alone (CUTLASS's can_implement): the status it returns
//! before it launches; ok when it would launch. Host only: reads no pointed-to memory, no CUDA call.
[[nodiscard]] status can_implement_quantize_nvfp4(tensor_view<const float> x, nvfp4_rows out,
                                                  const float* row_amax) noexcept;

}  // namespace dsv4kv
