// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Read path (SPEC §8): NVFP4 or FP8-E4M3 rows -> BF16 (or FP32, for validation), either all rows
//! or the rows an int32 index list selects (the sparse-attention indexer's top-k), also batched
//! over tokens. Values are bit-identical to the host reference (ref/nvfp4_codec.hpp,
//! ref/fp8_codec.hpp); a NaN stored row decodes to NaN, an index of -1 or outside [0, rows) to +0.
//!
//! Every call: enqueues at most one kernel on `stream`, never synchronizes, allocates, prints or
//! throws, and can be captured in a CUDA graph. On bad arguments it launches nothing, changes no
//! byte and returns:
//!   invalid_argument   negative sizes, an output / index shape that does not match, a stride
//!                      smaller than a row, d not a valid row width (NVFP4: a positive multiple of
//!                      16; FP8: positive), more than 2^31 - 1 output rows, overlapping tokens, an
//!                      array over 2^50 bytes or wrapping the address space;
//!   null_pointer       a pointer that would be read or written is null;
//!   misaligned         NVFP4 codes not 4-byte aligned, FP8 codes not 8-byte aligned, a float or
//!                      int32 array not 4-byte aligned, the output or its strides not 16-byte aligned
//!                      (BF16: row_stride a multiple of 8 elements; FP32: of 4);
//!   aliasing           the output overlaps an input array;
//!   unsupported_shape  a valid d with no kernel in this build (kernels exist for d = 128 and 512).
//! Empty work (no output rows) returns ok and launches nothing.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv {

//! A BF16 value as its 16 bits (bit-compatible with __nv_bfloat16 and torch.bfloat16).
using bf16_bits = std::uint16_t;

//! Output of a batched selective dequant, [tokens, rows, cols]: row j of token t starts at
//! data + t * token_stride + j * row_stride (elements). With token_stride > rows * row_stride each
//! token's rows can be a slice of a larger per-token buffer (e.g. after its sliding-window rows).
//! Tokens must not overlap: token_stride >= (rows - 1) * row_stride + cols when tokens > 1.
template <class T>
struct batched_rows_view {
  T* data = nullptr;              // [tokens, token_stride]
  std::int64_t tokens = 0;
  std::int64_t rows = 0;          // k: rows per token
  std::int64_t cols = 0;          // d
  std::int64_t row_stride = 0;    // elements between the rows of one token (>= cols)
  std::int64_t token_stride = 0;  // elements between tokens
};

// --- all rows: in [rows, d] -> out [rows, d] (out.row_stride >= d) -------------------------------

//! Decodes every NVFP4 row to BF16 bits: out(r, i) = bf16(e2m1(code) * float(sf) * g).
[[nodiscard]] status dequant_nvfp4(const_nvfp4_rows in, tensor_view<bf16_bits> out, cudaStream_t stream);
//! Decodes every NVFP4 row to FP32 (the exact product before BF16 rounding).
[[nodiscard]] status dequant_nvfp4(const_nvfp4_rows in, tensor_view<float> out, cudaStream_t stream);
//! Decodes every FP8 row to BF16 bits: out(r, i) = bf16(float(q) * s).
[[nodiscard]] status dequant_fp8(const_fp8_rows in, tensor_view<bf16_bits> out, cudaStream_t stream);
//! Decodes every FP8 row to FP32.
[[nodiscard]] status dequant_fp8(const_fp8_rows in, tensor_view<float> out, cudaStream_t stream);

// --- selected rows: indices [k] -> out [k, d]; out row i = row indices[i] of `in` -----------------

//! Decodes NVFP4 rows indices[0..k) to BF16 bits [k, d]; -1 or out of range -> +0 row. Indices may
//! repeat and come in any order.
[[nodiscard]] status dequant_nvfp4_selected(const_nvfp4_rows in, span<const std::int32_t> indices,
                                            tensor_view<bf16_bits> out, cudaStream_t stream);
//! FP32 output variant of dequant_nvfp4_selected.
[[nodiscard]] status dequant_nvfp4_selected(const_nvfp4_rows in, span<const std::int32_t> indices,
                                            tensor_view<float> out, cudaStream_t stream);
//! Decodes FP8 rows indices[0..k) to BF16 bits [k, d]; -1 or out of range -> +0 row.
[[nodiscard]] status dequant_fp8_selected(const_fp8_rows in, span<const std::int32_t> indices,
                                          tensor_view<bf16_bits> out, cudaStream_t stream);
//! FP32 output variant of dequant_fp8_selected.
[[nodiscard]] status dequant_fp8_selected(const_fp8_rows in, span<const std::int32_t> indices,
                                          tensor_view<float> out, cudaStream_t stream);

// --- batched selected rows: indices [tokens, k] -> out [tokens, k, d] ----------------------------

