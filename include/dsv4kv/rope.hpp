// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host API of the RoPE stage (SPEC §4) on the GPU: FP32 GPT-J interleaved rotation, in place.
//! (compress() can also apply it in its epilogue, bit-identically.)

#include <cuda_runtime_api.h>

#include <cstdint>

#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv {

//! Where each row sits: positions[i] when non-null, else start_position + i * ratio.
struct rope_params {
  rope_table_view table{};                  // device cos/sin [max_pos, rope_dim/2], 8-byte aligned,
                                            //   rope_dim > 0, % 4 == 0, <= d
  std::int64_t start_position = 0;          // >= 0
  int ratio = 1;                            // >= 1 (compressed rows: the compression ratio m)
  const std::int32_t* positions = nullptr;  // [rows] int32 device, or nullptr; a position outside
                                            //   [0, max_pos) turns that row's rotated channels to NaN
};

//! Rotates the last rope_dim channels of each row of `rows` [n, d] (FP32 device, 16-byte aligned,
//! d % 4 == 0, row stride % 4 == 0) in place. Prefill positions past the table -> invalid_argument.
[[nodiscard]] status rope(tensor_view<float> rows, const rope_params& p, cudaStream_t stream);

//! The validation of rope() alone (CUTLASS's can_implement): the status rope() returns before it
//! launches; ok when it would launch. Host only: reads no pointed-to memory, calls no CUDA API.
[[nodiscard]] status can_implement_rope(tensor_view<float> rows, const rope_params& p) noexcept;

}  // namespace dsv4kv
