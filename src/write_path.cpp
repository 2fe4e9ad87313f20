// SPDX-License-Identifier: Apache-2.0
// Host API of the whole write path (include/dsv4kv/write_path.hpp): validates every stage, then
// launches the fused kernel (src/append.cu, the default) or compress (fused epilogue) -> row amax
// -> quantize (two_kernel) on the caller's stream. The validation
// half (detail::check_write_path_*, src/stages.hpp) also serves callers that must validate several
// write paths before launching any (compressed_kv_cache).
#include <cstdint>
#include <limits>

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
  if (ws.size < 0 || !detail::addressable(ws.data, ws.size)) return status::invalid_argument;
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
  constexpr auto float_bytes = static_cast<std::int64_t>(sizeof(float));
  if (!detail::fits_array(d, float_bytes) || !detail::fits_array(rows, d * float_bytes)) {
    return std::numeric_limits<std::int64_t>::max();  // rows beyond detail::max_array_bytes: no workspace fits
  }
  return round_up(amax_offset(rows, d) + rows * static_cast<std::int64_t>(sizeof(float)), write_path_workspace_alignment);
}

tensor_view<float> write_path_workspace_rows(span<std::uint8_t> workspace, std::int64_t rows, std::int64_t d) noexcept {
  return {reinterpret_cast<float*>(workspace.data), rows, d, d};
}

namespace detail {

template <class IN, class BIAS>
status check_write_path_nvfp4(const compress_params<IN, BIAS>& p, const nvfp4_rows& out, span<std::uint8_t> workspace,
                              write_path_mode mode) {
  if (mode == write_path_mode::fused) return check_fused_write_path_nvfp4(p, out);
  if (mode != write_path_mode::two_kernel) return status::invalid_argument;
  DSV4KV_RETURN_IF_ERROR(check_workspace(workspace, out.rows, out.d));
  const tensor_view<float> rows = write_path_workspace_rows(workspace, out.rows, out.d);  // [n, d]
  const float* amax = workspace_amax(workspace, out.rows, out.d);                         // [n]
  DSV4KV_RETURN_IF_ERROR(check_compress(p, rows));
  DSV4KV_RETURN_IF_ERROR(check_quantize_nvfp4(rows, out, amax));
  const auto inputs = compress_inputs(p, out.rows, out.d);
  for (const byte_range& o : nvfp4_ranges(out)) {
    if (overlaps_any(o, inputs)) return status::aliasing;
  }
  if (overlaps_any({amax, out.rows * static_cast<std::int64_t>(sizeof(float))}, inputs)) return status::aliasing;
  return status::ok;
}

template <class IN, class BIAS>
status check_write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode scale_mode, const fp8_rows& out,
                            span<std::uint8_t> workspace, write_path_mode mode) {
  if (mode == write_path_mode::fused) return check_fused_write_path_fp8(p, scale_mode, out);
  if (mode != write_path_mode::two_kernel) return status::invalid_argument;
  DSV4KV_RETURN_IF_ERROR(check_workspace(workspace, out.rows, out.d));
  const tensor_view<float> rows = write_path_workspace_rows(workspace, out.rows, out.d);  // [n, d]
  const float* amax = workspace_amax(workspace, out.rows, out.d);                         // [n]
  DSV4KV_RETURN_IF_ERROR(check_compress(p, rows));
  DSV4KV_RETURN_IF_ERROR(check_quantize_fp8(rows, scale_mode, out, amax));
  const auto inputs = compress_inputs(p, out.rows, out.d);
  for (const byte_range& o : fp8_ranges(out)) {
    if (overlaps_any(o, inputs)) return status::aliasing;
  }
  if (overlaps_any({amax, out.rows * static_cast<std::int64_t>(sizeof(float))}, inputs)) return status::aliasing;
  return status::ok;
}

}  // namespace detail

template <class IN, class BIAS>
status write_path_nvfp4(const compress_params<IN, BIAS>& p, nvfp4_rows out, span<std::uint8_t> workspace,
                        cudaStream_t stream, write_path_mode mode) {
  DSV4KV_RETURN_IF_ERROR(detail::check_write_path_nvfp4(p, out, workspace, mode));
  if (mode == write_path_mode::fused) return detail::launch_fused_write_path_nvfp4(p, out, stream);
  const tensor_view<float> rows = write_path_workspace_rows(workspace, out.rows, out.d);  // [n, d]
  float* amax = workspace_amax(workspace, out.rows, out.d);                               // [n]
  DSV4KV_RETURN_IF_ERROR(detail::launch_compress(p, rows, stream));
  return detail::launch_quantize_nvfp4(rows, out, amax, stream);
}

