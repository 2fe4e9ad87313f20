// SPDX-License-Identifier: Apache-2.0
// Streaming append on the GPU (append.hpp, SPEC §7), for CSA-512 / HCA-512 NVFP4 and the CSA-128
// indexer (Hadamard, FP8 both scale modes), FP32 and BF16 projections:
//   - token-by-token decode, chunked prefill (chunks of 3, m-1, m, m+1, 4097, random) and one-shot
//     append give the bytes of the one-shot write path (two-kernel chain) of the whole sequence;
//   - mixed batches (sequences at different positions, empty segments, a new sequence reusing a
//     state slot at position 0, shuffled segments, scattered pool slots, -1 slots) give the same
//     bytes, write exactly the rows the host reference of the append model (ref::append) writes,
//     with rows within the compress tolerance of its double rows, and leave the same state bytes;
//   - a decode step captured once in a CUDA graph, replayed with new positions, lengths, slots and
//     tokens written into its device buffers, gives the same bytes;
//   - device-side metadata errors raise their bits and write only what the policy allows;
//   - bad host arguments return their status and change no byte (sentinels); reset.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // before device_buffer.hpp: its cudaMalloc(&T*) needs the template overload

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "append_fixtures.hpp"
#include "device_buffer.hpp"
#include "dsv4kv/append.hpp"
#include "dsv4kv/ref/append.hpp"
#include "dsv4kv/write_path.hpp"
#include "write_path_fixtures.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

const stream_spec csa_main{"CSA-512 main KV -> NVFP4, FP32", 4, 512, true, false, {false, true, false, true}};
const stream_spec hca_main{"HCA-512 main KV -> NVFP4, BF16", 128, 512, true, false, {true, true, true, true}};
const stream_spec csa_indexer{"CSA-128 indexer -> Hadamard -> FP8", 4, 128, false, true, {false, true, false, true}};
const stream_spec csa_indexer_pow2{"CSA-128 indexer, BF16 -> Hadamard -> FP8 pow2", 4, 128, false, true,
                                   {true, false, false, true}, fp8_scale_mode::pow2};
const stream_spec* const all_streams[] = {&csa_main, &hca_main, &csa_indexer, &csa_indexer_pow2};

// A pool of quantized rows with guard bands, and its expected bytes on the host.
struct pool_buffers {
  const stream_spec& cfg;
  std::int64_t rows;
  pool_row_bytes b;
  guarded codes, scales, global;
  std::vector<std::uint8_t> want_codes, want_scales, want_global;  // expected, sentinel where unwritten
  pool_buffers(const stream_spec& c, std::int64_t r)
      : cfg(c), rows(r), b(row_bytes_of(c)), codes(r * b.code), scales(r * b.scale), global(r * b.global),
        want_codes(static_cast<std::size_t>(r * b.code), sentinel_byte),
        want_scales(static_cast<std::size_t>(r * b.scale), sentinel_byte),
        want_global(static_cast<std::size_t>(r * b.global), sentinel_byte) {}
  nvfp4_rows nvfp4_view() const { return {codes.data(), scales.data(), global.f32(), rows, cfg.d}; }
  fp8_rows fp8_view() const { return {codes.data(), scales.f32(), rows, cfg.d}; }
  void reset() {
    codes.reset();
    scales.reset();
    global.reset();
    std::fill(want_codes.begin(), want_codes.end(), static_cast<std::uint8_t>(sentinel_byte));
    std::fill(want_scales.begin(), want_scales.end(), static_cast<std::uint8_t>(sentinel_byte));
    std::fill(want_global.begin(), want_global.end(), static_cast<std::uint8_t>(sentinel_byte));
  }
  // The pool matches the expected bytes (and its guard bands are intact).
  void check() const {
    CHECK(codes.checked() == want_codes);
    CHECK(scales.checked() == want_scales);
    CHECK(global.checked() == want_global);
  }
  // Pool rows that hold something other than sentinel bytes.
  std::vector<std::uint8_t> written_rows() const {
    const std::vector<std::uint8_t> c = codes.checked();
    std::vector<std::uint8_t> w(static_cast<std::size_t>(rows), 0);
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t k = 0; k < b.code; ++k) w[r] |= c[r * b.code + k] != sentinel_byte;
    }
    return w;
  }
};

// The shared inputs of a stream: bias, norm weight (in a token-less compress_case) and RoPE table.
struct stream_model {
  const stream_spec& cfg;
  compress_case host;
  device_compress_case dev;
  explicit stream_model(const stream_spec& c, std::uint64_t seed)
      : cfg(c), host(make_compress_case(c.ratio, c.d, 0, c.opt, seed)), dev(host) {}
};

// One sequence: its projections (host and device), the pool row of each of its rows (-1: skipped),
// and the one-shot write path's bytes and FP32 rows (two-kernel chain) of the whole sequence.
struct sequence {
  compress_case host;
  device_compress_case dev;
  std::vector<std::int32_t> pool_row;  // [n]
  std::vector<std::uint8_t> codes, scales, global;  // [n, per row]
  std::vector<float> rows32;                        // [n, d]
  sequence(const stream_model& m, std::int64_t tokens, std::uint64_t seed)
      : host(make_compress_case(m.cfg.ratio, m.cfg.d, tokens, {m.cfg.opt.bf16_inputs, false, false, false}, seed)),
        dev(host) {}
  std::int64_t rows() const { return host.rows(); }
};

// Device pointer of a sequence's projections (FP32 or BF16 bits), token t.
template <class IN>
const IN* kv_of(const sequence& s, std::int64_t t) {
  if constexpr (std::is_same_v<IN, float>) {
    return s.dev.kv.get() + t * s.host.width;
  } else {
    return s.dev.kv_bits.get() + t * s.host.width;
  }
}
template <class IN>
const IN* gate_of(const sequence& s, std::int64_t t) {
  if constexpr (std::is_same_v<IN, float>) {
    return s.dev.gate.get() + t * s.host.width;
  } else {
    return s.dev.gate_bits.get() + t * s.host.width;
  }
}
template <class BIAS>
const BIAS* bias_of(const stream_model& m) {
  if (!m.cfg.opt.bias) return nullptr;
  if constexpr (std::is_same_v<BIAS, float>) {
    return m.dev.bias.get();
  } else {
    return m.dev.bias_bits.get();
  }
}

// The append_params of the stream (no tokens, no metadata yet).
template <class IN, class BIAS>
append_params<IN, BIAS> stream_params(const stream_model& m, rope_table_view table) {
  append_params<IN, BIAS> p;
  p.ratio = m.cfg.ratio;
  p.position_bias = bias_of<BIAS>(m);
  p.norm_weight = m.cfg.opt.norm ? m.dev.norm.get() : nullptr;
  p.rope = table;
  p.hadamard = m.cfg.hadamard;
  return p;
}

