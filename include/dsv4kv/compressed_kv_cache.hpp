// SPDX-License-Identifier: Apache-2.0
#pragma once
//! compressed_kv_cache: the seed's KVCache (CompressedKVCache) in C++ — a non-owning view over one
//! attention layer's compressed rows in memory the engine owns (kv_cache_layout.hpp), plus the
//! number of rows written so far.
//!
//!   write: append_prefill()          projections of one prefill -> write path (write_path.hpp)
//!                                    -> the next rows (main KV as NVFP4; CSA indexer keys as FP8)
//!   read:  read_main()               all written main-KV rows -> BF16            (seed: comp_kv)
//!          read_main_selected*()     top-k rows (int32, -1 allowed) -> BF16      (comp_kv_selective)
//!          read_indexer()            all written indexer keys -> BF16            (comp_idx_kv)
//!
//! Every call enqueues on the caller's stream and never synchronizes, allocates, prints or throws;
//! all of them can be captured in a CUDA graph. On bad arguments a call launches nothing, changes
//! no byte and no row count, and returns the reason. The row count is host bookkeeping: a prefill
//! of T tokens emits floor(T / m) rows, known without reading the GPU, and the count advances when
//! the call is enqueued. (A captured append therefore writes the same rows on every replay.) On
//! cuda_error (a failed launch) the count does not advance and the rows it was writing are
//! unspecified.
//!
//! One prefill per append_prefill call, each from position 0 of its sequence (a second call
//! stores another prefill's rows after the first's). Continuing a sequence — chunked prefill,
//! decode — is the streaming append (append.hpp), which can write into main_storage() /
//! indexer_storage() as its pool.
//!
//! Plain C++: include it without a CUDA compiler; link dsv4kv::dsv4kv for the write and read
//! calls. Creation and the accessors are inline and need no CUDA at all.

#include <cuda_runtime_api.h>

#include <cstdint>

#include "dsv4kv/compress.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/kv_cache_layout.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"
#include "dsv4kv/write_path.hpp"

namespace dsv4kv {

//! Alignment (bytes) of each array of a cache created from explicit row views: the widest vector
//! access of the kernels that touch them.
inline constexpr std::int64_t kv_cache_array_alignment = 16;

//! A non-owning view of one layer's compressed KV cache (device memory) and its row count.
//! Trivially copyable; copies share the memory but count rows independently.
class compressed_kv_cache {
 public:
  //! An empty cache: capacity 0, no indexer.
  compressed_kv_cache() = default;

  //! A cache over one allocation laid out by make_kv_cache_layout: `base` (device memory) aligned
  //! to kv_cache_alignment, `bytes` >= layout.total_bytes. Returns invalid_argument when `layout`
  //! is not what make_kv_cache_layout gives for layout.shape or bytes is too small, null_pointer,
  //! misaligned. On success `out` holds the view with 0 rows written; otherwise it is unchanged.
  [[nodiscard]] static status create(void* base, std::int64_t bytes, const kv_cache_layout& layout,
                                     compressed_kv_cache& out) noexcept {
    kv_cache_layout expected{};
    DSV4KV_RETURN_IF_ERROR(make_kv_cache_layout(layout.shape, expected));
    if (!same_layout(layout, expected) || bytes < layout.total_bytes) return status::invalid_argument;
    if (layout.total_bytes > 0 && base == nullptr) return status::null_pointer;
    if (!detail::is_aligned(base, kv_cache_alignment)) return status::misaligned;
    if (!detail::addressable(base, layout.total_bytes)) return status::invalid_argument;
    const kv_cache_views v = kv_cache_views_at(layout, base);
    return create(v.main, v.indexer, out);
  }

