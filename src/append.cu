// SPDX-License-Identifier: Apache-2.0
// Host API of append (include/dsv4kv/append.hpp) and the fused write path of write_path.hpp (its
// prefill case): validation, the launches of append_kernel (include/dsv4kv/kernels/append.cuh)
// through compress's (m, d) dispatch switch, and the state reset.
#include <array>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "compress_common.cuh"
#include "dsv4kv/append.hpp"
#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/kernels/append.cuh"
#include "stages.hpp"

namespace dsv4kv::detail {
namespace {

constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();

// The pool writer of each output format.
nvfp4_pool_writer writer_of(const nvfp4_rows& out) {
  return {out.codes, out.block_scales, out.global_scales, out.rows};
}
fp8_pool_writer writer_of(const fp8_rows& out, fp8_scale_mode mode) { return {out.codes, out.scales, out.rows, mode}; }

// Launches append_kernel<m, d, ..., V> for kernel arguments k over `units(L{})` units (CTAs, or
// HCA clusters), L its layout.
template <append_variant V, class InT, class BiasT, class WRITER, class UNITS>
status launch_append_kernel(int ratio, std::int64_t d, const append_kernel_params<InT, BiasT, WRITER>& k, UNITS&& units,
                            bool pdl, cudaStream_t stream) {
  return dispatch_compress_shape(ratio, d, [&](auto m, auto dd) {
    constexpr int M = decltype(m)::value, D = decltype(dd)::value;
    using L = append_layout<M, D, V, InT>;
    return launch_compress_layout<L>(append_kernel<M, D, InT, BiasT, WRITER, V>, units(L{}), pdl, stream, k);
  });
}

// The variant of an append of n tokens in b >= 1 segments (append_variant_for) -> f(variant) as a
// compile-time constant.
template <class F>
status dispatch_append_variant(int ratio, std::int64_t n, std::int64_t b, F&& f) {
  using single = std::integral_constant<append_variant, append_variant::single>;
  using batch = std::integral_constant<append_variant, append_variant::batch>;
  return append_variant_for(ratio, n, b) == append_variant::single ? f(single{}) : f(batch{});
}

// --- fused write path (one prefill) ------------------------------------------------------------------

// Kernel arguments shared by a prefill and an append batch: projections, row math, output.
// P is compress_params<IN, BIAS> or append_params<IN, BIAS>.
template <class IN, class BIAS, class WRITER, class P>
append_kernel_params<device_element_t<IN>, device_element_t<BIAS>, WRITER> common_kernel_params(const P& p,
                                                                                               const WRITER& out) {
  using InT = device_element_t<IN>;
  append_kernel_params<InT, device_element_t<BIAS>, WRITER> k;
  k.input = {reinterpret_cast<const InT*>(p.kv.data), p.kv.row_stride, reinterpret_cast<const InT*>(p.gate.data),
             p.gate.row_stride};
  k.total_tokens = p.kv.rows;
  k.row = compress_row_params_of<device_element_t<BIAS>>(p);
  k.out = out;
  return k;
}

// Kernel arguments of one prefill: one segment at position 0, no state, row i -> pool row i.
template <class IN, class BIAS, class WRITER>
append_kernel_params<device_element_t<IN>, device_element_t<BIAS>, WRITER> prefill_kernel_params(
    const compress_params<IN, BIAS>& p, const WRITER& out) {
  auto k = common_kernel_params<IN, BIAS>(p, out);
  k.rope_start = p.start_position;
  k.rope_positions = p.positions;
  return k;
}

// The fused prefill's launch: prefill_units of its layout.
template <class IN, class BIAS, class WRITER>
status launch_fused_prefill(const compress_params<IN, BIAS>& p, std::int64_t rows, std::int64_t d, const WRITER& out,
                            cudaStream_t stream) {
  if (rows == 0) return status::ok;
  return launch_append_kernel<append_variant::prefill>(
      p.ratio, d, prefill_kernel_params(p, out),
      [&](auto l) { return prefill_units<decltype(l)>(rows); }, false, stream);
}

// --- append ---------------------------------------------------------------------------------------------

// Every byte range an append reads.
template <class IN, class BIAS>
std::array<byte_range, 10> append_inputs(const append_params<IN, BIAS>& p, std::int64_t d) {
  const std::int64_t width = compress_input_width(p.ratio, d);
  const std::int64_t b = p.segments, n = p.kv.rows;
  const bool rope = p.rope.rope_dim != 0;
  const auto i32 = [](std::int64_t count) { return count * static_cast<std::int64_t>(sizeof(std::int32_t)); };
  return {{range_of(p.kv),
           range_of(p.gate),
           {p.position_bias, p.position_bias ? p.ratio * width * static_cast<std::int64_t>(sizeof(BIAS)) : 0},
           {p.norm_weight, p.norm_weight ? d * static_cast<std::int64_t>(sizeof(float)) : 0},
           {p.rope.cos, rope ? rope_table_bytes(p.rope) : 0},
           {p.rope.sin, rope ? rope_table_bytes(p.rope) : 0},
           {p.cu_seqlens, i32(b + 1)},
           {p.positions, i32(b)},
           {p.state_slots, p.state_slots ? i32(b) : 0},
           {p.slot_mapping, i32(n)}}};
}

// True when the grid of an append launch over n tokens in 1 <= b <= 2^31 - 1 segments of at most
// max_tokens tokens (declared, 0: none; append_grid_units of the layout of the variant launch_append
// picks) fits a 1-D grid.
bool append_grid_fits(int ratio, std::int64_t d, std::int64_t n, std::int64_t b, std::int64_t max_tokens) {
  bool fits = false;
  (void)dispatch_append_variant(ratio, n, b, [&](auto v) {
    return dispatch_compress_shape(ratio, d, [&](auto m, auto dd) {
      // The grid does not depend on the input type (append_layout), so FP32's layout stands for both.
      using L = append_layout<decltype(m)::value, decltype(dd)::value, decltype(v)::value>;
      using LB = append_layout<decltype(m)::value, decltype(dd)::value, decltype(v)::value, __nv_bfloat16>;
      static_assert(L::rows_per_cta == LB::rows_per_cta && L::cluster == LB::cluster &&
                        (decltype(v)::value != append_variant::batch || L::threads == LB::threads),
                    "append grid units are the same for FP32 and BF16 inputs");
      fits = append_grid_units<decltype(v)::value, L>(n, b, decltype(m)::value, max_tokens) <= max_grid_ctas / L::cluster;
      return status::ok;
    });
  });
  return fits;
}

// Checks of an append whose pool rows are `out_ranges` (the pool's arrays) of width d, after the
// format's own output checks.
template <class IN, class BIAS, class RANGES>
status check_append(const append_params<IN, BIAS>& p, std::int64_t d, const RANGES& out_ranges) {
  DSV4KV_RETURN_IF_ERROR(check_compress_inputs(p, d));
  const std::int64_t n = p.kv.rows, b = p.segments;
  if (b < 0 || p.state.slots < 0 || p.max_segment_tokens < 0) return status::invalid_argument;
  if (n > int32_max) return status::invalid_argument;  // token indices are int32
  if (b > int32_max || (b > 0 && !append_grid_fits(p.ratio, d, n, b, p.max_segment_tokens))) {
    return status::invalid_argument;  // the launch's grid
  }
  if (b > 0) {
    if (p.cu_seqlens == nullptr || p.positions == nullptr || (n > 0 && p.slot_mapping == nullptr)) {
      return status::null_pointer;
    }
  }
  if (!fits_array(p.state.slots, append_state_bytes(p.ratio, d))) return status::invalid_argument;
  const std::int64_t state_bytes = p.state.slots * append_state_bytes(p.ratio, d);
  if (p.state.slots > 0 && p.state.data == nullptr) return status::null_pointer;
  if (!is_aligned(p.cu_seqlens, 4) || !is_aligned(p.positions, 4) || !is_aligned(p.state_slots, 4) ||
      !is_aligned(p.slot_mapping, 4) || !is_aligned(p.error_flags, 4) ||
      !is_aligned(p.state.data, append_state_alignment)) {
    return status::misaligned;
  }
  // Written: the pool's arrays, the states, the error flags. Read: every input.
  const byte_range state{p.state.data, state_bytes};
  const byte_range flags{p.error_flags, p.error_flags ? static_cast<std::int64_t>(sizeof(std::uint32_t)) : 0};
  const auto inputs = append_inputs(p, d);
  for (const byte_range& r : inputs) {
    if (!addressable(r.data, r.bytes)) return status::invalid_argument;
  }
  if (!addressable(state.data, state.bytes) || !addressable(flags.data, flags.bytes)) return status::invalid_argument;
  for (const byte_range& o : out_ranges) {
    if (overlaps_any(o, inputs) || overlaps_any(o, {state, flags})) return status::aliasing;
  }
  if (overlaps_any(state, inputs) || overlaps_any(flags, inputs) || overlaps_any(state, {flags})) {
    return status::aliasing;
  }
  return status::ok;
}

// Kernel arguments of an append batch.
template <class IN, class BIAS, class WRITER>
append_kernel_params<device_element_t<IN>, device_element_t<BIAS>, WRITER> append_kernel_params_of(
    const append_params<IN, BIAS>& p, const WRITER& out) {
  auto k = common_kernel_params<IN, BIAS>(p, out);
  k.segments = p.segments;
  k.cu_seqlens = p.cu_seqlens;
  k.positions = p.positions;
  k.state_slots = p.state_slots;
  k.slot_mapping = p.slot_mapping;
  k.state = p.state.data;
  k.state_count = p.state.slots;
  k.error_flags = p.error_flags;
  k.max_segment_tokens = p.max_segment_tokens;
  return k;
}

// The append launch: the variant append_variant_for picks, over its append_grid_units.
template <class IN, class BIAS, class WRITER>
status launch_append(const append_params<IN, BIAS>& p, std::int64_t d, const WRITER& out, cudaStream_t stream) {
  if (p.segments == 0 || p.kv.rows == 0) return status::ok;
  const std::int64_t n = p.kv.rows, b = p.segments, m = p.ratio;
  const auto k = append_kernel_params_of(p, out);
  return dispatch_append_variant(p.ratio, n, b, [&](auto v) {
    return launch_append_kernel<decltype(v)::value>(
        p.ratio, d, k,
        [&](auto l) { return append_grid_units<decltype(v)::value, decltype(l)>(n, b, m, p.max_segment_tokens); },
        p.pdl, stream);
  });
}

}  // namespace

template <class IN, class BIAS>
status check_fused_write_path_nvfp4(const compress_params<IN, BIAS>& p, const nvfp4_rows& out) {
  DSV4KV_RETURN_IF_ERROR(check_compress_prefill(p, out.rows, out.d));
  DSV4KV_RETURN_IF_ERROR(check_nvfp4_output(out));
  const auto inputs = compress_inputs(p, out.rows, out.d);
  for (const byte_range& o : nvfp4_ranges(out)) {
    if (overlaps_any(o, inputs)) return status::aliasing;
  }
  return status::ok;
}

template <class IN, class BIAS>
status launch_fused_write_path_nvfp4(const compress_params<IN, BIAS>& p, const nvfp4_rows& out, cudaStream_t stream) {
  return launch_fused_prefill(p, out.rows, out.d, writer_of(out), stream);
}

template <class IN, class BIAS>
status check_fused_write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode mode, const fp8_rows& out) {
  DSV4KV_RETURN_IF_ERROR(check_compress_prefill(p, out.rows, out.d));
  DSV4KV_RETURN_IF_ERROR(check_fp8_output(mode, out));
  const auto inputs = compress_inputs(p, out.rows, out.d);
  for (const byte_range& o : fp8_ranges(out)) {
    if (overlaps_any(o, inputs)) return status::aliasing;
  }
  return status::ok;
}