//! For each token t: out row (t, j) = NVFP4 row indices(t, j) of `in` as BF16 bits (+0 for -1 or
//! out of range). indices.row_stride >= k; out.tokens == indices.rows, out.rows == indices.cols.
[[nodiscard]] status dequant_nvfp4_selected_batched(const_nvfp4_rows in, tensor_view<const std::int32_t> indices,
                                                    batched_rows_view<bf16_bits> out, cudaStream_t stream);
//! FP32 output variant of dequant_nvfp4_selected_batched.
[[nodiscard]] status dequant_nvfp4_selected_batched(const_nvfp4_rows in, tensor_view<const std::int32_t> indices,
                                                    batched_rows_view<float> out, cudaStream_t stream);
//! For each token t: out row (t, j) = FP8 row indices(t, j) of `in` as BF16 bits.
[[nodiscard]] status dequant_fp8_selected_batched(const_fp8_rows in, tensor_view<const std::int32_t> indices,
                                                  batched_rows_view<bf16_bits> out, cudaStream_t stream);
//! FP32 output variant of dequant_fp8_selected_batched.
[[nodiscard]] status dequant_fp8_selected_batched(const_fp8_rows in, tensor_view<const std::int32_t> indices,
                                                  batched_rows_view<float> out, cudaStream_t stream);

// --- validation only (CUTLASS's can_implement) ---------------------------------------------------
// Each returns the status the dequant call of the same name and arguments returns before it
// launches: ok exactly when that call would launch (or has no work). Host only: reads no
// pointed-to memory and calls no CUDA API, so any pointer values may be passed.

//! Validation of dequant_nvfp4(in, out, stream).
[[nodiscard]] status can_implement_dequant_nvfp4(const_nvfp4_rows in, tensor_view<bf16_bits> out) noexcept;
//! Validation of dequant_nvfp4(in, out, stream), FP32 output.
[[nodiscard]] status can_implement_dequant_nvfp4(const_nvfp4_rows in, tensor_view<float> out) noexcept;
//! Validation of dequant_fp8(in, out, stream).
[[nodiscard]] status can_implement_dequant_fp8(const_fp8_rows in, tensor_view<bf16_bits> out) noexcept;
//! Validation of dequant_fp8(in, out, stream), FP32 output.
[[nodiscard]] status can_implement_dequant_fp8(const_fp8_rows in, tensor_view<float> out) noexcept;
//! Validation of dequant_nvfp4_selected(in, indices, out, stream).
[[nodiscard]] status can_implement_dequant_nvfp4_selected(const_nvfp4_rows in, span<const std::int32_t> indices,
                                                          tensor_view<bf16_bits> out) noexcept;
//! Validation of dequant_nvfp4_selected(in, indices, out, stream), FP32 output.
[[nodiscard]] status can_implement_dequant_nvfp4_selected(const_nvfp4_rows in, span<const std::int32_t> indices,
                                                          tensor_view<float> out) noexcept;
//! Validation of dequant_fp8_selected(in, indices, out, stream).
[[nodiscard]] status can_implement_dequant_fp8_selected(const_fp8_rows in, span<const std::int32_t> indices,
                                                        tensor_view<bf16_bits> out) noexcept;
//! Validation of dequant_fp8_selected(in, indices, out, stream), FP32 output.
[[nodiscard]] status can_implement_dequant_fp8_selected(const_fp8_rows in, span<const std::int32_t> indices,
                                                        tensor_view<float> out) noexcept;
//! Validation of dequant_nvfp4_selected_batched(in, indices, out, stream).
[[nodiscard]] status can_implement_dequant_nvfp4_selected_batched(const_nvfp4_rows in,
                                                                  tensor_view<const std::int32_t> indices,
                                                                  batched_rows_view<bf16_bits> out) noexcept;
//! Validation of dequant_nvfp4_selected_batched(in, indices, out, stream), FP32 output.
[[nodiscard]] status can_implement_dequant_nvfp4_selected_batched(const_nvfp4_rows in,
                                                                  tensor_view<const std::int32_t> indices,
                                                                  batched_rows_view<float> out) noexcept;
//! Validation of dequant_fp8_selected_batched(in, indices, out, stream).
[[nodiscard]] status can_implement_dequant_fp8_selected_batched(const_fp8_rows in,
                                                                tensor_view<const std::int32_t> indices,
                                                                batched_rows_view<bf16_bits> out) noexcept;
//! Validation of dequant_fp8_selected_batched(in, indices, out, stream), FP32 output.
[[nodiscard]] status can_implement_dequant_fp8_selected_batched(const_fp8_rows in,
                                                                tensor_view<const std::int32_t> indices,
                                                                batched_rows_view<float> out) noexcept;

}  // namespace dsv4kv