  //! A cache over explicit arrays: main [capacity, main.d] NVFP4 and, for a CSA layer, indexer
  //! [capacity, indexer.d] FP8 (indexer.d == 0: none). Every array 16-byte aligned, all disjoint.
  //! Returns invalid_argument (widths as in kv_cache_shape, indexer.rows != main.rows when present),
  //! null_pointer, misaligned, aliasing. On success `out` holds the view with 0 rows written.
  [[nodiscard]] static status create(nvfp4_rows main, fp8_rows indexer, compressed_kv_cache& out) noexcept {
    const bool with_indexer = indexer.d != 0;
    DSV4KV_RETURN_IF_ERROR(check_kv_cache_shape({main.rows, main.d, indexer.d}));
    if (with_indexer && indexer.rows != main.rows) return status::invalid_argument;
    if (!with_indexer) indexer = fp8_rows{};
    if (main.rows > 0 && (main.codes == nullptr || main.block_scales == nullptr || main.global_scales == nullptr)) {
      return status::null_pointer;
    }
    if (with_indexer && indexer.rows > 0 && (indexer.codes == nullptr || indexer.scales == nullptr)) {
      return status::null_pointer;
    }
    constexpr auto a = static_cast<std::size_t>(kv_cache_array_alignment);
    if (!detail::is_aligned(main.codes, a) || !detail::is_aligned(main.block_scales, a) ||
        !detail::is_aligned(main.global_scales, a) || !detail::is_aligned(indexer.codes, a) ||
        !detail::is_aligned(indexer.scales, a)) {
      return status::misaligned;
    }
    const auto m = detail::nvfp4_ranges(main);
    const auto i = detail::fp8_ranges(indexer);
    for (const detail::byte_range& r : {m[0], m[1], m[2], i[0], i[1]}) {
      if (!detail::addressable(r.data, r.bytes)) return status::invalid_argument;
    }
    if (!detail::pairwise_disjoint({m[0], m[1], m[2], i[0], i[1]})) return status::aliasing;
    compressed_kv_cache c;
    c.main_ = main;
    c.indexer_ = indexer;
    out = c;
    return status::ok;
  }

  // --- size and contents ------------------------------------------------------------------------

  //! Rows each stream can hold.
  [[nodiscard]] std::int64_t capacity() const noexcept { return main_.rows; }
  //! Rows written so far (main KV and indexer keys alike).
  [[nodiscard]] std::int64_t rows() const noexcept { return rows_; }
  //! Rows that can still be appended.
  [[nodiscard]] std::int64_t free_rows() const noexcept { return main_.rows - rows_; }
  //! True for a CSA layer's cache (indexer keys stored beside the main KV).
  [[nodiscard]] bool has_indexer() const noexcept { return indexer_.d != 0; }
  //! Width of the main KV rows (512 for DeepSeek-V4).
  [[nodiscard]] std::int64_t main_d() const noexcept { return main_.d; }
  //! Width of the indexer keys (128 for DeepSeek-V4; 0 without an indexer).
  [[nodiscard]] std::int64_t indexer_d() const noexcept { return indexer_.d; }
  //! The written main-KV rows [rows(), main_d] (what an attention kernel reads).
  [[nodiscard]] const_nvfp4_rows main_rows() const noexcept {
    return {main_.codes, main_.block_scales, main_.global_scales, rows_, main_.d};
  }
  //! The written indexer keys [rows(), indexer_d] (empty without an indexer).
  [[nodiscard]] const_fp8_rows indexer_rows() const noexcept {
    return {indexer_.codes, indexer_.scales, has_indexer() ? rows_ : 0, indexer_.d};
  }
  //! All main-KV storage [capacity, main_d], written or not.
  [[nodiscard]] nvfp4_rows main_storage() const noexcept { return main_; }
  //! All indexer-key storage [capacity, indexer_d].
  [[nodiscard]] fp8_rows indexer_storage() const noexcept { return indexer_; }
  //! Forgets every row (a new sequence); touches no memory.
  void reset() noexcept { rows_ = 0; }

  // --- write --------------------------------------------------------------------------------------

  //! Bytes of device workspace an append of `new_rows` rows needs in write_path_mode::two_kernel
  //! (16-byte aligned): the main KV's write-path workspace, then (CSA) the indexer's at a
  //! kv_cache_alignment offset. 0 for new_rows outside [1, kv_cache_max_capacity]. The fused mode
  //! (the default) needs none.
  [[nodiscard]] std::int64_t workspace_bytes(std::int64_t new_rows) const noexcept;
  //! The FP32 main-KV rows [new_rows, main_d] inside a workspace after a two-kernel append of
  //! new_rows rows: the compressed, normalised, rotated rows the quantizer read.
  [[nodiscard]] tensor_view<float> workspace_main_rows(span<std::uint8_t> workspace, std::int64_t new_rows) const noexcept;
  //! The FP32 indexer rows [new_rows, indexer_d] inside a workspace after a two-kernel append
  //! (after the Hadamard rotation when the append asked for it).
  [[nodiscard]] tensor_view<float> workspace_indexer_rows(span<std::uint8_t> workspace,
                                                          std::int64_t new_rows) const noexcept;