template <class IN, class BIAS>
status launch_fused_write_path_fp8(const compress_params<IN, BIAS>& p, fp8_scale_mode mode, const fp8_rows& out,
                                   cudaStream_t stream) {
  return launch_fused_prefill(p, out.rows, out.d, writer_of(out, mode), stream);
}

#define DSV4KV_INSTANTIATE_FUSED_WRITE_PATH(IN, BIAS)                                                             \
  template status check_fused_write_path_nvfp4<IN, BIAS>(const compress_params<IN, BIAS>&, const nvfp4_rows&);   \
  template status launch_fused_write_path_nvfp4<IN, BIAS>(const compress_params<IN, BIAS>&, const nvfp4_rows&,   \
                                                          cudaStream_t);                                         \
  template status check_fused_write_path_fp8<IN, BIAS>(const compress_params<IN, BIAS>&, fp8_scale_mode,         \
                                                       const fp8_rows&);                                         \
  template status launch_fused_write_path_fp8<IN, BIAS>(const compress_params<IN, BIAS>&, fp8_scale_mode,        \
                                                        const fp8_rows&, cudaStream_t);
DSV4KV_INSTANTIATE_FUSED_WRITE_PATH(float, float)
DSV4KV_INSTANTIATE_FUSED_WRITE_PATH(float, std::uint16_t)
DSV4KV_INSTANTIATE_FUSED_WRITE_PATH(std::uint16_t, float)
DSV4KV_INSTANTIATE_FUSED_WRITE_PATH(std::uint16_t, std::uint16_t)
#undef DSV4KV_INSTANTIATE_FUSED_WRITE_PATH

}  // namespace dsv4kv::detail