// Runs the one-shot write path (two-kernel chain) of the sequence and keeps its bytes and rows.
void one_shot(const stream_model& m, sequence& s, rope_table_view table) {
  const std::int64_t n = s.rows(), d = m.cfg.d;
  const pool_row_bytes b = row_bytes_of(m.cfg);
  const guarded codes(n * b.code), scales(n * b.scale), global(n * b.global);
  const guarded_workspace ws(n, d);
  const status st = with_append_types(m.cfg, [&](auto in, auto bias) {
    using IN = decltype(in);
    using BIAS = decltype(bias);
    const append_params<IN, BIAS> a = stream_params<IN, BIAS>(m, table);
    compress_params<IN, BIAS> p;
    p.ratio = a.ratio;
    p.kv = {kv_of<IN>(s, 0), s.host.tokens, s.host.width, s.host.width};
    p.gate = {gate_of<IN>(s, 0), s.host.tokens, s.host.width, s.host.width};
    p.position_bias = a.position_bias;
    p.norm_weight = a.norm_weight;
    p.rope = table;
    p.hadamard = a.hadamard;
    const span<std::uint8_t> w = ws.span_of();
    return m.cfg.nvfp4 ? write_path_nvfp4(p, {codes.data(), scales.data(), global.f32(), n, d}, w, nullptr,
                                          write_path_mode::two_kernel)
                       : write_path_fp8(p, m.cfg.mode, {codes.data(), scales.f32(), n, d}, w, nullptr,
                                        write_path_mode::two_kernel);
  });
  REQUIRE(st == status::ok);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  s.codes = codes.checked();
  s.scales = scales.checked();
  s.global = global.checked();
  s.rows32 = ws.checked_rows();
}

// Expects row i of sequence s in pool row r.
void expect_row(pool_buffers& pool, const sequence& s, std::int64_t i, std::int64_t r) {
  const pool_row_bytes b = pool.b;
  std::copy_n(s.codes.begin() + i * b.code, b.code, pool.want_codes.begin() + r * b.code);
  std::copy_n(s.scales.begin() + i * b.scale, b.scale, pool.want_scales.begin() + r * b.scale);
  std::copy_n(s.global.begin() + i * b.global, b.global, pool.want_global.begin() + r * b.global);
}

// One segment of a batch: `length` tokens of sequence `seq` from `position`, in state slot `state_slot`.
struct segment {
  const sequence* seq;
  std::int64_t position, length;
  std::int32_t state_slot;
};

// Device metadata of a batch, in one int32 buffer: cu [B+1], positions [B], state slots [B],
// slot mapping [N]; plus the host copies.
struct batch_metadata {
  std::vector<std::int32_t> cu{0}, positions, state_slots, mapping;
  append_metadata host(std::int64_t tokens) const {
    append_metadata m;
    m.segments = static_cast<std::int64_t>(positions.size());
    m.total_tokens = tokens;
    m.cu_seqlens = cu.data();
    m.positions = positions.data();
    m.state_slots = state_slots.data();
    m.slot_mapping = mapping.data();
    return m;
  }
};

batch_metadata metadata_of(const std::vector<segment>& segs, int ratio) {
  batch_metadata b;
  for (const segment& s : segs) {
    for (std::int64_t k = 0; k < s.length; ++k) {
      const std::int64_t q = s.position + k;
      b.mapping.push_back((q + 1) % ratio == 0 ? s.seq->pool_row[static_cast<std::size_t>(q / ratio)] : -1);
    }
    b.cu.push_back(static_cast<std::int32_t>(b.cu.back() + s.length));
    b.positions.push_back(static_cast<std::int32_t>(s.position));
    b.state_slots.push_back(s.state_slot);
  }
  return b;
}

// The host side of a batch: concatenated projections (FP32 values and, for BF16 streams, bits)
// and the metadata packed as cu | positions | state slots | mapping.
struct host_batch {
  batch_metadata md;
  std::vector<float> kv, gate;              // [N, c*d] FP32 values (what the reference reads)
  std::vector<std::uint16_t> kv_bits, gate_bits;
  std::vector<std::int32_t> packed;
  host_batch(const stream_spec& c, const std::vector<segment>& segs) : md(metadata_of(segs, c.ratio)) {
    for (const segment& s : segs) {
      const std::int64_t w = s.seq->host.width, b = s.position * w, e = (s.position + s.length) * w;
      kv.insert(kv.end(), s.seq->host.kv.begin() + b, s.seq->host.kv.begin() + e);
      gate.insert(gate.end(), s.seq->host.gate.begin() + b, s.seq->host.gate.begin() + e);
      if (c.opt.bf16_inputs) {
        kv_bits.insert(kv_bits.end(), s.seq->host.kv_bits.begin() + b, s.seq->host.kv_bits.begin() + e);
        gate_bits.insert(gate_bits.end(), s.seq->host.gate_bits.begin() + b, s.seq->host.gate_bits.begin() + e);
      }
    }
    packed = md.cu;
    packed.insert(packed.end(), md.positions.begin(), md.positions.end());
    packed.insert(packed.end(), md.state_slots.begin(), md.state_slots.end());
    packed.insert(packed.end(), md.mapping.begin(), md.mapping.end());
  }
};

// The device side of a batch, uploaded.
struct device_batch {
  host_batch h;
  std::int64_t tokens, segments;
  device_buffer<float> kv, gate;
  device_buffer<std::uint16_t> kv_bits, gate_bits;
  device_buffer<std::int32_t> meta;  // cu | positions | state slots | mapping
  const batch_metadata& md;
  const std::vector<float>& host_kv;
  const std::vector<float>& host_gate;
  device_batch(const stream_spec& c, const std::vector<segment>& segs)
      : h(c, segs), tokens(h.md.cu.back()), segments(static_cast<std::int64_t>(segs.size())),
        kv(upload_if(!c.opt.bf16_inputs, h.kv)), gate(upload_if(!c.opt.bf16_inputs, h.gate)),
        kv_bits(upload_if(c.opt.bf16_inputs, h.kv_bits)), gate_bits(upload_if(c.opt.bf16_inputs, h.gate_bits)),
        meta(h.packed), md(h.md), host_kv(h.kv), host_gate(h.gate) {}
  const std::int32_t* cu() const { return meta.get(); }
  const std::int32_t* positions() const { return meta.get() + segments + 1; }
  const std::int32_t* state_slots() const { return meta.get() + 2 * segments + 1; }
  const std::int32_t* mapping() const { return meta.get() + 3 * segments + 1; }
};

