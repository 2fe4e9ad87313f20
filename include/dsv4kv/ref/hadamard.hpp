// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host reference of the indexer's Walsh-Hadamard rotation: y = H_d x * d^-1/2, in double.

#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::ref {

//! Rotates each row of `rows` [n, d] in place by the Sylvester-ordered Hadamard matrix
//! (H[i][j] = (-1)^popcount(i & j)) scaled by d^-1/2, so the rotation is orthonormal.
//! d must be a power of two (128 and 512 are the model's); else unsupported_shape.
template <class T>
[[nodiscard]] status hadamard_rotate(tensor_view<T> rows);

}  // namespace dsv4kv::ref
