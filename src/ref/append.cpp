// SPDX-License-Identifier: Apache-2.0
// Host reference of the append model (include/dsv4kv/ref/append.hpp). Written to be read next to
// SPEC §7 and append_model.hpp, not to be fast.
#include "dsv4kv/ref/append.hpp"

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "compress_row.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/ref/hadamard.hpp"
#include "dsv4kv/ref/rmsnorm.hpp"
#include "dsv4kv/ref/rope.hpp"

namespace dsv4kv::ref {
namespace {

// The header of state slot `slot`.
append_state_header read_header(const std::uint8_t* slot) {
  append_state_header h;
  std::memcpy(&h, slot, sizeof h);
  return h;
}

}  // namespace

template <class Out>
status append(const append_problem& p, tensor_view<const float> kv, tensor_view<const float> gate,
              const append_metadata& m, span<std::uint8_t> state, tensor_view<Out> rows, std::uint8_t* written) {
  const int ratio = p.ratio;
  const std::int64_t d = p.d, width = compress_input_width(ratio, d);
  const std::int64_t slot_bytes = append_state_bytes(ratio, d);
  if (d <= 0 || slot_bytes <= 0 || state.size < 0 || state.size % slot_bytes != 0) return status::invalid_argument;
  DSV4KV_RETURN_IF_ERROR(detail::check_view(kv, m.total_tokens, width));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(gate, m.total_tokens, width));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(rows));
  if (rows.rows > 0 && rows.cols != d) return status::invalid_argument;
  const std::int64_t slots = state.size / slot_bytes;
  DSV4KV_RETURN_IF_ERROR(validate_append_metadata(m, ratio, slots, rows.rows));
  if (m.segments > 0 && slots > 0 && state.data == nullptr) return status::null_pointer;

  // Every state read must continue its sequence: checked before anything changes.
  for (std::int64_t s = 0; s < m.segments; ++s) {
    const std::int64_t length = m.cu_seqlens[s + 1] - m.cu_seqlens[s], position = m.positions[s];
    const std::int64_t slot = m.state_slots ? m.state_slots[s] : -1;
    if (length == 0 || position == 0 || slot < 0) continue;
    const append_state_header h = read_header(state.data + slot * slot_bytes);
    if (h.next_position != position || h.tag != append_state_tag(ratio, d)) return status::invalid_argument;
  }

  const std::int64_t ring_floats = append_state_ring_tokens(ratio) * width;
  std::vector<Out> row(static_cast<std::size_t>(d));
  detail::ref_compress_row_scratch scratch;
  for (std::int64_t s = 0; s < m.segments; ++s) {
    const std::int64_t tok0 = m.cu_seqlens[s], length = m.cu_seqlens[s + 1] - tok0, position = m.positions[s];
    const std::int64_t slot = m.state_slots ? m.state_slots[s] : -1;
    if (length == 0) continue;
    std::uint8_t* st = slot >= 0 ? state.data + slot * slot_bytes : nullptr;
    float* ring_kv = st ? reinterpret_cast<float*>(st + append_state_header_bytes) : nullptr;  // [R, c*d]
    float* ring_gate = st ? ring_kv + ring_floats : nullptr;                                   // [R, c*d]
    // Token q of the sequence: new when q >= position, else from the ring.
    const auto token = [&](std::int64_t q) -> std::pair<const float*, const float*> {
      if (q >= position) return {kv.row(tok0 + q - position), gate.row(tok0 + q - position)};
      const std::int64_t r = append_state_ring_row(ratio, q) * width;
      return {ring_kv + r, ring_gate + r};
    };
    for (std::int64_t block = position / ratio; block < (position + length) / ratio; ++block) {
      const std::int64_t pool_slot = m.slot_mapping[tok0 + (block + 1) * ratio - 1 - position];
      if (pool_slot < 0) continue;
      detail::ref_compress_row(token, block, ratio, d, p.position_bias, row.data(), scratch);
      const tensor_view<Out> one = make_tensor_view(row.data(), 1, d);
      if (p.norm_weight != nullptr) DSV4KV_RETURN_IF_ERROR(rmsnorm(one, p.norm_weight, p.eps));
      if (p.rope.rope_dim != 0) {
        const std::int32_t pos = static_cast<std::int32_t>(block * ratio);
        DSV4KV_RETURN_IF_ERROR(rope(one, span<const std::int32_t>{&pos, 1}, p.rope));
      }
      if (p.hadamard) DSV4KV_RETURN_IF_ERROR(hadamard_rotate(one));
      for (std::int64_t j = 0; j < d; ++j) rows(pool_slot, j) = row[static_cast<std::size_t>(j)];
      if (written != nullptr) written[pool_slot] = 1;
    }
    if (st == nullptr) continue;
    // The new state: the new tokens the next append needs, into their ring rows, then the header.
    const std::int64_t end = position + length;
    const std::int64_t first_kept = append_state_first_kept(ratio, end);
    for (std::int64_t q = first_kept > position ? first_kept : position; q < end; ++q) {
      const std::int64_t r = append_state_ring_row(ratio, q) * width;
      std::memcpy(ring_kv + r, kv.row(tok0 + q - position), static_cast<std::size_t>(width) * sizeof(float));
      std::memcpy(ring_gate + r, gate.row(tok0 + q - position), static_cast<std::size_t>(width) * sizeof(float));
    }
    const append_state_header h{end, append_state_tag(ratio, d), 0u};
    std::memcpy(st, &h, sizeof h);
  }
  return status::ok;
}

template status append<float>(const append_problem&, tensor_view<const float>, tensor_view<const float>,
                              const append_metadata&, span<std::uint8_t>, tensor_view<float>, std::uint8_t*);
template status append<double>(const append_problem&, tensor_view<const float>, tensor_view<const float>,
                               const append_metadata&, span<std::uint8_t>, tensor_view<double>, std::uint8_t*);

}  // namespace dsv4kv::ref