// The error flags word of append calls, between guard bands, starting at 0.
struct device_flags {
  guarded_array<std::uint32_t> buf{1};
  device_flags() { buf.upload({0u}); }
  std::uint32_t* get() const { return buf.data(); }
  // The flags (guard bands checked), cleared for the next call.
  std::uint32_t take() {
    const std::uint32_t f = buf.checked()[0];
    buf.upload({0u});
    return f;
  }
};

// Launches one batch on `stream` (with PDL when `pdl`, declaring max_tokens tokens per segment at
// most when > 0), without synchronising.
status launch_batch(const stream_model& m, rope_table_view table, const device_batch& b, const guarded_states& st,
                    const pool_buffers& pool, std::uint32_t* flags, cudaStream_t stream, bool pdl,
                    std::int64_t max_tokens = 0) {
  return with_append_types(m.cfg, [&](auto in, auto bias) {
    using IN = decltype(in);
    using BIAS = decltype(bias);
    append_params<IN, BIAS> p = stream_params<IN, BIAS>(m, table);
    const std::int64_t w = compress_input_width(m.cfg.ratio, m.cfg.d);
    if constexpr (std::is_same_v<IN, float>) {
      p.kv = {b.kv.get(), b.tokens, w, w};
      p.gate = {b.gate.get(), b.tokens, w, w};
    } else {
      p.kv = {b.kv_bits.get(), b.tokens, w, w};
      p.gate = {b.gate_bits.get(), b.tokens, w, w};
    }
    p.segments = b.segments;
    p.cu_seqlens = b.cu();
    p.positions = b.positions();
    p.state_slots = b.state_slots();
    p.slot_mapping = b.mapping();
    p.state = st.view();
    p.error_flags = flags;
    p.pdl = pdl;
    p.max_segment_tokens = max_tokens;
    return m.cfg.nvfp4 ? append_nvfp4(p, pool.nvfp4_view(), stream) : append_fp8(p, m.cfg.mode, pool.fp8_view(), stream);
  });
}

// Runs one batch on the default stream and synchronises.
status run_batch(const stream_model& m, rope_table_view table, const device_batch& b, const guarded_states& st,
                 const pool_buffers& pool, std::uint32_t* flags = nullptr, std::int64_t max_tokens = 0) {
  const status s = launch_batch(m, table, b, st, pool, flags, nullptr, false, max_tokens);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  return s;
}

// A sequence whose rows go to pool rows [base, base + n) (in order), with -1 every `skip`-th row.
void map_in_order(sequence& s, std::int64_t base, int skip = 0) {
  s.pool_row.resize(static_cast<std::size_t>(s.rows()));
  for (std::int64_t i = 0; i < s.rows(); ++i) {
    s.pool_row[static_cast<std::size_t>(i)] = (skip > 0 && i % skip == skip - 1) ? -1 : static_cast<std::int32_t>(base + i);
  }
}

// Chunk sizes covering `tokens`: `size` each (0: random in [1, 3m]) over a prefix of 12m + 5
// tokens (4m + 3 for size 1: decode), every block boundary case many times over, then the rest in
// chunks of 4097 (so the suite stays fast); size >= tokens: one chunk.
std::vector<std::int64_t> chunking(std::int64_t tokens, std::int64_t size, int ratio, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const std::int64_t prefix = size == 1 ? 4 * ratio + 3 : 12 * ratio + 5;
  std::vector<std::int64_t> c;
  for (std::int64_t done = 0; done < tokens;) {
    std::int64_t l = size > 0 ? size : std::uniform_int_distribution<std::int64_t>(1, 3 * ratio)(rng);
    if (done >= prefix) l = 4097;
    l = std::min(l, tokens - done);
    c.push_back(l);
    done += l;
  }
  return c;
}

}  // namespace

TEST_CASE("append: token by token, chunked and one-shot give the one-shot write path's bytes", "[gpu][append]") {
  const device_rope_table table(yarn_table());
  for (const stream_spec* cfg : all_streams) {
    const stream_model model(*cfg, 600 + cfg->ratio);
    const std::int64_t m = cfg->ratio;
    sequence seq(model, 4097 + m + 3, 601 + cfg->d);
    map_in_order(seq, 0, 7);  // every 7th row skipped (-1)
    one_shot(model, seq, table.view);
    const std::int64_t tokens = seq.host.tokens, n = seq.rows();
    pool_buffers pool(*cfg, n);
    guarded_states state(*cfg, 3);
    // Chunk sizes: token by token (decode), 3, m-1 (CSA: 3 again, skipped), m, m+1, 4097, random,
    // one-shot.
    std::vector<std::int64_t> sizes = {1, 3, m, m + 1, 4097, 0, tokens};
    if (m - 1 != 3) sizes.push_back(m - 1);
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      INFO(cfg->name << ", chunk size " << sizes[k] << " (0: random), " << tokens << " tokens");
      pool.reset();
      for (std::int64_t i = 0; i < n; ++i) {
        if (seq.pool_row[static_cast<std::size_t>(i)] >= 0) expect_row(pool, seq, i, seq.pool_row[static_cast<std::size_t>(i)]);
      }
      std::int64_t position = 0;
      const std::int32_t slot = static_cast<std::int32_t>(k % 3);  // states reused: position 0 starts fresh
      for (const std::int64_t l : chunking(tokens, sizes[k], cfg->ratio, 50u + static_cast<std::uint32_t>(k))) {
        const device_batch b(*cfg, {{&seq, position, l, slot}});
        REQUIRE(run_batch(model, table.view, b, state, pool) == status::ok);
        position += l;
      }
      pool.check();
      (void)state.buf.checked();  // the states' guard bands
    }
  }
}