template <class IN, class BIAS>
status write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode scale_mode, fp8_rows out,
                      span<std::uint8_t> workspace, cudaStream_t stream, write_path_mode mode) {
  DSV4KV_RETURN_IF_ERROR(detail::check_write_path_fp8(p, scale_mode, out, workspace, mode));
  if (mode == write_path_mode::fused) return detail::launch_fused_write_path_fp8(p, scale_mode, out, stream);
  const tensor_view<float> rows = write_path_workspace_rows(workspace, out.rows, out.d);  // [n, d]
  float* amax = workspace_amax(workspace, out.rows, out.d);                               // [n]
  DSV4KV_RETURN_IF_ERROR(detail::launch_compress(p, rows, stream));
  return detail::launch_quantize_fp8(rows, scale_mode, out, amax, stream);
}

#define DSV4KV_INSTANTIATE_WRITE_PATH(IN, BIAS)                                                              \
  template status write_path_nvfp4<IN, BIAS>(const compress_params<IN, BIAS>&, nvfp4_rows, span<std::uint8_t>, \
                                             cudaStream_t, write_path_mode);                                  \
  template status write_path_fp8<IN, BIAS>(const compress_params<IN, BIAS>&, fp8_scale_mode, fp8_rows,         \
                                           span<std::uint8_t>, cudaStream_t, write_path_mode);                                 \
  template status detail::check_write_path_nvfp4<IN, BIAS>(const compress_params<IN, BIAS>&, const nvfp4_rows&, \
                                                           span<std::uint8_t>, write_path_mode);            \
  template status detail::check_write_path_fp8<IN, BIAS>(const compress_params<IN, BIAS>&, fp8_scale_mode,      \
                                                         const fp8_rows&, span<std::uint8_t>, write_path_mode);
DSV4KV_INSTANTIATE_WRITE_PATH(float, float)
DSV4KV_INSTANTIATE_WRITE_PATH(float, std::uint16_t)
DSV4KV_INSTANTIATE_WRITE_PATH(std::uint16_t, float)
DSV4KV_INSTANTIATE_WRITE_PATH(std::uint16_t, std::uint16_t)
#undef DSV4KV_INSTANTIATE_WRITE_PATH

// --- can_implement (validation only): forwards to the checks the launchers call ---------------------

template <class IN, class BIAS>
status can_implement_write_path_nvfp4(const compress_params<IN, BIAS>& p, nvfp4_rows out, span<std::uint8_t> workspace,
                                      write_path_mode mode) noexcept {
  return detail::check_write_path_nvfp4(p, out, workspace, mode);
}

template <class IN, class BIAS>
status can_implement_write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode scale_mode, fp8_rows out,
                                    span<std::uint8_t> workspace, write_path_mode mode) noexcept {
  return detail::check_write_path_fp8(p, scale_mode, out, workspace, mode);
}

#define DSV4KV_INSTANTIATE_CAN_IMPLEMENT_WRITE_PATH(IN, BIAS)                                                     \
  template status can_implement_write_path_nvfp4<IN, BIAS>(const compress_params<IN, BIAS>&, nvfp4_rows,          \
                                                           span<std::uint8_t>, write_path_mode) noexcept;        \
  template status can_implement_write_path_fp8<IN, BIAS>(const compress_params<IN, BIAS>&, fp8_scale_mode, fp8_rows, \
                                                         span<std::uint8_t>, write_path_mode) noexcept;
DSV4KV_INSTANTIATE_CAN_IMPLEMENT_WRITE_PATH(float, float)
DSV4KV_INSTANTIATE_CAN_IMPLEMENT_WRITE_PATH(float, std::uint16_t)
DSV4KV_INSTANTIATE_CAN_IMPLEMENT_WRITE_PATH(std::uint16_t, float)
DSV4KV_INSTANTIATE_CAN_IMPLEMENT_WRITE_PATH(std::uint16_t, std::uint16_t)
#undef DSV4KV_INSTANTIATE_CAN_IMPLEMENT_WRITE_PATH

}  // namespace dsv4kv
