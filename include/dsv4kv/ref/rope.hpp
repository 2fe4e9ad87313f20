// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host reference of SPEC §4: GPT-J interleaved RoPE on the last rope_dim channels, in double.

#include <cstdint>

#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::ref {

//! Rotates row r of `rows` [n, d] in place at position positions[r]: for q < rope_dim/2,
//! (a, b) = (x[d-rope_dim+2q], x[d-rope_dim+2q+1]) -> (a cos - b sin, a sin + b cos).
//! positions: [n], each in [0, table.max_pos). table: host memory; rope_dim = table.rope_dim,
//! even and <= d. Returns invalid_argument for a position out of range.
template <class T>
[[nodiscard]] status rope(tensor_view<T> rows, span<const std::int32_t> positions, rope_table_view table);

//! As rope(), with the prefill positions of compressed rows: row i sits at start + i * ratio
//! (the first token of its block).
template <class T>
[[nodiscard]] status rope_prefill(tensor_view<T> rows, std::int64_t start, int ratio, rope_table_view table);

}  // namespace dsv4kv::ref
