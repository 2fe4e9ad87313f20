// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host reference of the RMSNorm stage (SPEC §3): y = y * rsqrt(mean(y^2) + eps) * w, in double.

#include "dsv4kv/status.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::ref {

//! DeepSeek-V4 RMSNorm epsilon.
inline constexpr double rmsnorm_eps = 1e-6;

//! Normalises each row of `rows` [n, d] in place with weight [d] (FP32, required).
//! eps must be >= 0.
template <class T>
[[nodiscard]] status rmsnorm(tensor_view<T> rows, const float* weight, double eps = rmsnorm_eps);

}  // namespace dsv4kv::ref
