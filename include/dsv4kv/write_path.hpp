// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Host API of the whole write path on the GPU (SPEC §2), the seed's pipeline as one call:
//!   main KV:      projections -> compress -> RMSNorm -> RoPE -> NVFP4 rows
//!   indexer keys: projections -> compress -> RMSNorm -> RoPE -> Hadamard -> FP8 rows
//! Two implementations with identical output bytes (write_path_mode):
//!   fused (default): one kernel, one pass over the projections, each row's amax inside the CTA;
//!                    no workspace (the prefill case of the append kernel, append.hpp);
//!   two_kernel:      the seed's chain, three launches (compress with its fused epilogue, amax,
//!                    quantize) through a caller-owned workspace holding the FP32 rows and the
//!                    amax scratch.
//! No host sync, no allocation; capturable in a CUDA graph.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "dsv4kv/compress.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv {

//! Which implementation a write path call runs; both give the same bytes.
enum class write_path_mode : int {
  fused = 0,       //!< one kernel: compress -> norm -> RoPE -> (Hadamard) -> quantize; no workspace
  two_kernel = 1,  //!< compress into the workspace's FP32 rows, then the amax -> quantize chain
};

//! Workspace alignment the write path needs (bytes).
inline constexpr std::int64_t write_path_workspace_alignment = 16;

//! Bytes of device workspace write_path_mode::two_kernel needs for `rows` compressed rows of width
//! d: FP32 rows [rows, d] at offset 0, then the FP32 amax scratch [rows]. 0 for rows <= 0 or d <= 0;
//! INT64_MAX (no workspace can be that large) when the rows alone would exceed 2^50 bytes.
//! write_path_mode::fused needs none.
[[nodiscard]] std::int64_t write_path_workspace_bytes(std::int64_t rows, std::int64_t d) noexcept;

//! The FP32 rows [rows, d] inside a workspace: what the quantizer read after a write path call
//! (the compressed, normalised, rotated rows).
[[nodiscard]] tensor_view<float> write_path_workspace_rows(span<std::uint8_t> workspace, std::int64_t rows,
                                                           std::int64_t d) noexcept;

//! Main KV: compress (p, with its epilogue) and quantize to NVFP4 rows `out` [n, d], n = T / m.
//! workspace (two_kernel only; fused ignores it, pass {nullptr, 0}): device, 16-byte aligned,
//! >= write_path_workspace_bytes(n, d) bytes, disjoint from every input and output.
//! Instantiated for IN, BIAS in {float, std::uint16_t}.
template <class IN, class BIAS>
[[nodiscard]] status write_path_nvfp4(const compress_params<IN, BIAS>& p, nvfp4_rows out,
                                      span<std::uint8_t> workspace, cudaStream_t stream,
                                      write_path_mode mode = write_path_mode::fused);

//! Indexer keys: compress (p, typically with hadamard = true) and quantize to FP8 rows `out`
//! [n, d] with scale `scale_mode`. Same workspace rules as write_path_nvfp4.
template <class IN, class BIAS>
[[nodiscard]] status write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode scale_mode, fp8_rows out,
                                    span<std::uint8_t> workspace, cudaStream_t stream,
                                    write_path_mode mode = write_path_mode::fused);

//! The validation of write_path_nvfp4() alone (CUTLASS's can_implement): the status it returns
//! before it launches; ok when it would launch. Host only: reads no pointed-to memory, no CUDA call.
template <class IN, class BIAS>
[[nodiscard]] status can_implement_write_path_nvfp4(const compress_params<IN, BIAS>& p, nvfp4_rows out,
                                                    span<std::uint8_t> workspace,
                                                    write_path_mode mode = write_path_mode::fused) noexcept;

//! The validation of write_path_fp8() alone (see can_implement_write_path_nvfp4).
template <class IN, class BIAS>
[[nodiscard]] status can_implement_write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode scale_mode,
                                                  fp8_rows out, span<std::uint8_t> workspace,
                                                  write_path_mode mode = write_path_mode::fused) noexcept;

}  // namespace dsv4kv
