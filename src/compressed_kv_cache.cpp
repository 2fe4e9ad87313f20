// SPDX-License-Identifier: Apache-2.0
// compressed_kv_cache (include/dsv4kv/compressed_kv_cache.hpp): appends through the write-path
// host API and reads through the dequant host API. An append validates every write path it will
// launch (detail::check_write_path_*) before launching the first, so a bad indexer argument never
// leaves a half-written row range behind.
#include "dsv4kv/compressed_kv_cache.hpp"

#include <array>
#include <cstdint>

#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/write_path.hpp"
#include "stages.hpp"

namespace dsv4kv {
namespace {

// Byte offset of the indexer's write-path workspace inside a cache workspace.
std::int64_t indexer_workspace_offset(std::int64_t new_rows, std::int64_t main_d) {
  return detail::round_up_to(write_path_workspace_bytes(new_rows, main_d), kv_cache_alignment);
}

// Rows [first, first + n) of NVFP4 / FP8 storage.
nvfp4_rows row_slice(const nvfp4_rows& all, std::int64_t first, std::int64_t n) {
  if (all.codes == nullptr) return {nullptr, nullptr, nullptr, n, all.d};
  return {all.row_codes(first), all.row_block_scales(first), all.global_scales + first, n, all.d};
}
fp8_rows row_slice(const fp8_rows& all, std::int64_t first, std::int64_t n) {
  if (all.codes == nullptr) return {nullptr, nullptr, n, all.d};
  return {all.row_codes(first), all.scales + first, n, all.d};
}

// Rows a prefill of p emits: floor(T / m); unsupported_shape for a ratio without kernels (checked
// here because the row count divides by it), invalid_argument for T < 0.
template <class IN, class BIAS>
status prefill_rows(const compress_params<IN, BIAS>& p, std::int64_t& rows) {
  if (p.ratio != csa_ratio && p.ratio != hca_ratio) return status::unsupported_shape;
  if (p.kv.rows < 0) return status::invalid_argument;
  rows = compressed_row_count(p.kv.rows, p.ratio);
  return status::ok;
}

// ok for a write_path_mode the write path has.
status check_mode(write_path_mode mode) {
  return mode == write_path_mode::fused || mode == write_path_mode::two_kernel ? status::ok : status::invalid_argument;
}

// Size, null and alignment of a cache workspace for `need` bytes.
status check_workspace(span<std::uint8_t> ws, std::int64_t need) {
  if (ws.size < 0 || ws.size < need || !detail::addressable(ws.data, need)) return status::invalid_argument;
  if (need > 0 && ws.data == nullptr) return status::null_pointer;
  if (!detail::is_aligned(ws.data, write_path_workspace_alignment)) return status::misaligned;
  return status::ok;
}

// The cache's storage, every row of both streams (for the aliasing checks of appends and reads).
std::array<detail::byte_range, 5> storage_ranges(const nvfp4_rows& main, const fp8_rows& indexer) {
  const auto m = detail::nvfp4_ranges(main);
  const auto i = detail::fp8_ranges(indexer);
  return {{m[0], m[1], m[2], i[0], i[1]}};
}

// aliasing when BF16 output [tokens, rows, cols] (strides in elements) overlaps the storage. dequant
// checks the output against the rows it reads; this also protects the rows past rows(). Shapes
// dequant rejects anyway (negative or huge extents) are left to it.
status check_output(const std::array<detail::byte_range, 5>& storage, const bf16_bits* data, std::int64_t tokens,
                    std::int64_t token_stride, std::int64_t rows, std::int64_t row_stride, std::int64_t cols) {
  constexpr std::int64_t limit = std::int64_t{1} << 30;  // keeps the extent below 2^62 bytes
  if (tokens <= 0 || rows <= 0 || cols <= 0 || row_stride < cols || token_stride < 0) return status::ok;
  if (tokens > limit || token_stride > limit || rows > limit || row_stride > limit) return status::ok;
  const std::int64_t elements = (tokens - 1) * token_stride + (rows - 1) * row_stride + cols;
  const detail::byte_range out{data, elements * static_cast<std::int64_t>(sizeof(bf16_bits))};
  return detail::overlaps_any(out, storage) ? status::aliasing : status::ok;
}

}  // namespace

std::int64_t compressed_kv_cache::workspace_bytes(std::int64_t new_rows) const noexcept {
  if (new_rows <= 0 || new_rows > kv_cache_max_capacity || main_.d <= 0) return 0;
  if (!has_indexer()) return write_path_workspace_bytes(new_rows, main_.d);
  return indexer_workspace_offset(new_rows, main_.d) + write_path_workspace_bytes(new_rows, indexer_.d);
}

tensor_view<float> compressed_kv_cache::workspace_main_rows(span<std::uint8_t> workspace,
                                                            std::int64_t new_rows) const noexcept {
  return write_path_workspace_rows(workspace, new_rows, main_.d);
}

tensor_view<float> compressed_kv_cache::workspace_indexer_rows(span<std::uint8_t> workspace,
                                                               std::int64_t new_rows) const noexcept {
  if (!has_indexer() || workspace.data == nullptr) return {nullptr, new_rows, indexer_.d, indexer_.d};
  const std::int64_t off = indexer_workspace_offset(new_rows, main_.d);
  return write_path_workspace_rows({workspace.data + off, workspace.size - off}, new_rows, indexer_.d);
}

// What an append writes where, once validated.
struct compressed_kv_cache::append_plan {
  std::int64_t rows = 0;            // n = floor(T / m)
  nvfp4_rows main_out{};            // [n, main_d] at the next free row
  fp8_rows indexer_out{};           // [n, indexer_d] at the next free row (CSA)
  span<std::uint8_t> ws_main{};     // the main KV's write-path workspace
  span<std::uint8_t> ws_indexer{};  // the indexer's (CSA)
};

template <class IN, class BIAS>
status compressed_kv_cache::plan_append(const compress_params<IN, BIAS>& main, const compress_params<IN, BIAS>* indexer,
                                        fp8_scale_mode indexer_scale, span<std::uint8_t> workspace,
                                        write_path_mode mode, append_plan& plan) const noexcept {
  if ((indexer != nullptr) != has_indexer()) return status::invalid_argument;  // the overload must match the layer
  DSV4KV_RETURN_IF_ERROR(check_mode(mode));
  std::int64_t n = 0;
  DSV4KV_RETURN_IF_ERROR(prefill_rows(main, n));
  if (indexer != nullptr) {
    std::int64_t n_indexer = 0;
    DSV4KV_RETURN_IF_ERROR(prefill_rows(*indexer, n_indexer));
    if (indexer->ratio != main.ratio || indexer->kv.rows != main.kv.rows) return status::invalid_argument;
  }
  if (n > free_rows()) return status::capacity_exceeded;
  // The workspace: used (and checked) by the two-kernel mode only; the fused mode ignores it.
  const bool two_kernel = mode == write_path_mode::two_kernel;
  const std::int64_t ws_full = workspace_bytes(n);
  const std::int64_t ws_bytes = two_kernel ? ws_full : 0;
  if (two_kernel) DSV4KV_RETURN_IF_ERROR(check_workspace(workspace, ws_bytes));
  append_plan p;
  p.rows = n;
  p.main_out = row_slice(main_, rows_, n);
  p.ws_main = two_kernel ? workspace : span<std::uint8_t>{};
  if (indexer != nullptr) {
    // Two-kernel workspace: the main KV's rows + amax, then the indexer's at a 256-byte boundary.
    const std::int64_t off = n > 0 ? indexer_workspace_offset(n, main_.d) : 0;
    p.indexer_out = row_slice(indexer_, rows_, n);
    if (two_kernel && n > 0) {
      p.ws_main = {workspace.data, off};
      p.ws_indexer = {workspace.data + off, ws_full - off};
    }
  }
  DSV4KV_RETURN_IF_ERROR(detail::check_write_path_nvfp4(main, p.main_out, p.ws_main, mode));
  if (indexer != nullptr) {
    DSV4KV_RETURN_IF_ERROR(detail::check_write_path_fp8(*indexer, indexer_scale, p.indexer_out, p.ws_indexer, mode));
  }
  // Across the write paths: no input may live in the cache (any row of either stream) or in the
  // workspace (the main KV's write path fills it before the indexer's reads its inputs), and the
  // workspace must not lie in the cache.
  const std::array<detail::byte_range, 5> storage = storage_ranges(main_, indexer_);
  const detail::byte_range ws{workspace.data, ws_bytes};
  if (detail::overlaps_any(ws, storage)) return status::aliasing;
  for (const detail::byte_range& in : detail::compress_inputs(main, n, main_.d)) {
    if (detail::overlaps_any(in, storage) || detail::overlaps_any(in, {ws})) return status::aliasing;
  }
  if (indexer != nullptr) {
    for (const detail::byte_range& in : detail::compress_inputs(*indexer, n, indexer_.d)) {
      if (detail::overlaps_any(in, storage) || detail::overlaps_any(in, {ws})) return status::aliasing;
    }
  }
  plan = p;
  return status::ok;
}

template <class IN, class BIAS>
status compressed_kv_cache::can_implement_append_prefill(const compress_params<IN, BIAS>& main,
                                                         span<std::uint8_t> workspace,
                                                         write_path_mode mode) const noexcept {
  append_plan plan;
  return plan_append<IN, BIAS>(main, nullptr, fp8_scale_mode::fp32, workspace, mode, plan);
}

template <class IN, class BIAS>
status compressed_kv_cache::can_implement_append_prefill(const compress_params<IN, BIAS>& main,
                                                         const compress_params<IN, BIAS>& indexer,
                                                         fp8_scale_mode indexer_scale, span<std::uint8_t> workspace,
                                                         write_path_mode mode) const noexcept {
  append_plan plan;
  return plan_append(main, &indexer, indexer_scale, workspace, mode, plan);
}

template <class IN, class BIAS>
status compressed_kv_cache::append_prefill(const compress_params<IN, BIAS>& main, span<std::uint8_t> workspace,
                                           cudaStream_t stream, write_path_mode mode) {
  append_plan plan;
  const status checked = plan_append<IN, BIAS>(main, nullptr, fp8_scale_mode::fp32, workspace, mode, plan);
  if (checked != status::ok) return checked;
  if (plan.rows == 0) return status::ok;
  DSV4KV_RETURN_IF_ERROR(write_path_nvfp4(main, plan.main_out, plan.ws_main, stream, mode));
  rows_ += plan.rows;
  return status::ok;
}

template <class IN, class BIAS>
status compressed_kv_cache::append_prefill(const compress_params<IN, BIAS>& main,
                                           const compress_params<IN, BIAS>& indexer, fp8_scale_mode indexer_scale,
                                           span<std::uint8_t> workspace, cudaStream_t stream, write_path_mode mode) {
  append_plan plan;
  DSV4KV_RETURN_IF_ERROR(plan_append(main, &indexer, indexer_scale, workspace, mode, plan));
  if (plan.rows == 0) return status::ok;
  DSV4KV_RETURN_IF_ERROR(write_path_nvfp4(main, plan.main_out, plan.ws_main, stream, mode));
  DSV4KV_RETURN_IF_ERROR(write_path_fp8(indexer, indexer_scale, plan.indexer_out, plan.ws_indexer, stream, mode));
  rows_ += plan.rows;
  return status::ok;
}

status compressed_kv_cache::read_main(tensor_view<bf16_bits> out, cudaStream_t stream) const {
  DSV4KV_RETURN_IF_ERROR(
      check_output(storage_ranges(main_, indexer_), out.data, 1, 0, out.rows, out.row_stride, out.cols));
  return dequant_nvfp4(main_rows(), out, stream);
}

status compressed_kv_cache::read_main_selected(span<const std::int32_t> indices, tensor_view<bf16_bits> out,
                                               cudaStream_t stream) const {
  DSV4KV_RETURN_IF_ERROR(
      check_output(storage_ranges(main_, indexer_), out.data, 1, 0, out.rows, out.row_stride, out.cols));
  return dequant_nvfp4_selected(main_rows(), indices, out, stream);
}

status compressed_kv_cache::read_main_selected_batched(tensor_view<const std::int32_t> indices,
                                                       batched_rows_view<bf16_bits> out, cudaStream_t stream) const {
  DSV4KV_RETURN_IF_ERROR(check_output(storage_ranges(main_, indexer_), out.data, out.tokens, out.token_stride,
                                      out.rows, out.row_stride, out.cols));
  return dequant_nvfp4_selected_batched(main_rows(), indices, out, stream);
}

status compressed_kv_cache::read_indexer(tensor_view<bf16_bits> out, cudaStream_t stream) const {
  if (!has_indexer()) return status::invalid_argument;
  DSV4KV_RETURN_IF_ERROR(
      check_output(storage_ranges(main_, indexer_), out.data, 1, 0, out.rows, out.row_stride, out.cols));
  return dequant_fp8(indexer_rows(), out, stream);
}

#define DSV4KV_INSTANTIATE_KV_CACHE(IN, BIAS)                                                                   \
  template status compressed_kv_cache::can_implement_append_prefill<IN, BIAS>(                                   \
      const compress_params<IN, BIAS>&, span<std::uint8_t>, write_path_mode) const noexcept;                     \
  template status compressed_kv_cache::can_implement_append_prefill<IN, BIAS>(                                   \
      const compress_params<IN, BIAS>&, const compress_params<IN, BIAS>&, fp8_scale_mode, span<std::uint8_t>,    \
      write_path_mode) const noexcept;                                                                           \
  template status compressed_kv_cache::append_prefill<IN, BIAS>(const compress_params<IN, BIAS>&,                \
                                                                span<std::uint8_t>, cudaStream_t, write_path_mode); \
  template status compressed_kv_cache::append_prefill<IN, BIAS>(                                                 \
      const compress_params<IN, BIAS>&, const compress_params<IN, BIAS>&, fp8_scale_mode, span<std::uint8_t>,    \
      cudaStream_t, write_path_mode);
DSV4KV_INSTANTIATE_KV_CACHE(float, float)
DSV4KV_INSTANTIATE_KV_CACHE(float, std::uint16_t)
DSV4KV_INSTANTIATE_KV_CACHE(std::uint16_t, float)
DSV4KV_INSTANTIATE_KV_CACHE(std::uint16_t, std::uint16_t)
#undef DSV4KV_INSTANTIATE_KV_CACHE

}  // namespace dsv4kv
