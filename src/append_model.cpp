// SPDX-License-Identifier: Apache-2.0
// Host-side validation of append metadata (include/dsv4kv/append_model.hpp): the kernel's device
// checks, on host copies, plus the duplicate checks only the host can afford.
#include "dsv4kv/append_model.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace dsv4kv {
namespace {

// Records `bits` for segment s (the first offending segment, the lowest index, is kept).
void raise(append_metadata_report& r, std::int64_t s, std::uint32_t bits) {
  if (r.errors == 0 || s < r.segment) r.segment = s;
  r.errors |= bits;
}

// Raises `bits` for every use of a slot that an earlier segment (or an earlier row) already used.
// uses: (slot, segment) in the order met; sorted here, so the memory follows the batch, not the
// size of the state buffer or the pool.
void raise_duplicates(append_metadata_report& r, std::vector<std::pair<std::int64_t, std::int64_t>>& uses,
                      std::uint32_t bits) {
  std::stable_sort(uses.begin(), uses.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 1; i < uses.size(); ++i) {
    if (uses[i].first == uses[i - 1].first) raise(r, uses[i].second, bits);
  }
}

}  // namespace

status validate_append_metadata(const append_metadata& m, int ratio, std::int64_t state_slot_count,
                                std::int64_t pool_rows, append_metadata_report* report) {
  append_metadata_report r;
  const auto finish = [&](status st) {
    if (report != nullptr) *report = r;
    return st;
  };
  if (ratio != csa_ratio && ratio != hca_ratio) return finish(status::unsupported_shape);
  if (m.segments < 0 || m.total_tokens < 0 || state_slot_count < 0 || pool_rows < 0 || m.max_segment_tokens < 0) {
    return finish(status::invalid_argument);
  }
  if (m.segments == 0) return finish(status::ok);
  if (m.cu_seqlens == nullptr || m.positions == nullptr || (m.total_tokens > 0 && m.slot_mapping == nullptr)) {
    return finish(status::null_pointer);
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> state_uses, pool_uses;  // (slot, segment), in order
  for (std::int64_t s = 0; s < m.segments; ++s) {
    const std::int64_t begin = m.cu_seqlens[s], end = m.cu_seqlens[s + 1];
    if (!append_segment_bounds_ok(begin, end, m.total_tokens)) {
      raise(r, s, append_error_cu_seqlens);
      continue;
    }
    const std::int64_t length = end - begin, position = m.positions[s];
    if (length == 0) continue;  // an empty segment is ignored
    if (!append_segment_length_ok(length, m.max_segment_tokens)) {
      raise(r, s, append_error_segment_length);
      continue;
    }
    if (!append_segment_position_ok(position, length)) {
      raise(r, s, append_error_position);
      continue;
    }
    const std::int64_t slot = m.state_slots != nullptr ? m.state_slots[s] : -1;
    if (slot < -1 || slot >= state_slot_count ||
        (slot == -1 && append_segment_needs_state(ratio, position, length))) {
      raise(r, s, append_error_state_slot);
    } else if (slot >= 0) {
      state_uses.emplace_back(slot, s);
    }
    // The rows: blocks ending inside [position, position + length).
    for (std::int64_t block = position / ratio; block < (position + length) / ratio; ++block) {
      const std::int64_t token = begin + ((block + 1) * ratio - 1 - position);  // global index of its last token
      const std::int64_t pool_slot = m.slot_mapping[token];
      if (pool_slot == -1) continue;
      if (pool_slot < -1 || pool_slot >= pool_rows) {
        raise(r, s, append_error_pool_slot);
        continue;
      }
      pool_uses.emplace_back(pool_slot, s);
    }
  }
  raise_duplicates(r, state_uses, append_error_duplicate_state);
  raise_duplicates(r, pool_uses, append_error_duplicate_pool);
  return finish(r.errors == 0 ? status::ok : status::invalid_argument);
}

}  // namespace dsv4kv
