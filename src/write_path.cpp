// SPDX-License-Identifier: Apache-2.0
// Host API of the whole write path (include/dsv4kv/write_path.hpp): validates every stage, then
// launches compress (fused epilogue) -> row amax -> quantize on the caller's stream.
#include <cstdint>

#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/write_path.hpp"
#include "stages.hpp"

namespace dsv4kv {
namespace {

constexpr std::int64_t round_up(std::int64_t x, std::int64_t a) { return (x + a - 1) / a * a; }

// Byte offset of the amax scratch inside a workspace.
constexpr std::int64_t amax_offset(std::int64_t rows, std::int64_t d) {
  return round_up(rows * d * static_cast<std::int64_t>(sizeof(float)), write_path_workspace_alignment);
}

// Workspace checks shared by both pipelines: size, null, alignment.
status check_workspace(span<std::uint8_t> ws, std::int64_t rows, std::int64_t d) {
  if (ws.size < 0) return status::invalid_argument;
  const std::int64_t need = write_path_workspace_bytes(rows, d);
  if (ws.size < need) return status::invalid_argument;
  if (need > 0 && ws.data == nullptr) return status::null_pointer;
  if (!detail::is_aligned(ws.data, write_path_workspace_alignment)) return status::misaligned;
  return status::ok;
}

// The amax scratch [rows] of a workspace (null when there are no rows).
float* workspace_amax(span<std::uint8_t> ws, std::int64_t rows, std::int64_t d) {
  if (ws.data == nullptr || rows <= 0 || d <= 0) return nullptr;
  return reinterpret_cast<float*>(ws.data + amax_offset(rows, d));
}

}  // namespace

std::int64_t write_path_workspace_bytes(std::int64_t rows, std::int64_t d) noexcept {
  if (rows <= 0 || d <= 0) return 0;
  return round_up(amax_offset(rows, d) + rows * static_cast<std::int64_t>(sizeof(float)), write_path_workspace_alignment);
}

tensor_view<float> write_path_workspace_rows(span<std::uint8_t> workspace, std::int64_t rows, std::int64_t d) noexcept {
  return {reinterpret_cast<float*>(workspace.data), rows, d, d};
}

template <class IN, class BIAS>
status write_path_nvfp4(const compress_params<IN, BIAS>& p, nvfp4_rows out, span<std::uint8_t> workspace,
                        cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(check_workspace(workspace, out.rows, out.d));
  const tensor_view<float> rows = write_path_workspace_rows(workspace, out.rows, out.d);  // [n, d]
  float* amax = workspace_amax(workspace, out.rows, out.d);                               // [n]
  DSV4KV_RETURN_IF_ERROR(detail::check_compress(p, rows));
  DSV4KV_RETURN_IF_ERROR(detail::check_quantize_nvfp4(rows, out, amax));
  const auto inputs = detail::compress_inputs(p, out.rows, out.d);
  for (const detail::byte_range& o : detail::nvfp4_ranges(out)) {
    if (detail::overlaps_any(o, inputs)) return status::aliasing;
  }
  if (detail::overlaps_any({amax, out.rows * static_cast<std::int64_t>(sizeof(float))}, inputs)) return status::aliasing;

  DSV4KV_RETURN_IF_ERROR(detail::launch_compress(p, rows, stream));
  return detail::launch_quantize_nvfp4(rows, out, amax, stream);
}

template <class IN, class BIAS>
status write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode mode, fp8_rows out,
                      span<std::uint8_t> workspace, cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(check_workspace(workspace, out.rows, out.d));
  const tensor_view<float> rows = write_path_workspace_rows(workspace, out.rows, out.d);  // [n, d]
  float* amax = workspace_amax(workspace, out.rows, out.d);                               // [n]
  DSV4KV_RETURN_IF_ERROR(detail::check_compress(p, rows));
  DSV4KV_RETURN_IF_ERROR(detail::check_quantize_fp8(rows, mode, out, amax));
  const auto inputs = detail::compress_inputs(p, out.rows, out.d);
  for (const detail::byte_range& o : detail::fp8_ranges(out)) {
    if (detail::overlaps_any(o, inputs)) return status::aliasing;
  }
  if (detail::overlaps_any({amax, out.rows * static_cast<std::int64_t>(sizeof(float))}, inputs)) return status::aliasing;

  DSV4KV_RETURN_IF_ERROR(detail::launch_compress(p, rows, stream));
  return detail::launch_quantize_fp8(rows, mode, out, amax, stream);
}

#define DSV4KV_INSTANTIATE_WRITE_PATH(IN, BIAS)                                                              \
  template status write_path_nvfp4<IN, BIAS>(const compress_params<IN, BIAS>&, nvfp4_rows, span<std::uint8_t>, \
                                             cudaStream_t);                                                   \
  template status write_path_fp8<IN, BIAS>(const compress_params<IN, BIAS>&, fp8_scale_mode, fp8_rows,         \
                                           span<std::uint8_t>, cudaStream_t);
DSV4KV_INSTANTIATE_WRITE_PATH(float, float)
DSV4KV_INSTANTIATE_WRITE_PATH(float, std::uint16_t)
DSV4KV_INSTANTIATE_WRITE_PATH(std::uint16_t, float)
DSV4KV_INSTANTIATE_WRITE_PATH(std::uint16_t, std::uint16_t)
#undef DSV4KV_INSTANTIATE_WRITE_PATH

}  // namespace dsv4kv
