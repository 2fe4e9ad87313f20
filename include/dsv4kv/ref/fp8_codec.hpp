// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host reference of SPEC §6: FP8-E4M3 row encode and decode in both scale modes, bit-exact
//! (formats/fp8_encoding.hpp), plus selective decode (SPEC §8).

#include <cstdint>

#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::ref {

//! Encodes one row x[d]: codes [d], *scale.
void encode_fp8_row(span<const float> x, fp8_scale_mode mode, std::uint8_t* codes, float* scale);

//! Encodes rows x [n, d] into `out` (out.rows == n, out.d == d).
[[nodiscard]] status encode_fp8(tensor_view<const float> x, fp8_scale_mode mode, fp8_rows out);

//! Decodes all rows to FP32 [n, d].
[[nodiscard]] status decode_fp8(const_fp8_rows in, tensor_view<float> out);

//! Decodes all rows to BF16 bits [n, d].
[[nodiscard]] status decode_fp8_bf16(const_fp8_rows in, tensor_view<std::uint16_t> out);

//! Decodes the rows named by `indices` [k] to BF16 bits [k, d]; -1 or out of range -> +0 row.
[[nodiscard]] status decode_fp8_selected_bf16(const_fp8_rows in, span<const std::int32_t> indices,
                                              tensor_view<std::uint16_t> out);

}  // namespace dsv4kv::ref
