// SPDX-License-Identifier: Apache-2.0
// Host API of the read path (dequant.hpp): validation, the one dispatch switch over the head dim,
// and the launches of kernels/dequant.cuh.
#include "dsv4kv/dequant.hpp"

#include <cstdint>
#include <optional>
#include <type_traits>

#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/kernels/dequant.cuh"

namespace dsv4kv {
namespace {

constexpr std::int64_t max_output_rows = 0x7FFFFFFF;  // output rows are 31-bit inside the kernel

// Every request as tokens x k output rows; `indices` is null when all rows are decoded (k = rows).
template <class OUT>
struct request {
  const std::int32_t* indices = nullptr;  // [tokens, index_stride]
  std::int64_t index_stride = 0;
  std::int64_t index_bytes = 0;           // extent of the index array, for the aliasing check
  batched_rows_view<OUT> out;             // [tokens, k, d]
};

// --- the pool, per format -----------------------------------------------------------------------

// rows >= 0, a valid row width, and every array addressable.
status check_pool_shape(const const_nvfp4_rows& in) {
  if (in.rows < 0 || !nvfp4_supports_width(in.d)) return status::invalid_argument;
  return detail::check_storage(in);
}
status check_pool_shape(const const_fp8_rows& in) {
  if (in.rows < 0 || in.d <= 0) return status::invalid_argument;
  return detail::check_storage(in);
}
status check_pool_pointers(const const_nvfp4_rows& in) {
  if (in.rows > 0 && (in.codes == nullptr || in.block_scales == nullptr || in.global_scales == nullptr)) {
    return status::null_pointer;
  }
  return status::ok;
}
status check_pool_pointers(const const_fp8_rows& in) {
  return (in.rows > 0 && (in.codes == nullptr || in.scales == nullptr)) ? status::null_pointer : status::ok;
}
// Codes are read 8 elements at a time: 4 bytes of NVFP4 nibbles, 8 bytes of FP8.
status check_pool_alignment(const const_nvfp4_rows& in) {
  return (detail::is_aligned(in.codes, 4) && detail::is_aligned(in.global_scales, 4)) ? status::ok
                                                                                        : status::misaligned;
}
status check_pool_alignment(const const_fp8_rows& in) {
  return (detail::is_aligned(in.codes, 8) && detail::is_aligned(in.scales, 4)) ? status::ok : status::misaligned;
}
bool pool_overlaps(const const_nvfp4_rows& in, const void* p, std::int64_t bytes) {
  return detail::overlaps_any({p, bytes}, detail::nvfp4_ranges(in));
}
bool pool_overlaps(const const_fp8_rows& in, const void* p, std::int64_t bytes) {
  return detail::overlaps_any({p, bytes}, detail::fp8_ranges(in));
}
template <int D>
detail::nvfp4_chunk_reader<D> make_reader(const const_nvfp4_rows& in) {
  return {in.codes, in.block_scales, in.global_scales};
}
template <int D>
detail::fp8_chunk_reader<D> make_reader(const const_fp8_rows& in) {
  return {in.codes, in.scales};
}

// --- the output ---------------------------------------------------------------------------------

// Elements of one token's rows, [rows, cols] with row_stride (-1 when beyond max_array_bytes).
template <class OUT>
std::int64_t token_extent_elements(const batched_rows_view<OUT>& v) {
  return detail::bounded_extent_elements<OUT>(v.rows, v.cols, v.row_stride);
}

// Elements from the first to one past the last output element (-1 when beyond max_array_bytes).
// Requires the shape rules of check_output_shape (token_stride >= a token's extent when tokens > 1).
template <class OUT>
std::int64_t extent_elements(const batched_rows_view<OUT>& v) {
  const std::int64_t token = token_extent_elements(v);
  if (token <= 0 || v.tokens <= 1) return v.tokens == 0 ? 0 : token;
  return detail::bounded_extent_elements<OUT>(v.tokens, token, v.token_stride);
}

// The output view of every request (the views' own invariants included: sizes >= 0, stride >= d,
// the bytes addressable). d > 0 (check_pool_shape).
template <class OUT>
status check_output_shape(const batched_rows_view<OUT>& v, std::int64_t d) {
  if (v.tokens < 0 || v.rows < 0 || v.cols != d || v.row_stride < v.cols) return status::invalid_argument;
  if (v.tokens > max_output_rows || v.rows > max_output_rows || v.tokens * v.rows > max_output_rows) {
    return status::invalid_argument;
  }
  const std::int64_t token = token_extent_elements(v);
  if (v.tokens > 0 && token < 0) return status::invalid_argument;
  if (v.tokens > 1 && v.rows > 0 && v.token_stride < token) return status::invalid_argument;  // tokens would overlap
  const std::int64_t extent = extent_elements(v);
  if (extent < 0 || !detail::addressable(v.data, extent * static_cast<std::int64_t>(sizeof(OUT)))) {
    return status::invalid_argument;
  }
  return status::ok;
}

template <class OUT>
status check_output_alignment(const batched_rows_view<OUT>& v) {
  constexpr std::int64_t vector_bytes = 16;  // one chunk store
  constexpr std::int64_t vector_elems = vector_bytes / static_cast<std::int64_t>(sizeof(OUT));
  // Strides in elements (a stride unused by a single row / token may be any value: no overflow).
  if (!detail::is_aligned(v.data, vector_bytes) || v.row_stride % vector_elems != 0) return status::misaligned;
  if (v.tokens > 1 && v.token_stride % vector_elems != 0) return status::misaligned;
  return status::ok;
}

// --- validation, the dispatch switch and the launch ----------------------------------------------

// The one dispatch switch over the head dim: runtime d -> f(D) as a compile-time constant.
// Validation calls it with a no-op f, so "supported" means exactly "has a kernel".
template <class F>
status dispatch_head_dim(std::int64_t d, F&& f) {
  switch (d) {
    case 128: return f(std::integral_constant<int, 128>{});
    case 512: return f(std::integral_constant<int, 512>{});
    default: return status::unsupported_shape;
  }
}

template <int D, bool SELECTED, class ROWS, class OUT>
status launch(const ROWS& in, const request<OUT>& r, cudaStream_t stream) {
  using reader = decltype(make_reader<D>(in));
  detail::dequant_params<reader, OUT> p;
  p.in = make_reader<D>(in);
  p.pool_rows = in.rows;
  p.indices = r.indices;
  p.index_stride = r.index_stride;
  p.out = r.out.data;
  p.row_stride = r.out.row_stride;
  p.token_stride = r.out.token_stride;
  p.rows_per_token = detail::fast_divmod(static_cast<std::uint32_t>(r.out.rows > 0 ? r.out.rows : 1));
  p.chunks = static_cast<std::uint64_t>(r.out.tokens * r.out.rows) * reader::chunks_per_row;
  return detail::launch_dequant<reader, OUT, SELECTED>(p, stream);
}

// The validation of every request: ok exactly when dequant_rows launches (or has no work).
// 1. shapes, 2. pointers, 3. alignment, 4. aliasing, 5. a kernel for d.
template <bool SELECTED, class ROWS, class OUT>
status check_request(const ROWS& in, const request<OUT>& r) {
  DSV4KV_RETURN_IF_ERROR(check_pool_shape(in));
  DSV4KV_RETURN_IF_ERROR(check_output_shape(r.out, in.d));
  if (!detail::addressable(r.indices, r.index_bytes)) return status::invalid_argument;
  const bool nonempty = r.out.tokens > 0 && r.out.rows > 0;
  DSV4KV_RETURN_IF_ERROR(check_pool_pointers(in));
  if (nonempty && (r.out.data == nullptr || (SELECTED && r.indices == nullptr))) return status::null_pointer;
  DSV4KV_RETURN_IF_ERROR(check_pool_alignment(in));
  DSV4KV_RETURN_IF_ERROR(check_output_alignment(r.out));
  if (!detail::is_aligned(r.indices, alignof(std::int32_t))) return status::misaligned;
  const std::int64_t out_bytes = extent_elements(r.out) * static_cast<std::int64_t>(sizeof(OUT));
  if (pool_overlaps(in, r.out.data, out_bytes) ||
      detail::ranges_overlap(r.out.data, out_bytes, r.indices, r.index_bytes)) {
    return status::aliasing;
  }
  return dispatch_head_dim(in.d, [](auto) { return status::ok; });
}

// Validates, then launches on *launch_on; std::nullopt validates only (the can_implement_* calls).
template <bool SELECTED, class ROWS, class OUT>
status dequant_rows(const ROWS& in, const request<OUT>& r, std::optional<cudaStream_t> launch_on) {
  DSV4KV_RETURN_IF_ERROR(check_request<SELECTED>(in, r));
  if (!launch_on) return status::ok;
  // empty work returns ok inside launch()
  return dispatch_head_dim(in.d, [&](auto d) { return launch<decltype(d)::value, SELECTED>(in, r, *launch_on); });
}

// All rows: tokens = 1, k = rows.
template <class ROWS, class OUT>
status dequant_all(const ROWS& in, tensor_view<OUT> out, std::optional<cudaStream_t> launch_on) {
  if (out.rows != in.rows) return status::invalid_argument;
  request<OUT> r;
  r.out = {out.data, 1, out.rows, out.cols, out.row_stride, 0};
  return dequant_rows<false>(in, r, launch_on);
}

// Selected rows: tokens = 1, k = indices.size.
template <class ROWS, class OUT>
status dequant_selected(const ROWS& in, span<const std::int32_t> indices, tensor_view<OUT> out,
                        std::optional<cudaStream_t> launch_on) {
  if (indices.size < 0 || out.rows != indices.size) return status::invalid_argument;
  if (!detail::fits_array(indices.size, sizeof(std::int32_t))) return status::invalid_argument;
  request<OUT> r;
  r.indices = indices.data;
  r.index_stride = indices.size;
  r.index_bytes = indices.size_bytes();
  r.out = {out.data, 1, out.rows, out.cols, out.row_stride, 0};
  return dequant_rows<true>(in, r, launch_on);
}

// Batched selected rows: indices [tokens, k] -> out [tokens, k, d].
template <class ROWS, class OUT>
status dequant_selected_batched(const ROWS& in, tensor_view<const std::int32_t> indices, batched_rows_view<OUT> out,
                                std::optional<cudaStream_t> launch_on) {
  DSV4KV_RETURN_IF_ERROR(detail::check_view(indices));
  if (out.tokens != indices.rows || out.rows != indices.cols) return status::invalid_argument;
  request<OUT> r;
  r.indices = indices.data;
  r.index_stride = indices.row_stride;
  r.index_bytes = detail::extent_bytes(indices);
  r.out = out;
  return dequant_rows<true>(in, r, launch_on);
}

}  // namespace

status dequant_nvfp4(const_nvfp4_rows in, tensor_view<bf16_bits> out, cudaStream_t stream) {
  return dequant_all(in, out, stream);
}
status dequant_nvfp4(const_nvfp4_rows in, tensor_view<float> out, cudaStream_t stream) {
  return dequant_all(in, out, stream);
}
status dequant_fp8(const_fp8_rows in, tensor_view<bf16_bits> out, cudaStream_t stream) {
  return dequant_all(in, out, stream);
}
status dequant_fp8(const_fp8_rows in, tensor_view<float> out, cudaStream_t stream) {
  return dequant_all(in, out, stream);
}

status dequant_nvfp4_selected(const_nvfp4_rows in, span<const std::int32_t> indices, tensor_view<bf16_bits> out,
                              cudaStream_t stream) {
  return dequant_selected(in, indices, out, stream);
}
status dequant_nvfp4_selected(const_nvfp4_rows in, span<const std::int32_t> indices, tensor_view<float> out,
                              cudaStream_t stream) {
  return dequant_selected(in, indices, out, stream);
}
status dequant_fp8_selected(const_fp8_rows in, span<const std::int32_t> indices, tensor_view<bf16_bits> out,
                            cudaStream_t stream) {
  return dequant_selected(in, indices, out, stream);
}
status dequant_fp8_selected(const_fp8_rows in, span<const std::int32_t> indices, tensor_view<float> out,
                            cudaStream_t stream) {
  return dequant_selected(in, indices, out, stream);
}

status dequant_nvfp4_selected_batched(const_nvfp4_rows in, tensor_view<const std::int32_t> indices,
                                      batched_rows_view<bf16_bits> out, cudaStream_t stream) {
  return dequant_selected_batched(in, indices, out, stream);
}
status dequant_nvfp4_selected_batched(const_nvfp4_rows in, tensor_view<const std::int32_t> indices,
                                      batched_rows_view<float> out, cudaStream_t stream) {
  return dequant_selected_batched(in, indices, out, stream);
}
status dequant_fp8_selected_batched(const_fp8_rows in, tensor_view<const std::int32_t> indices,
                                    batched_rows_view<bf16_bits> out, cudaStream_t stream) {
  return dequant_selected_batched(in, indices, out, stream);
}
status dequant_fp8_selected_batched(const_fp8_rows in, tensor_view<const std::int32_t> indices,
                                    batched_rows_view<float> out, cudaStream_t stream) {
  return dequant_selected_batched(in, indices, out, stream);
}

// --- validation only (std::nullopt: no launch) ---------------------------------------------------

status can_implement_dequant_nvfp4(const_nvfp4_rows in, tensor_view<bf16_bits> out) noexcept {
  return dequant_all(in, out, std::nullopt);
}
status can_implement_dequant_nvfp4(const_nvfp4_rows in, tensor_view<float> out) noexcept {
  return dequant_all(in, out, std::nullopt);
}
status can_implement_dequant_fp8(const_fp8_rows in, tensor_view<bf16_bits> out) noexcept {
  return dequant_all(in, out, std::nullopt);
}
status can_implement_dequant_fp8(const_fp8_rows in, tensor_view<float> out) noexcept {
  return dequant_all(in, out, std::nullopt);
}
status can_implement_dequant_nvfp4_selected(const_nvfp4_rows in, span<const std::int32_t> indices,
                                            tensor_view<bf16_bits> out) noexcept {
  return dequant_selected(in, indices, out, std::nullopt);
}
status can_implement_dequant_nvfp4_selected(const_nvfp4_rows in, span<const std::int32_t> indices,
                                            tensor_view<float> out) noexcept {
  return dequant_selected(in, indices, out, std::nullopt);
}
status can_implement_dequant_fp8_selected(const_fp8_rows in, span<const std::int32_t> indices,
                                          tensor_view<bf16_bits> out) noexcept {
  return dequant_selected(in, indices, out, std::nullopt);
}
status can_implement_dequant_fp8_selected(const_fp8_rows in, span<const std::int32_t> indices,
                                          tensor_view<float> out) noexcept {
  return dequant_selected(in, indices, out, std::nullopt);
}
status can_implement_dequant_nvfp4_selected_batched(const_nvfp4_rows in, tensor_view<const std::int32_t> indices,
                                                    batched_rows_view<bf16_bits> out) noexcept {
  return dequant_selected_batched(in, indices, out, std::nullopt);
}
status can_implement_dequant_nvfp4_selected_batched(const_nvfp4_rows in, tensor_view<const std::int32_t> indices,
                                                    batched_rows_view<float> out) noexcept {
  return dequant_selected_batched(in, indices, out, std::nullopt);
}
status can_implement_dequant_fp8_selected_batched(const_fp8_rows in, tensor_view<const std::int32_t> indices,
                                                  batched_rows_view<bf16_bits> out) noexcept {
  return dequant_selected_batched(in, indices, out, std::nullopt);
}
status can_implement_dequant_fp8_selected_batched(const_fp8_rows in, tensor_view<const std::int32_t> indices,
                                                  batched_rows_view<float> out) noexcept {
  return dequant_selected_batched(in, indices, out, std::nullopt);
}

}  // namespace dsv4kv
