// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host reference of SPEC §5: NVFP4 row encode and decode, bit-exact (same FP32 operations as the
//! kernels, see formats/nvfp4_encoding.hpp), plus selective decode (SPEC §8).

#include <cstdint>

#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::ref {

//! Encodes one row x[d] (d a multiple of 16): codes [d/2], block_scales [d/16], *global_scale.
void encode_nvfp4_row(span<const float> x, std::uint8_t* codes, std::uint8_t* block_scales,
                      float* global_scale);

//! Encodes rows x [n, d] into `out` (out.rows == n, out.d == d).
[[nodiscard]] status encode_nvfp4(tensor_view<const float> x, nvfp4_rows out);

//! Decodes all rows to FP32 [n, d] (exact products, before BF16 rounding).
[[nodiscard]] status decode_nvfp4(const_nvfp4_rows in, tensor_view<float> out);

//! Decodes all rows to BF16 bits [n, d] (round to nearest even).
[[nodiscard]] status decode_nvfp4_bf16(const_nvfp4_rows in, tensor_view<std::uint16_t> out);

//! Decodes the rows named by `indices` [k] to BF16 bits [k, d]; an index of -1 or outside
//! [0, in.rows) yields a row of +0.
[[nodiscard]] status decode_nvfp4_selected_bf16(const_nvfp4_rows in, span<const std::int32_t> indices,
                                                tensor_view<std::uint16_t> out);

}  // namespace dsv4kv::ref
