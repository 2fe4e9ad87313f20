// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test-only fixtures of the append, determinism and scale GPU tests: a model stream (ratio, width,
// format, projection types), one write path call of it, and append plans (launches of segments of
// copies of one sequence) whose device buffers are all prepared before the first launch, so that a plan
// can be enqueued on a stream without any allocation or synchronisation (concurrently with
// another plan on another stream). Outputs, pools and states carry guard bands
// (tests/common/guarded_buffer.hpp).
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

#include "device_buffer.hpp"
#include "dsv4kv/append.hpp"
#include "dsv4kv/write_path.hpp"
#include "guarded_buffer.hpp"
#include "write_path_fixtures.hpp"

namespace dsv4kv::test {

// One model stream: CSA-512 / HCA-512 main KV (NVFP4) or the CSA-128 indexer (Hadamard, FP8).
struct stream_spec {
  const char* name;
  int ratio;
  std::int64_t d;
  bool nvfp4;            // else FP8
  bool hadamard;         // indexer keys
  compress_options opt;  // {bf16_inputs, bias, bf16_bias, norm}
  fp8_scale_mode mode = fp8_scale_mode::fp32;

  epilogue_options epilogue() const {
    epilogue_options e;
    e.rope = true;
    e.hadamard = hadamard;
    return e;
  }
  std::int64_t width() const { return compress_input_width(ratio, d); }
};

// Bytes per row of each array of a stream's format: codes, scales, global scales (NVFP4 only).
struct pool_row_bytes {
  std::int64_t code, scale, global;
};
inline pool_row_bytes row_bytes_of(const stream_spec& s) {
  return s.nvfp4 ? pool_row_bytes{s.d / 2, s.d / 16, 4} : pool_row_bytes{s.d, 4, 0};
}

// One write path call of the stream on `stream` (no synchronisation).
inline status write_path_call(const stream_spec& s, const compress_case& c, const device_compress_case& dev,
                              rope_table_view table, const run_outputs& out, span<std::uint8_t> ws,
                              write_path_mode mode, cudaStream_t stream, const epilogue_options* e = nullptr) {
  const epilogue_options ep = e != nullptr ? *e : s.epilogue();
  return with_params(c, dev, ep, table, [&](const auto& p) {
    return s.nvfp4 ? write_path_nvfp4(p, out.nvfp4_view(), ws, stream, mode)
                   : write_path_fp8(p, s.mode, out.fp8_view(), ws, stream, mode);
  });
}

// The one-shot write path's bytes of case c (two-kernel chain): codes, block / row scales, global scales.
inline std::array<std::vector<std::uint8_t>, 3> one_shot_bytes(const stream_spec& s, const compress_case& c,
                                                               const device_compress_case& dev, rope_table_view table) {
  const run_outputs ref(c.rows(), c.d, s.nvfp4);
  const guarded_workspace ws(c.rows(), c.d);
  REQUIRE(write_path_call(s, c, dev, table, ref, ws.span_of(), write_path_mode::two_kernel, nullptr) == status::ok);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  return {ref.codes.checked(), ref.scales.checked(), ref.global.checked()};
}

// Calls f(IN{}, BIAS{}) with the element types of the stream's projections and bias.
template <class F>
auto with_append_types(const stream_spec& s, F&& f) {
  using u16 = std::uint16_t;
  if (s.opt.bf16_inputs) return s.opt.bf16_bias ? f(u16{}, u16{}) : f(u16{}, float{});
  return s.opt.bf16_bias ? f(float{}, u16{}) : f(float{}, float{});
}

// One segment of an append launch: the sequence's tokens [position, position + length) as copy
// `copy` of the sequence (state slot `copy`).
struct plan_segment {
  int copy;
  std::int64_t position, length;
};
// The launches of a plan, each a batch of segments.
using append_plan = std::vector<std::vector<plan_segment>>;

// Chunk lengths covering `tokens`: `size` each (the last one shorter).
inline std::vector<std::int64_t> fixed_chunks(std::int64_t tokens, std::int64_t size) {
  std::vector<std::int64_t> c;
  for (std::int64_t done = 0; done < tokens; done += size) c.push_back(std::min(size, tokens - done));
  return c;
}
// Random chunk lengths in [lo, hi] covering `tokens`.
inline std::vector<std::int64_t> random_chunks(std::int64_t tokens, std::int64_t lo, std::int64_t hi, std::uint64_t seed) {
  split_mix_rng rng(seed);
  std::vector<std::int64_t> c;
  for (std::int64_t done = 0; done < tokens;) {
    const std::int64_t l = std::min(lo + static_cast<std::int64_t>(rng.next() % static_cast<std::uint64_t>(hi - lo + 1)),
                                    tokens - done);
    c.push_back(l);
    done += l;
  }
  return c;
}
// A plan of one copy (copy 0) appended chunk by chunk, one segment per launch.
inline append_plan single_copy_plan(const std::vector<std::int64_t>& chunks) {
  append_plan p;
  std::int64_t at = 0;
  for (const std::int64_t l : chunks) {
    p.push_back({{0, at, l}});
    at += l;
  }
  return p;
}

// The device buffers of a plan over one sequence (compress_case c, on the device as dev): per
// launch the metadata (cu | positions | state slots | slot mapping) and, for a launch of several
// segments, its concatenated projections (a one-segment launch points into dev directly). Row i
// of copy k goes to pool row pool_row(k, i).
class prepared_append {
 public:
  using row_map = std::function<std::int32_t(int copy, std::int64_t row)>;

