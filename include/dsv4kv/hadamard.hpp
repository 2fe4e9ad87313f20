// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host API of the indexer's Walsh-Hadamard rotation on the GPU (SPEC §2): y = H_d x * d^-1/2.
//! (compress() can also apply it in its epilogue, bit-identically.)

#include <cuda_runtime_api.h>

#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv {

//! Rotates each row of `rows` [n, d] (FP32 device, 16-byte aligned, row stride % 4 == 0) in place
//! by the Sylvester-ordered Hadamard matrix scaled by d^-1/2. d in {128, 512}, else unsupported_shape.
[[nodiscard]] status hadamard_rotate(tensor_view<float> rows, cudaStream_t stream);

//! The validation of hadamard_rotate() alone (CUTLASS's can_implement): the status it returns
//! before it launches; ok when it would launch. Host only: reads no pointed-to memory, no CUDA call.
[[nodiscard]] status can_implement_hadamard_rotate(tensor_view<float> rows) noexcept;

}  // namespace dsv4kv