namespace dsv4kv {

template <class IN, class BIAS>
status can_implement_append_nvfp4(const append_params<IN, BIAS>& p, nvfp4_rows pool) noexcept {
  DSV4KV_RETURN_IF_ERROR(detail::check_nvfp4_output(pool));
  return detail::check_append(p, pool.d, detail::nvfp4_ranges(pool));
}

template <class IN, class BIAS>
status can_implement_append_fp8(const append_params<IN, BIAS>& p, fp8_scale_mode mode, fp8_rows pool) noexcept {
  DSV4KV_RETURN_IF_ERROR(detail::check_fp8_output(mode, pool));
  return detail::check_append(p, pool.d, detail::fp8_ranges(pool));
}

template <class IN, class BIAS>
status append_nvfp4(const append_params<IN, BIAS>& p, nvfp4_rows pool, cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(can_implement_append_nvfp4(p, pool));
  return detail::launch_append(p, pool.d, detail::writer_of(pool), stream);
}

template <class IN, class BIAS>
status append_fp8(const append_params<IN, BIAS>& p, fp8_scale_mode mode, fp8_rows pool, cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(can_implement_append_fp8(p, mode, pool));
  return detail::launch_append(p, pool.d, detail::writer_of(pool, mode), stream);
}

status reset_append_state(append_state state, int ratio, std::int64_t d, const std::int32_t* slots, std::int64_t count,
                          cudaStream_t stream) {
  DSV4KV_RETURN_IF_ERROR(detail::dispatch_compress_shape(ratio, d, [](auto, auto) { return status::ok; }));
  if (count < 0 || state.slots < 0) return status::invalid_argument;
  if (count == 0) return status::ok;
  if (slots == nullptr || (state.slots > 0 && state.data == nullptr)) return status::null_pointer;
  if (!detail::is_aligned(slots, 4) || !detail::is_aligned(state.data, append_state_alignment)) return status::misaligned;
  const std::int64_t slot_bytes = append_state_bytes(ratio, d);
  if (!detail::fits_array(count, 4) || !detail::fits_array(state.slots, slot_bytes) ||
      !detail::addressable(slots, count * 4) || !detail::addressable(state.data, state.slots * slot_bytes)) {
    return status::invalid_argument;
  }
  if (detail::ranges_overlap(state.data, state.slots * slot_bytes, slots,
                             count * static_cast<std::int64_t>(sizeof(std::int32_t)))) {
    return status::aliasing;
  }
  constexpr int threads = 128;
  const std::int64_t ctas = (count + threads - 1) / threads;
  if (ctas > detail::int32_max) return status::invalid_argument;
  append_state_reset_kernel<threads>
      <<<static_cast<unsigned>(ctas), threads, 0, stream>>>(state.data, state.slots, slot_bytes, slots, count);
  return last_launch_status();
}

#define DSV4KV_INSTANTIATE_APPEND(IN, BIAS)                                                                     \
  template status append_nvfp4<IN, BIAS>(const append_params<IN, BIAS>&, nvfp4_rows, cudaStream_t);            \
  template status append_fp8<IN, BIAS>(const append_params<IN, BIAS>&, fp8_scale_mode, fp8_rows, cudaStream_t); \
  template status can_implement_append_nvfp4<IN, BIAS>(const append_params<IN, BIAS>&, nvfp4_rows) noexcept;   \
  template status can_implement_append_fp8<IN, BIAS>(const append_params<IN, BIAS>&, fp8_scale_mode, fp8_rows) noexcept;
DSV4KV_INSTANTIATE_APPEND(float, float)
DSV4KV_INSTANTIATE_APPEND(float, std::uint16_t)
DSV4KV_INSTANTIATE_APPEND(std::uint16_t, float)
DSV4KV_INSTANTIATE_APPEND(std::uint16_t, std::uint16_t)
#undef DSV4KV_INSTANTIATE_APPEND

}  // namespace dsv4kv