  prepared_append(const stream_spec& s, const compress_case& c, const device_compress_case& dev, rope_table_view rope,
                  const append_plan& plan, row_map pool_row)
      : spec_(s), case_(c), dev_(dev), rope_(rope) {
    const std::int64_t w = c.width, m = s.ratio;
    const std::size_t elem = s.opt.bf16_inputs ? sizeof(std::uint16_t) : sizeof(float);
    const std::uint8_t* kv = s.opt.bf16_inputs ? reinterpret_cast<const std::uint8_t*>(dev.kv_bits.get())
                                               : reinterpret_cast<const std::uint8_t*>(dev.kv.get());
    const std::uint8_t* gate = s.opt.bf16_inputs ? reinterpret_cast<const std::uint8_t*>(dev.gate_bits.get())
                                                 : reinterpret_cast<const std::uint8_t*>(dev.gate.get());
    const std::size_t token_bytes = static_cast<std::size_t>(w) * elem;
    for (const std::vector<plan_segment>& segs : plan) {
      std::vector<std::int32_t> cu{0}, positions, slots, mapping;
      for (const plan_segment& g : segs) {
        for (std::int64_t k = 0; k < g.length; ++k) {
          const std::int64_t q = g.position + k;
          mapping.push_back((q + 1) % m == 0 ? pool_row(g.copy, q / m) : -1);
        }
        cu.push_back(static_cast<std::int32_t>(cu.back() + g.length));
        positions.push_back(static_cast<std::int32_t>(g.position));
        slots.push_back(g.copy);
      }
      const std::int64_t tokens = cu.back();
      std::vector<std::int32_t> packed = cu;
      packed.insert(packed.end(), positions.begin(), positions.end());
      packed.insert(packed.end(), slots.begin(), slots.end());
      packed.insert(packed.end(), mapping.begin(), mapping.end());
      const std::size_t half = static_cast<std::size_t>(tokens) * token_bytes;
      launch& l = launches_.emplace_back(packed, segs.size() == 1 ? 0 : 2 * half);
      l.segments = static_cast<std::int64_t>(segs.size());
      l.tokens = tokens;
      if (segs.size() == 1) {
        l.kv = kv + static_cast<std::size_t>(segs[0].position) * token_bytes;
        l.gate = gate + static_cast<std::size_t>(segs[0].position) * token_bytes;
        continue;
      }
      std::size_t at = 0;
      for (const plan_segment& g : segs) {
        const std::size_t bytes = static_cast<std::size_t>(g.length) * token_bytes;
        const std::size_t from = static_cast<std::size_t>(g.position) * token_bytes;
        if (bytes == 0) continue;
        DSV4KV_TEST_CUDA(cudaMemcpy(l.staging.get() + at, kv + from, bytes, cudaMemcpyDeviceToDevice));
        DSV4KV_TEST_CUDA(cudaMemcpy(l.staging.get() + half + at, gate + from, bytes, cudaMemcpyDeviceToDevice));
        at += bytes;
      }
      l.kv = l.staging.get();
      l.gate = l.staging.get() + half;
    }
    DSV4KV_TEST_CUDA(cudaDeviceSynchronize());  // the staging copies are done before any stream uses them
  }

