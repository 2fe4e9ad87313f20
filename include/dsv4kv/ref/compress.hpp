// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host reference of SPEC §3: softmax-gated token-block compression (CSA and HCA), in double.

#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::ref {

//! Prefill compress of one sequence that starts at position 0.
//! kv, gate:      [T, c*d] FP32 (c = 2 for ratio 4, else 1), any row stride >= c*d.
//! position_bias: [ratio, c*d] FP32 contiguous, or nullptr for zeros.
//! out:           [floor(T/ratio), d]; d = out.cols. Rows past n*ratio are not used.
//! Row i, channel j: softmax over the block's slots of (gate + bias), weighted sum of kv, in double.
//! For CSA the m previous-block slots (first-half channels) are absent for i = 0 (weight exactly 0).
//! Returns invalid_argument on inconsistent shapes, null_pointer on null data.
template <class Out>
[[nodiscard]] status compress(tensor_view<const float> kv, tensor_view<const float> gate,
                              const float* position_bias, int ratio, tensor_view<Out> out);

}  // namespace dsv4kv::ref
