// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host reference of the whole write path before quantization (SPEC §2):
//! compress -> RMSNorm (when a weight is given) -> RoPE -> Hadamard (optional), all in double.

#include <cstdint>

#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::ref {

//! Inputs of one prefill of one sequence (host memory).
struct write_path_problem {
  int ratio = 4;                          // 4 (CSA) or 128 (HCA)
  tensor_view<const float> kv;            // [T, c*d]
  tensor_view<const float> gate;          // [T, c*d]
  const float* position_bias = nullptr;   // [ratio, c*d] or nullptr
  const float* norm_weight = nullptr;     // [d] or nullptr (no RMSNorm)
  double eps = 1e-6;
  rope_table_view rope;                   // rope_dim = rope.rope_dim; rope_dim 0 skips RoPE
  std::int64_t start_position = 0;        // position of token 0 (row i sits at start + i*ratio)
  bool hadamard = false;                  // indexer keys: rotate by H_d * d^-1/2 last
};

//! Runs the pre-quantization write path into out [floor(T/ratio), d] (d = out.cols).
template <class Out>
[[nodiscard]] status write_path_rows(const write_path_problem& p, tensor_view<Out> out);

}  // namespace dsv4kv::ref