  // Enqueues every launch on `stream` into `pool` with states `state` (slots >= the copies) and
  // error flags `flags` (nullable); no synchronisation. The first failing status, else ok.
  status enqueue(const run_outputs& pool, append_state state, std::uint32_t* flags, cudaStream_t stream) const {
    for (const launch& l : launches_) {
      const status st = with_append_types(spec_, [&](auto in, auto bias) {
        using IN = decltype(in);
        using BIAS = decltype(bias);
        append_params<IN, BIAS> p;
        p.ratio = spec_.ratio;
        p.kv = {static_cast<const IN*>(l.kv), l.tokens, case_.width, case_.width};
        p.gate = {static_cast<const IN*>(l.gate), l.tokens, case_.width, case_.width};
        if (spec_.opt.bias) {
          if constexpr (std::is_same_v<BIAS, float>) {
            p.position_bias = dev_.bias.get();
          } else {
            p.position_bias = dev_.bias_bits.get();
          }
        }
        p.norm_weight = spec_.opt.norm ? dev_.norm.get() : nullptr;
        p.rope = rope_;
        p.hadamard = spec_.hadamard;
        p.segments = l.segments;
        p.cu_seqlens = l.meta.get();
        p.positions = l.meta.get() + l.segments + 1;
        p.state_slots = l.meta.get() + 2 * l.segments + 1;
        p.slot_mapping = l.meta.get() + 3 * l.segments + 1;
        p.state = state;
        p.error_flags = flags;
        return spec_.nvfp4 ? append_nvfp4(p, pool.nvfp4_view(), stream)
                           : append_fp8(p, spec_.mode, pool.fp8_view(), stream);
      });
      if (st != status::ok) return st;
    }
    return status::ok;
  }

 private:
  struct launch {
    device_buffer<std::int32_t> meta;     // cu [B+1] | positions [B] | state slots [B] | mapping [N]
    device_buffer<std::uint8_t> staging;  // kv [N, W] then gate [N, W] (several segments only)
    std::int64_t tokens = 0, segments = 0;
    const void* kv = nullptr;
    const void* gate = nullptr;
    launch(const std::vector<std::int32_t>& packed, std::size_t staging_bytes) : meta(packed), staging(staging_bytes) {}
    launch(launch&&) noexcept = default;
  };
  const stream_spec& spec_;
  const compress_case& case_;
  const device_compress_case& dev_;
  rope_table_view rope_;
  std::vector<launch> launches_;
};

// State slots of a stream between guard bands, zeroed (every header empty).
struct guarded_states {
  std::int64_t slots, slot_bytes;
  guarded buf;
  guarded_states(const stream_spec& s, std::int64_t n)
      : slots(n), slot_bytes(append_state_bytes(s.ratio, s.d)), buf(n * slot_bytes) {
    buf.fill_rows(0);
  }
  append_state view() const { return {buf.data(), slots}; }
};

// What state slot `slot` of `bytes` (a guarded_states' checked() image) must hold after a sequence
// (case c) was appended up to position `end`: the header {end, tag, 0} and, in their ring rows, the
// FP32 kv and gate of the tokens [append_state_first_kept(m, end), end) (append_model.hpp). Ring
// rows of older tokens are not compared: what they hold depends on the chunking.
inline void check_state_slot(const stream_spec& s, const compress_case& c, const std::vector<std::uint8_t>& bytes,
                             std::int64_t slot, std::int64_t end) {
  const std::int64_t slot_bytes = append_state_bytes(s.ratio, s.d), w = c.width;
  REQUIRE(static_cast<std::int64_t>(bytes.size()) >= (slot + 1) * slot_bytes);
  const std::uint8_t* base = bytes.data() + slot * slot_bytes;
  append_state_header h;
  std::memcpy(&h, base, sizeof h);
  CHECK(h.next_position == end);
  CHECK(h.tag == append_state_tag(s.ratio, s.d));
  CHECK(h.reserved == 0u);
  const auto* kv = reinterpret_cast<const float*>(base + append_state_header_bytes);  // [R, W]
  const float* gate = kv + append_state_ring_tokens(s.ratio) * w;                    // [R, W]
  std::size_t wrong = 0;
  for (std::int64_t q = append_state_first_kept(s.ratio, end); q < end; ++q) {
    const std::int64_t r = append_state_ring_row(s.ratio, q);
    wrong += std::memcmp(kv + r * w, c.kv.data() + q * w, static_cast<std::size_t>(w) * sizeof(float)) != 0;
    wrong += std::memcmp(gate + r * w, c.gate.data() + q * w, static_cast<std::size_t>(w) * sizeof(float)) != 0;
  }
  CHECK(wrong == 0);
}

}  // namespace dsv4kv::test
