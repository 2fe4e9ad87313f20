// SPDX-License-Identifier: Apache-2.0
#pragma once
// Private to the library's .cu files: the validation and launch halves of each write-path stage,
// so that write_path.cu validates every stage before it launches any.
//   check_*:  host-only argument validation (no CUDA call); status::ok or the reason.
//   launch_*: the launches, for arguments check_* accepted; returns last_launch_status().

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>

#include "dsv4kv/compress.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"
#include "dsv4kv/write_path.hpp"

namespace dsv4kv::detail {

// --- compress (src/compress.cu) ---------------------------------------------------------------------
// Every byte range compress reads, for n rows of width d.
template <class IN, class BIAS>
std::array<byte_range, 7> compress_inputs(const compress_params<IN, BIAS>& p, std::int64_t n, std::int64_t d) {
  const std::int64_t width = compress_input_width(p.ratio, d);
  const std::int64_t table_bytes = p.rope.rope_dim > 0 && p.rope.max_pos > 0
                                       ? p.rope.max_pos * (p.rope.rope_dim / 2) * static_cast<std::int64_t>(sizeof(float))
                                       : 0;
  const bool rope = p.rope.rope_dim != 0;
  return {{range_of(p.kv),
           range_of(p.gate),
           {p.position_bias, p.position_bias ? p.ratio * width * static_cast<std::int64_t>(sizeof(BIAS)) : 0},
           {p.norm_weight, p.norm_weight ? d * static_cast<std::int64_t>(sizeof(float)) : 0},
           {p.rope.cos, rope ? table_bytes : 0},
           {p.rope.sin, rope ? table_bytes : 0},
           {p.positions, rope && p.positions ? n * static_cast<std::int64_t>(sizeof(std::int32_t)) : 0}}};
}

// Everything check_compress checks but the FP32 output view: inputs, `rows` == floor(T / m) rows of
// width d, the prefill RoPE positions (shared with the fused write path, which has no FP32 rows).
template <class IN, class BIAS>
status check_compress_prefill(const compress_params<IN, BIAS>& p, std::int64_t rows, std::int64_t d);
template <class IN, class BIAS>
status check_compress(const compress_params<IN, BIAS>& p, tensor_view<float> out);
template <class IN, class BIAS>
status launch_compress(const compress_params<IN, BIAS>& p, tensor_view<float> out, cudaStream_t stream);

// --- quantize (src/quantize_nvfp4.cu, src/quantize_fp8.cu) -------------------------------------------
// The checks of quantized output rows alone (shape, null, alignment, arrays pairwise disjoint).
status check_nvfp4_output(const nvfp4_rows& out);
status check_fp8_output(fp8_scale_mode mode, const fp8_rows& out);
status check_quantize_nvfp4(tensor_view<const float> x, const nvfp4_rows& out, const float* row_amax);
status launch_quantize_nvfp4(tensor_view<const float> x, const nvfp4_rows& out, float* row_amax, cudaStream_t stream);
status check_quantize_fp8(tensor_view<const float> x, fp8_scale_mode mode, const fp8_rows& out, const float* row_amax);
status launch_quantize_fp8(tensor_view<const float> x, fp8_scale_mode mode, const fp8_rows& out, float* row_amax,
                           cudaStream_t stream);

// --- fused write path (src/append.cu): the prefill case of the append kernel ----------------------------
// check_*: every check the fused write_path_nvfp4 / write_path_fp8 makes (no workspace involved).
template <class IN, class BIAS>
status check_fused_write_path_nvfp4(const compress_params<IN, BIAS>& p, const nvfp4_rows& out);
template <class IN, class BIAS>
status launch_fused_write_path_nvfp4(const compress_params<IN, BIAS>& p, const nvfp4_rows& out, cudaStream_t stream);
template <class IN, class BIAS>
status check_fused_write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode mode, const fp8_rows& out);
template <class IN, class BIAS>
status launch_fused_write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode mode, const fp8_rows& out,
                                   cudaStream_t stream);

// --- whole write path (src/write_path.cpp) -----------------------------------------------------------
// Every check write_path_nvfp4 / write_path_fp8 makes before launching: status::ok means that call
// with these arguments launches. For callers that chain several write paths (compressed_kv_cache)
// and must validate all of them before launching any.
// `mode` as write_path_nvfp4's (fused: the workspace is not checked, it is not used).
template <class IN, class BIAS>
status check_write_path_nvfp4(const compress_params<IN, BIAS>& p, const nvfp4_rows& out, span<std::uint8_t> workspace,
                              write_path_mode mode = write_path_mode::fused);
template <class IN, class BIAS>
status check_write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode scale_mode, const fp8_rows& out,
                            span<std::uint8_t> workspace, write_path_mode mode = write_path_mode::fused);

}  // namespace dsv4kv::detail