TEST_CASE("append: back-to-back launches with programmatic dependent launch give the one-shot bytes",
          "[gpu][append][pdl]") {
  // Each launch depends on the one before (the state); with PDL it may start while that one still
  // runs, so a read or write before griddepcontrol.wait would show as wrong bytes or state here.
  // No host synchronisation between the launches; every batch's buffers are uploaded first.
  const device_rope_table table(yarn_table());
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  for (const stream_spec* cfg : all_streams) {
    const stream_model model(*cfg, 650 + cfg->ratio);
    const std::int64_t m = cfg->ratio;
    // Two sequences in one batch: token by token over a few blocks, then chunks of m + 1, 3m and 1000.
    sequence a(model, 6 * m + 2 + 3 * (m + 1) + 3 * m + 1000, 651), b(model, 4 * m + 1 + 3 * (m + 1) + 3 * m + 1000, 652);
    map_in_order(a, 0);
    map_in_order(b, a.rows(), 5);
    one_shot(model, a, table.view);
    one_shot(model, b, table.view);
    pool_buffers pool(*cfg, a.rows() + b.rows());
    for (const sequence* q : {&a, &b}) {
      for (std::int64_t i = 0; i < q->rows(); ++i) {
        if (q->pool_row[static_cast<std::size_t>(i)] >= 0) expect_row(pool, *q, i, q->pool_row[static_cast<std::size_t>(i)]);
      }
    }
    guarded_states state(*cfg, 2);
    std::vector<std::unique_ptr<device_batch>> batches;
    std::int64_t done_a = 0, done_b = 0;
    const auto step = [&](std::int64_t la, std::int64_t lb) {
      la = std::min(la, a.host.tokens - done_a);
      lb = std::min(lb, b.host.tokens - done_b);
      batches.push_back(std::make_unique<device_batch>(*cfg, std::vector<segment>{{&b, done_b, lb, 1}, {&a, done_a, la, 0}}));
      done_a += la;
      done_b += lb;
    };
    for (std::int64_t k = 0; k < 4 * m + 1; ++k) step(1, 1);
    for (int k = 0; k < 3; ++k) step(m + 1, m + 1);
    for (int k = 0; k < 3; ++k) step(m, 3 * m);
    while (done_a < a.host.tokens || done_b < b.host.tokens) step(1000, 1000);
    INFO(cfg->name << ", " << batches.size() << " launches");
    device_flags flags;
    for (const auto& batch : batches) {
      REQUIRE(launch_batch(model, table.view, *batch, state, pool, flags.get(), stream, true) == status::ok);
    }
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    CHECK(flags.take() == 0u);
    pool.check();
    (void)state.buf.checked();  // the states' guard bands
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

TEST_CASE("append: mixed batches equal one-shot bytes and the host reference of the append model",
          "[gpu][append][mixed]") {
  const device_rope_table table(yarn_table());
  for (const stream_spec* cfg : all_streams) {
    INFO(cfg->name);
    const stream_model model(*cfg, 700 + cfg->ratio);
    const int m = cfg->ratio;
    // Six sequences; sequence 5 starts once sequence 0 is done, in its state slot.
    const std::int64_t lengths[6] = {9 * m + 1, 5 * m + 3, 2 * m, 7 * m + m / 2, 1, 4 * m + 2};
    std::vector<sequence> seqs;
    seqs.reserve(6);
    std::int64_t pool_rows = 3;  // three rows nobody writes
    for (int s = 0; s < 6; ++s) {
      seqs.emplace_back(model, lengths[s], 710u + static_cast<std::uint64_t>(s));
      pool_rows += seqs.back().rows();
    }
    // Scattered pool rows: a random permutation; every 5th row of sequence 1 skipped (-1).
    std::vector<std::int32_t> perm(static_cast<std::size_t>(pool_rows));
    std::iota(perm.begin(), perm.end(), 0);
    std::mt19937 rng(17u + static_cast<std::uint32_t>(m));
    std::shuffle(perm.begin(), perm.end(), rng);
    std::size_t next = 0;
    pool_buffers pool(*cfg, pool_rows);
    for (int s = 0; s < 6; ++s) {
      sequence& q = seqs[static_cast<std::size_t>(s)];
      q.pool_row.resize(static_cast<std::size_t>(q.rows()));
      for (std::int64_t i = 0; i < q.rows(); ++i) {
        const std::int32_t r = perm[next++];
        q.pool_row[static_cast<std::size_t>(i)] = (s == 1 && i % 5 == 4) ? -1 : r;
      }
      one_shot(model, q, table.view);
      for (std::int64_t i = 0; i < q.rows(); ++i) {
        if (q.pool_row[static_cast<std::size_t>(i)] >= 0) expect_row(pool, q, i, q.pool_row[static_cast<std::size_t>(i)]);
      }
    }
    // The host reference runs the same batches.
    const std::int64_t state_slots = 6;
    guarded_states state(*cfg, state_slots);
    std::vector<std::uint8_t> ref_state(static_cast<std::size_t>(state_slots * state.slot_bytes), 0);
    std::vector<double> ref_rows(static_cast<std::size_t>(pool_rows * cfg->d), 0.0);
    std::vector<std::uint8_t> ref_written(static_cast<std::size_t>(pool_rows), 0);
    ref::append_problem rp;
    rp.ratio = m;
    rp.d = cfg->d;
    rp.position_bias = cfg->opt.bias ? model.host.bias.data() : nullptr;
    rp.norm_weight = cfg->opt.norm ? model.host.norm_weight.data() : nullptr;
    rp.rope = yarn_table().view();
    rp.hadamard = cfg->hadamard;

    const std::int32_t state_of[6] = {4, 1, 2, 0, 3, 4};
    std::int64_t done[6] = {};
    device_flags dflags;
    std::uint32_t* const flags = dflags.get();
    for (int step = 0;; ++step) {
      bool left = false;
      for (int s = 0; s < 6; ++s) left = left || done[s] < lengths[s];
      if (!left) break;
      INFO("step " << step);
      const bool first_done = done[0] >= lengths[0];
      std::vector<segment> batch;
      for (int s = 0; s < 6; ++s) {
        if (s == 5 && !first_done) continue;  // waits for sequence 0's state slot
        if (s == 3 && step < 2) continue;     // joins later
        // Every 4th step draws segments short enough for one CTA each (CSA: up to 5 tokens, two
        // rows; HCA: up to 128), which with the declared bound below runs the direct mapping on
        // multi-token segments; the other steps draw up to 2m + 5 tokens.
        const std::int64_t top = step % 4 == 1 ? (m == 4 ? 5 : m) : 2 * m + 5;
        std::int64_t l = std::uniform_int_distribution<std::int64_t>(0, top)(rng);  // 0: an empty segment
        if (step % 3 == 1) l = 1;                                                   // decode steps
        l = std::min(l, lengths[s] - done[s]);
        batch.push_back({&seqs[static_cast<std::size_t>(s)], done[s], l, state_of[s]});
        done[s] += l;
      }
      std::shuffle(batch.begin(), batch.end(), rng);
      const device_batch b(*cfg, batch);
      // Every other step declares a bound on the segments' lengths (the longest, plus 0-2): where
      // it fits every segment in one CTA (decode steps, short segments), CTA s takes segment s.
      std::int64_t longest = 0;
      for (const segment& g : batch) longest = std::max(longest, g.length);
      const std::int64_t declared = step % 2 == 1 ? longest + step % 3 : 0;
      append_metadata hm = b.md.host(b.tokens);
      hm.max_segment_tokens = declared;
      REQUIRE(validate_append_metadata(hm, m, state_slots, pool_rows) == status::ok);
      REQUIRE(run_batch(model, table.view, b, state, pool, flags, declared) == status::ok);
      REQUIRE(ref::append(rp, make_tensor_view<const float>(b.host_kv.data(), b.tokens, compress_input_width(m, cfg->d)),
                          make_tensor_view<const float>(b.host_gate.data(), b.tokens, compress_input_width(m, cfg->d)),
                          hm, span<std::uint8_t>{ref_state.data(), static_cast<std::int64_t>(ref_state.size())},
                          make_tensor_view(ref_rows.data(), pool_rows, cfg->d), ref_written.data()) == status::ok);
    }
    CHECK(dflags.take() == 0u);
    pool.check();                                  // the one-shot bytes, row by row
    CHECK(pool.written_rows() == ref_written);     // the rows the model writes, and no other
    CHECK(state.buf.checked() == ref_state);       // the same state bytes (guard bands intact)
    // The FP32 rows behind those bytes are the model's rows (compress tolerance).
    std::vector<float> gpu_rows(static_cast<std::size_t>(pool_rows * cfg->d), 0.0f);
    std::vector<double> want(gpu_rows.size(), 0.0);
    for (const sequence& q : seqs) {
      for (std::int64_t i = 0; i < q.rows(); ++i) {
        const std::int64_t r = q.pool_row[static_cast<std::size_t>(i)];
        if (r < 0) continue;
        std::copy_n(q.rows32.begin() + i * cfg->d, cfg->d, gpu_rows.begin() + r * cfg->d);
        std::copy_n(ref_rows.begin() + r * cfg->d, cfg->d, want.begin() + r * cfg->d);
      }
    }
    const double err = max_relative_error(gpu_rows.data(), cfg->d, want, pool_rows, cfg->d);
    INFO("max relative error of the GPU rows against the append model " << err);
    CHECK(err <= compress_tolerance);
  }
}

TEST_CASE("append: a decode step captured in a CUDA graph, replayed with new metadata", "[gpu][append][graph]") {
  const device_rope_table table(yarn_table());
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  for (const stream_spec* cfg : {&csa_main, &csa_indexer, &hca_main}) {
    INFO(cfg->name);
    const stream_model model(*cfg, 800 + cfg->ratio);
    const int m = cfg->ratio;
    constexpr int batch = 8;
    const std::int64_t width = compress_input_width(m, cfg->d);
    // Each sequence: a prefix appended beforehand, then decode steps; lengths staggered.
    const int steps = 2 * m + 3;
    std::vector<sequence> seqs;
    seqs.reserve(batch);
    std::int64_t prefix[batch], pool_rows = 0;
    for (int s = 0; s < batch; ++s) {
      prefix[s] = (s * 5 + 1) % (2 * m) + (s % 3) * m;
      seqs.emplace_back(model, prefix[s] + steps, 810u + static_cast<std::uint64_t>(s));
      map_in_order(seqs.back(), pool_rows);
      pool_rows += seqs.back().rows();
    }
    pool_buffers pool(*cfg, pool_rows);
    for (sequence& q : seqs) {
      one_shot(model, q, table.view);
      for (std::int64_t i = 0; i < q.rows(); ++i) expect_row(pool, q, i, q.pool_row[static_cast<std::size_t>(i)]);
    }
    guarded_states state(*cfg, batch);
    {  // The prefixes, one batch.
      std::vector<segment> pre;
      for (int s = 0; s < batch; ++s) pre.push_back({&seqs[static_cast<std::size_t>(s)], 0, prefix[s], static_cast<std::int32_t>(s)});
      const device_batch b(*cfg, pre);
      REQUIRE(run_batch(model, table.view, b, state, pool) == status::ok);
    }
    // The step's device buffers: one token per sequence (slots reversed: state slot of sequence
    // s is s, its segment index batch-1-s), metadata rewritten before each replay.
    const bool bf16 = cfg->opt.bf16_inputs;
    device_buffer<float> kv(static_cast<std::size_t>(bf16 ? 0 : batch * width)), gate(kv.size());
    device_buffer<std::uint16_t> kv_bits(static_cast<std::size_t>(bf16 ? batch * width : 0)), gate_bits(kv_bits.size());
    device_buffer<std::int32_t> meta(static_cast<std::size_t>(3 * batch + 1 + batch));  // cu | pos | slots | mapping
    device_flags flags;
    cudaGraph_t graph = nullptr;
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal) == cudaSuccess);
    const status st = with_append_types(*cfg, [&](auto in, auto bias) {
      using IN = decltype(in);
      using BIAS = decltype(bias);
      append_params<IN, BIAS> p = stream_params<IN, BIAS>(model, table.view);
      if constexpr (std::is_same_v<IN, float>) {
        p.kv = {kv.get(), batch, width, width};
        p.gate = {gate.get(), batch, width, width};
      } else {
        p.kv = {kv_bits.get(), batch, width, width};
        p.gate = {gate_bits.get(), batch, width, width};
      }
      p.segments = batch;
      p.cu_seqlens = meta.get();
      p.positions = meta.get() + batch + 1;
      p.state_slots = meta.get() + 2 * batch + 1;
      p.slot_mapping = meta.get() + 3 * batch + 1;
      p.state = state.view();
      p.error_flags = flags.get();
      // Decode steps declare one token per segment (direct units), except CSA-512's (the prefix-sum mapping).
      p.max_segment_tokens = cfg == &csa_main ? 0 : 1;
      return cfg->nvfp4 ? append_nvfp4(p, pool.nvfp4_view(), stream) : append_fp8(p, cfg->mode, pool.fp8_view(), stream);
    });
    REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
    REQUIRE(st == status::ok);
    cudaGraphExec_t exec = nullptr;
    REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
    std::int64_t done[batch];
    for (int s = 0; s < batch; ++s) done[s] = prefix[s];
    std::mt19937 rng(5);
    const auto remaining = [&] {
      for (int s = 0; s < batch; ++s) {
        if (done[s] < seqs[static_cast<std::size_t>(s)].host.tokens) return true;
      }
      return false;
    };
    for (int step = 0; remaining(); ++step) {
      // Some sequences sit a step out (empty segment: a new length of 0); the others advance one.
      std::vector<std::int32_t> host_meta(static_cast<std::size_t>(4 * batch + 1), -1);
      std::vector<float> hkv(static_cast<std::size_t>(batch * width), 0.0f), hgate(hkv.size(), 0.0f);
      std::vector<std::uint16_t> bkv(hkv.size(), 0), bgate(hkv.size(), 0);
      host_meta[0] = 0;
      std::int32_t tokens = 0;
      for (int k = 0; k < batch; ++k) {
        const int s = batch - 1 - k;  // segment k is sequence s
        const sequence& q = seqs[static_cast<std::size_t>(s)];
        const bool go = done[s] < q.host.tokens && (step >= steps || rng() % 4 != 0);
        host_meta[static_cast<std::size_t>(batch + 1 + k)] = static_cast<std::int32_t>(done[s]);
        host_meta[static_cast<std::size_t>(2 * batch + 1 + k)] = s;
        if (go) {
          const std::int64_t t = done[s];
          std::copy_n(q.host.kv.begin() + t * width, width, hkv.begin() + tokens * width);
          std::copy_n(q.host.gate.begin() + t * width, width, hgate.begin() + tokens * width);
          if (bf16) {
            std::copy_n(q.host.kv_bits.begin() + t * width, width, bkv.begin() + tokens * width);
            std::copy_n(q.host.gate_bits.begin() + t * width, width, bgate.begin() + tokens * width);
          }
          host_meta[static_cast<std::size_t>(3 * batch + 1 + tokens)] =
              (t + 1) % m == 0 ? q.pool_row[static_cast<std::size_t>(t / m)] : -1;
          ++tokens;
          ++done[s];
        }
        host_meta[static_cast<std::size_t>(k + 1)] = tokens;
      }
      REQUIRE(cudaMemcpyAsync(meta.get(), host_meta.data(), host_meta.size() * 4, cudaMemcpyHostToDevice, stream) ==
              cudaSuccess);
      if (bf16) {
        REQUIRE(cudaMemcpyAsync(kv_bits.get(), bkv.data(), bkv.size() * 2, cudaMemcpyHostToDevice, stream) == cudaSuccess);
        REQUIRE(cudaMemcpyAsync(gate_bits.get(), bgate.data(), bgate.size() * 2, cudaMemcpyHostToDevice, stream) ==
                cudaSuccess);
      } else {
        REQUIRE(cudaMemcpyAsync(kv.get(), hkv.data(), hkv.size() * 4, cudaMemcpyHostToDevice, stream) == cudaSuccess);
        REQUIRE(cudaMemcpyAsync(gate.get(), hgate.data(), hgate.size() * 4, cudaMemcpyHostToDevice, stream) == cudaSuccess);
      }
      REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
      REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);  // the host buffers are reused
    }
    for (int s = 0; s < batch; ++s) CHECK(done[s] == seqs[static_cast<std::size_t>(s)].host.tokens);
    CHECK(flags.take() == 0u);
    pool.check();
    (void)state.buf.checked();  // the states' guard bands
    REQUIRE(cudaGraphExecDestroy(exec) == cudaSuccess);
    REQUIRE(cudaGraphDestroy(graph) == cudaSuccess);
  }
  REQUIRE(cudaStreamDestroy(stream) == cudaSuccess);
}