  //! HCA (or any cache without an indexer): appends the rows of one prefill. main = projections
  //! [T, c*main_d] of one sequence from position 0 (compress_params, device memory); its
  //! n = floor(T / main.ratio) rows land at [rows(), rows() + n), written by write_path_nvfp4 in
  //! `mode`. workspace: two_kernel only (device, 16-byte aligned, >= workspace_bytes(n)); the
  //! fused mode (the default) neither uses nor checks it: pass {}. Returns capacity_exceeded when
  //! n > free_rows(), invalid_argument when the cache has an indexer (use the other overload),
  //! aliasing when an input lies in the cache or the workspace, or the workspace in the cache,
  //! unsupported_shape for a ratio other than 4 or 128, and every status of write_path_nvfp4.
  //! Instantiated for IN, BIAS in {float, std::uint16_t}.
  template <class IN, class BIAS>
  [[nodiscard]] status append_prefill(const compress_params<IN, BIAS>& main, span<std::uint8_t> workspace,
                                      cudaStream_t stream, write_path_mode mode = write_path_mode::fused);

  //! CSA: appends one prefill's main KV (NVFP4) and indexer keys (FP8 with scale `indexer_scale`),
  //! n = floor(T / m) rows of each. main and indexer: the same ratio and token count T; indexer
  //! usually has hadamard = true. Everything is validated before anything launches: on any error
  //! neither stream is written. Same statuses as above, plus invalid_argument when the cache has no
  //! indexer or the two streams disagree on ratio or T, and every status of write_path_fp8.
  template <class IN, class BIAS>
  [[nodiscard]] status append_prefill(const compress_params<IN, BIAS>& main, const compress_params<IN, BIAS>& indexer,
                                      fp8_scale_mode indexer_scale, span<std::uint8_t> workspace, cudaStream_t stream,
                                      write_path_mode mode = write_path_mode::fused);

  //! The validation of append_prefill alone (CUTLASS's can_implement): the status append_prefill
  //! returns for these arguments before it launches anything. Never launches, never touches memory.
  template <class IN, class BIAS>
  [[nodiscard]] status can_implement_append_prefill(const compress_params<IN, BIAS>& main, span<std::uint8_t> workspace,
                                                    write_path_mode mode = write_path_mode::fused) const noexcept;
  //! The validation of the CSA append_prefill alone.
  template <class IN, class BIAS>
  [[nodiscard]] status can_implement_append_prefill(const compress_params<IN, BIAS>& main,
                                                    const compress_params<IN, BIAS>& indexer,
                                                    fp8_scale_mode indexer_scale, span<std::uint8_t> workspace,
                                                    write_path_mode mode = write_path_mode::fused) const noexcept;

  // --- read (validation and statuses as in dequant.hpp; also aliasing when `out` overlaps the cache
  // --- storage, written rows or not) -------------------------------------------------------------

  //! All written main-KV rows -> BF16 out [rows(), main_d].
  [[nodiscard]] status read_main(tensor_view<bf16_bits> out, cudaStream_t stream) const;
  //! Main-KV rows indices[0..k) -> BF16 out [k, main_d]; -1 or an index outside [0, rows()) gives a
  //! +0 row (rows past rows() are never read, even inside the capacity).
  [[nodiscard]] status read_main_selected(span<const std::int32_t> indices, tensor_view<bf16_bits> out,
                                          cudaStream_t stream) const;
  //! Per query token t: out (t, j) = main-KV row indices(t, j) as BF16 ([tokens, k] -> [tokens, k,
  //! main_d]); -1 or outside [0, rows()) -> +0 row.
  [[nodiscard]] status read_main_selected_batched(tensor_view<const std::int32_t> indices,
                                                  batched_rows_view<bf16_bits> out, cudaStream_t stream) const;
  //! All written indexer keys -> BF16 out [rows(), indexer_d] (invalid_argument without an indexer).
  [[nodiscard]] status read_indexer(tensor_view<bf16_bits> out, cudaStream_t stream) const;

 private:
  struct append_plan;
  template <class IN, class BIAS>
  status plan_append(const compress_params<IN, BIAS>& main, const compress_params<IN, BIAS>* indexer,
                     fp8_scale_mode indexer_scale, span<std::uint8_t> workspace, write_path_mode mode,
                     append_plan& plan) const noexcept;

  nvfp4_rows main_{};    // [capacity, main_d]
  fp8_rows indexer_{};   // [capacity, indexer_d] or empty
  std::int64_t rows_ = 0;
};

}  // namespace dsv4kv