TEST_CASE("append: device-side metadata errors raise their bits and write only what is allowed", "[gpu][append][errors]") {
  const device_rope_table table(yarn_table());
  const stream_spec& cfg = csa_indexer;
  const stream_model model(cfg, 900);
  const int m = cfg.ratio;
  sequence a(model, 6 * m + 2, 901), b(model, 5 * m, 902);
  map_in_order(a, 0);
  map_in_order(b, a.rows());
  one_shot(model, a, table.view);
  one_shot(model, b, table.view);
  const std::int64_t pool_rows = a.rows() + b.rows();
  pool_buffers pool(cfg, pool_rows);
  guarded_states state(cfg, 2);
  device_flags flags;
  const auto flags_now = [&] { return flags.take(); };
  // Sequence a continues at position 5 in a state that was never written (zero header): its
  // first two rows need the state and are not written; the rows made of new tokens only are.
  {
    const device_batch batch(cfg, {{&a, 5, a.host.tokens - 5, 0}});
    REQUIRE(run_batch(model, table.view, batch, state, pool, flags.get()) == status::ok);
    CHECK(flags_now() == append_error_state_mismatch);
    for (std::int64_t i = 3; i < a.rows(); ++i) expect_row(pool, a, i, i);  // blocks 1, 2 need tokens < 5
    pool.check();
    const std::vector<std::uint8_t> after = state.buf.checked();
    CHECK(std::all_of(after.begin(), after.begin() + 16, [](std::uint8_t x) { return x == 0; }));  // unchanged
  }
  // A state slot out of range at position 0: rows written (no state needed), state not kept.
  pool.reset();
  {
    const device_batch batch(cfg, {{&b, 0, b.host.tokens, 7}});
    REQUIRE(run_batch(model, table.view, batch, state, pool, flags.get()) == status::ok);
    CHECK(flags_now() == append_error_state_slot);
    for (std::int64_t i = 0; i < b.rows(); ++i) expect_row(pool, b, i, a.rows() + i);
    pool.check();
  }
  // A negative position: the segment writes nothing, the other segment is fine.
  pool.reset();
  {
    device_batch batch(cfg, {{&a, 0, 2 * m, 0}, {&b, 0, 2 * m, 1}});
    std::vector<std::int32_t> all = batch.md.cu;
    std::vector<std::int32_t> pos = batch.md.positions;
    pos[1] = -4;
    REQUIRE(cudaMemcpy(const_cast<std::int32_t*>(batch.positions()), pos.data(), 8, cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(run_batch(model, table.view, batch, state, pool, flags.get()) == status::ok);
    CHECK(flags_now() == append_error_position);
    expect_row(pool, a, 0, 0);
    expect_row(pool, a, 1, 1);
    pool.check();
  }
  // A pool slot out of range and one below -1: those rows are skipped, the others written.
  pool.reset();
  {
    sequence& q = a;
    const std::vector<std::int32_t> saved = q.pool_row;
    q.pool_row[1] = static_cast<std::int32_t>(pool_rows);
    q.pool_row[2] = -3;
    const device_batch batch(cfg, {{&q, 0, 4 * m, 1}});
    q.pool_row = saved;
    REQUIRE(run_batch(model, table.view, batch, state, pool, flags.get()) == status::ok);
    CHECK(flags_now() == append_error_pool_slot);
    expect_row(pool, a, 0, 0);
    expect_row(pool, a, 3, 3);
    pool.check();
  }
  // cu_seqlens not non-decreasing: the bit is raised; the segment with inverted bounds writes nothing.
  pool.reset();
  {
    const device_batch batch(cfg, {{&a, 0, 2 * m, 0}, {&b, 0, 2 * m, 1}});
    std::vector<std::int32_t> cu = batch.md.cu;  // {0, 8, 16} -> {0, 8, 6}: segment 1 inverted
    cu[2] = 6;
    REQUIRE(cudaMemcpy(const_cast<std::int32_t*>(batch.cu()), cu.data(), 12, cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(run_batch(model, table.view, batch, state, pool, flags.get()) == status::ok);
    CHECK(flags_now() == append_error_cu_seqlens);
    expect_row(pool, a, 0, 0);
    expect_row(pool, a, 1, 1);
    pool.check();
  }
  // A segment longer than the declared max_segment_tokens (decode steps declaring 1): it writes
  // nothing and its state is left as it was; the other segments are written.
  pool.reset();
  {
    sequence c(model, 4 * m, 903), e(model, 4 * m, 904);
    map_in_order(c, 0);
    map_in_order(e, c.rows());
    one_shot(model, c, table.view);
    one_shot(model, e, table.view);
    guarded_states st2(cfg, 2);
    const device_batch start(cfg, {{&c, 0, m - 1, 0}, {&e, 0, m - 1, 1}});
    REQUIRE(run_batch(model, table.view, start, st2, pool, flags.get()) == status::ok);
    CHECK(flags_now() == 0u);
    const std::vector<std::uint8_t> before = st2.buf.checked();
    // Each segment finishes block 0; segment 1 brings 2 tokens where 1 is declared.
    const device_batch step(cfg, {{&c, m - 1, 1, 0}, {&e, m - 1, 2, 1}});
    REQUIRE(run_batch(model, table.view, step, st2, pool, flags.get(), 1) == status::ok);
    CHECK(flags_now() == append_error_segment_length);
    expect_row(pool, c, 0, 0);
    pool.check();  // e's row 0 not written
    const std::vector<std::uint8_t> after = st2.buf.checked();
    const std::size_t slot = static_cast<std::size_t>(st2.slot_bytes);
    CHECK(std::equal(after.begin() + slot, after.begin() + 2 * slot, before.begin() + slot));  // e's state unchanged
    CHECK(!std::equal(after.begin(), after.begin() + slot, before.begin()));                  // c's state moved on
    // The same step without the declaration writes both.
    REQUIRE(run_batch(model, table.view, step, st2, pool, flags.get()) == status::ok);
    CHECK(flags_now() == append_error_state_mismatch);  // c's state already moved past m - 1
    expect_row(pool, e, 0, c.rows());
    pool.check();
  }
  // A bound too large for the direct mapping (8 tokens: a CSA segment of 8 may need 3 rows, more
  // than a unit holds): the prefix-sum mapping (B = 2) and the single-segment variant (B = 1)
  // check it too. The longer segment writes nothing and keeps its state.
  pool.reset();
  {
    sequence c(model, 6 * m, 905), e(model, 6 * m, 906);
    map_in_order(c, 0);
    map_in_order(e, c.rows());
    one_shot(model, c, table.view);
    one_shot(model, e, table.view);
    guarded_states st3(cfg, 2);
    const std::vector<std::uint8_t> before = st3.buf.checked();
    const std::size_t slot = static_cast<std::size_t>(st3.slot_bytes);
    const device_batch two(cfg, {{&c, 0, 2 * m, 0}, {&e, 0, 2 * m + 1, 1}});  // 8 tokens as declared, 9
    REQUIRE(run_batch(model, table.view, two, st3, pool, flags.get(), 2 * m) == status::ok);
    CHECK(flags_now() == append_error_segment_length);
    expect_row(pool, c, 0, 0);
    expect_row(pool, c, 1, 1);
    pool.check();  // none of e's rows
    std::vector<std::uint8_t> after = st3.buf.checked();
    CHECK(std::equal(after.begin() + slot, after.begin() + 2 * slot, before.begin() + slot));  // e's state unchanged
    pool.reset();
    const device_batch one(cfg, {{&e, 0, 2 * m + 1, 1}});
    REQUIRE(run_batch(model, table.view, one, st3, pool, flags.get(), 2 * m) == status::ok);
    CHECK(flags_now() == append_error_segment_length);
    pool.check();  // nothing written
    after = st3.buf.checked();
    CHECK(std::equal(after.begin() + slot, after.begin() + 2 * slot, before.begin() + slot));
    // Declared long enough, the same segment is written.
    REQUIRE(run_batch(model, table.view, one, st3, pool, flags.get(), 2 * m + 1) == status::ok);
    CHECK(flags_now() == 0u);
    expect_row(pool, e, 0, c.rows());
    expect_row(pool, e, 1, c.rows() + 1);
    pool.check();
  }
  // reset_append_state: the header is zeroed, so a continuation is refused afterwards.
  pool.reset();
  {
    const device_batch first(cfg, {{&a, 0, 2 * m + 1, 0}});
    REQUIRE(run_batch(model, table.view, first, state, pool, flags.get()) == status::ok);
    CHECK(flags_now() == 0u);
    const device_buffer<std::int32_t> which(std::vector<std::int32_t>{0, 5, -1});  // out-of-range names skipped
    REQUIRE(reset_append_state(state.view(), cfg.ratio, cfg.d, which.get(), 3, nullptr) == status::ok);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    const std::vector<std::uint8_t> s = state.buf.checked();
    CHECK(std::all_of(s.begin(), s.begin() + 16, [](std::uint8_t x) { return x == 0; }));
    const device_batch next(cfg, {{&a, 2 * m + 1, 2 * m, 0}});
    REQUIRE(run_batch(model, table.view, next, state, pool, flags.get()) == status::ok);
    CHECK(flags_now() == append_error_state_mismatch);
  }
}

TEST_CASE("append: bad arguments return their status and change no byte", "[gpu][append][validation]") {
  const device_rope_table table(yarn_table());
  const stream_spec& cfg = csa_main;
  const stream_model model(cfg, 950);
  sequence a(model, 64, 951);
  map_in_order(a, 0);
  pool_buffers pool(cfg, a.rows());
  guarded_states state(cfg, 2);
  state.buf.reset();
  const device_batch batch(cfg, {{&a, 0, 64, 0}});
  const guarded_array<std::uint32_t> flags(1);  // all sentinel: nothing may write it
  append_params<float, float> p = stream_params<float, float>(model, table.view);
  const std::int64_t w = compress_input_width(4, 512);
  p.kv = {batch.kv.get(), 64, w, w};
  p.gate = {batch.gate.get(), 64, w, w};
  p.segments = 1;
  p.cu_seqlens = batch.cu();
  p.positions = batch.positions();
  p.state_slots = batch.state_slots();
  p.slot_mapping = batch.mapping();
  p.state = state.view();
  p.error_flags = flags.data();
  const auto expect = [&](const append_params<float, float>& q, const nvfp4_rows& out, status want) {
    CHECK(append_nvfp4(q, out, nullptr) == want);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    CHECK(untouched(pool.codes));
    CHECK(untouched(pool.scales));
    CHECK(untouched(pool.global));
    CHECK(untouched(state.buf));
    CHECK(untouched(flags));
  };
  const nvfp4_rows good = pool.nvfp4_view();
  auto q = p;
  q.ratio = 8;
  expect(q, good, status::unsupported_shape);
  q = p;
  q.segments = -1;
  expect(q, good, status::invalid_argument);
  q = p;
  q.cu_seqlens = nullptr;
  expect(q, good, status::null_pointer);
  q = p;
  q.slot_mapping = nullptr;
  expect(q, good, status::null_pointer);
  q = p;
  q.state.data = nullptr;
  expect(q, good, status::null_pointer);
  q = p;
  q.positions = batch.positions() + 0;
  q.cu_seqlens = reinterpret_cast<const std::int32_t*>(reinterpret_cast<const std::uint8_t*>(batch.cu()) + 2);
  expect(q, good, status::misaligned);
  q = p;
  q.state.data = state.buf.data() + 8;
  q.state.slots = 1;
  expect(q, good, status::misaligned);
  q = p;
  q.eps = -1.0f;
  expect(q, good, status::invalid_argument);
  q = p;
  q.gate.rows = 63;
  expect(q, good, status::invalid_argument);
  nvfp4_rows bad = good;
  bad.d = 128;  // a 512-wide stream into 128-wide rows
  expect(p, bad, status::invalid_argument);
  bad = good;
  bad.block_scales = good.codes + 4;
  expect(p, bad, status::aliasing);
  // Outputs over inputs, the state over the pool or the projections, the flags over the state.
  bad = good;
  bad.codes = reinterpret_cast<std::uint8_t*>(const_cast<std::int32_t*>(batch.mapping()));
  expect(p, bad, status::aliasing);
  q = p;
  q.state = {reinterpret_cast<std::uint8_t*>(const_cast<float*>(batch.kv.get())), 1};
  expect(q, good, status::aliasing);
  q = p;
  q.state = {pool.codes.data(), 1};
  expect(q, good, status::aliasing);
  q = p;
  q.error_flags = reinterpret_cast<std::uint32_t*>(state.buf.data() + 64);
  expect(q, good, status::aliasing);
  q = p;
  q.error_flags = reinterpret_cast<std::uint32_t*>(const_cast<std::int32_t*>(batch.positions()));
  expect(q, good, status::aliasing);
  // Nothing to do: no launch, success.
  q = p;
  q.segments = 0;
  expect(q, good, status::ok);
  q = p;
  q.kv.rows = q.gate.rows = 0;
  expect(q, good, status::ok);
  // reset_append_state
  const device_buffer<std::int32_t> which(std::vector<std::int32_t>{0});
  CHECK(reset_append_state(state.view(), 8, 512, which.get(), 1, nullptr) == status::unsupported_shape);
  CHECK(reset_append_state(state.view(), 4, 512, nullptr, 1, nullptr) == status::null_pointer);
  CHECK(reset_append_state(state.view(), 4, 512, which.get(), -1, nullptr) == status::invalid_argument);
  CHECK(reset_append_state({state.buf.data() + 4, 1}, 4, 512, which.get(), 1, nullptr) == status::misaligned);
  CHECK(reset_append_state(state.view(), 4, 512,
                           reinterpret_cast<const std::int32_t*>(state.buf.data() + 32), 1, nullptr) == status::aliasing);
  CHECK(reset_append_state(state.view(), 4, 512, which.get(), 0, nullptr) == status::ok);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  CHECK(untouched(state.buf));
}

// Batches of more segments than the kernel's prefix-sum mapping takes (4 x threads per CTA: 256
// for CSA-128, 1024 for CSA-512, 2048 for HCA-512) find their CTAs by the search over
// base(s) = floor(cu[s] / (m * rows per CTA)) + s instead, on another grid. 2100 sequences in
// two batches (first part, then the rest, through each sequence's state) must still give every
// sequence's one-shot bytes, and raise no error.
TEST_CASE("append: batches past the prefix-sum limit (searched mapping) give the one-shot bytes", "[gpu][append]") {
  const device_rope_table table(yarn_table());
  constexpr int batch = 2100;
  for (const stream_spec* cfg : {&csa_indexer, &csa_main, &hca_main}) {
    INFO(cfg->name);
    const stream_model model(*cfg, 900 + cfg->ratio);
    const int m = cfg->ratio;
    // Mostly short sequences (decode-like); every 50th is long enough for a few rows of HCA.
    std::vector<sequence> seqs;
    seqs.reserve(batch);
    std::int64_t pool_rows = 0;
    for (int s = 0; s < batch; ++s) {
      const std::int64_t tokens = s % 50 == 0 ? 2 * m + 5 + s % 7 : 1 + (s * 7) % 11;  // 1-11, or 2m + 5 ..
      seqs.emplace_back(model, tokens, 9000u + static_cast<std::uint64_t>(s));
      map_in_order(seqs.back(), pool_rows);
      pool_rows += seqs.back().rows();
    }
    REQUIRE(pool_rows > 0);
    pool_buffers pool(*cfg, pool_rows);
    for (sequence& q : seqs) {
      if (q.rows() == 0) continue;
      one_shot(model, q, table.view);
      for (std::int64_t i = 0; i < q.rows(); ++i) expect_row(pool, q, i, q.pool_row[static_cast<std::size_t>(i)]);
    }
    guarded_states state(*cfg, batch);
    device_flags flags;
    for (int part = 0; part < 2; ++part) {
      std::vector<segment> segs;
      for (int s = 0; s < batch; ++s) {
        const std::int64_t tokens = seqs[static_cast<std::size_t>(s)].host.tokens, first = tokens / 2;
        const std::int64_t position = part == 0 ? 0 : first, length = part == 0 ? first : tokens - first;
        segs.push_back({&seqs[static_cast<std::size_t>(s)], position, length, static_cast<std::int32_t>(s)});
      }
      const device_batch b(*cfg, segs);
      REQUIRE(b.segments == batch);
      REQUIRE(run_batch(model, table.view, b, state, pool, flags.get()) == status::ok);
    }
    CHECK(flags.take() == 0u);
    pool.check();
  }
}
