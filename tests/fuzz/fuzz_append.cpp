// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the host reference's append model (ref/append.hpp, SPEC §3 and §7) against its own
// one-shot prefill (ref/write_path.hpp): appending a sequence's tokens in any chunking, batched with
// other sequences, gives exactly the rows of a prefill of all of them.
//
// Each input is one case (kept small: a few milliseconds with the sanitizers):
//   bytes 0-1  the stream: ratio 4 (CSA) or 128 (HCA), d 128 or (1 in 8) 512, position bias,
//              RMSNorm weight, RoPE (a YaRN table), Hadamard rotation, FP64 or FP32 rows, a
//              rejected batch;
//   then       the projection values' seed and scale, 1..3 sequences of T tokens each (CSA:
//              0..39, HCA: 0..287; fewer at d = 512), each cut into random chunks (empty ones
//              too), chunks of different sequences batched together in a random order, each
//              sequence in its own state slot (a one-chunk sequence may have none), its rows sent
//              to random distinct pool rows or skipped (-1), unread slot-mapping entries garbage.
//
// Asserted for every input (a failure prints the case and aborts):
//   1. every batch is accepted (status ok), no sanitizer finding;
//   2. each pool row a sequence's row i was sent to holds, bit for bit, row i of
//      ref::write_path_rows over all T tokens from position 0; every other pool row keeps its
//      sentinel; `written` marks exactly the rows sent;
//   3. after each append, a sequence's state slot has the documented layout (append_model.hpp):
//      header {next_position = end of the append, tag = append_state_tag(m, d), 0}, and ring row
//      q mod 2m (CSA) / q mod m (HCA) holds the FP32 kv and gate of token q for every q in
//      [first kept, end), first kept = the unfinished block's start, minus one block for CSA;
//   4. (when byte 0 asks) a batch whose segment at p > 0 names a state that ends elsewhere (its
//      metadata otherwise valid) is rejected with invalid_argument and changes no byte of the
//      states, rows or `written`.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "dsv4kv/append_model.hpp"
#include "dsv4kv/ref/append.hpp"
#include "dsv4kv/ref/write_path.hpp"
#include "dsv4kv/rope_table.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace dsv4kv;

using dsv4kv::fuzz::fuzz_input;

// Projection values from a seed (xorshift32): short inputs, many values.
class value_source {
 public:
  value_source(std::uint32_t seed, float scale) : state_(seed | 1u), scale_(scale) {}
  float next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return scale_ * (static_cast<float>(static_cast<int>(state_ % 4001u) - 2000) / 1000.0f);
  }

 private:
  std::uint32_t state_;
  float scale_;
};

struct stream_case {
  int ratio = 4;
  std::int64_t d = 128;
  bool bias = false, norm = false, rope = false, hadamard = false, fp32_rows = false, reject = false;
};

// The YaRN table of every case: positions [0, 512) cover every row (T < 288), rope_dim 64.
const rope_table& table() {
  static const rope_table t = [] {
    rope_table r;
    if (make_yarn_rope_table(512, 64, r) != status::ok) {
      std::fprintf(stderr, "fuzz_append: cannot build the RoPE table\n");
      std::abort();
    }
    return r;
  }();
  return t;
}

[[noreturn]] void fail(const stream_case& c, const char* what, std::int64_t a = -1, std::int64_t b = -1) {
  std::fprintf(stderr,
               "fuzz_append: %s (%lld, %lld)\n  ratio %d, d %lld, bias %d, norm %d, rope %d, hadamard %d, "
               "%s rows\n",
               what, static_cast<long long>(a), static_cast<long long>(b), c.ratio, static_cast<long long>(c.d),
               c.bias, c.norm, c.rope, c.hadamard, c.fp32_rows ? "FP32" : "FP64");
  std::abort();
}

// One sequence: its projections [T, c*d], chunks, state slot and pool rows.
struct sequence {
  std::int64_t tokens = 0;
  std::vector<float> kv, gate;         // [T, c*d]
  std::vector<std::int64_t> chunks;    // lengths, summing to T
  std::size_t next_chunk = 0;
  std::int64_t position = 0;           // where the next chunk starts
  std::int32_t state_slot = -1;
  std::vector<std::int32_t> pool_row;  // [T / m]: pool row of row i, or -1
};

// The documented state slot (append_model.hpp) of sequence `s` after an append that ends at `end`.
void check_state(const stream_case& c, const sequence& s, const std::uint8_t* slot, std::int64_t end) {
  const std::int64_t m = c.ratio, width = (m == 4 ? 2 : 1) * c.d, ring = m == 4 ? 2 * m : m - 1;
  std::int64_t next = 0;
  std::uint32_t tag = 0, reserved = 0;
  std::memcpy(&next, slot, 8);
  std::memcpy(&tag, slot + 8, 4);
  std::memcpy(&reserved, slot + 12, 4);
  const std::uint32_t want_tag = 0xD5000000u | (static_cast<std::uint32_t>(m & 0xFFF) << 12) |
                                 static_cast<std::uint32_t>((c.d / 16) & 0xFFF);
  if (next != end || tag != want_tag || reserved != 0) fail(c, "state header", next, end);
  const float* kv_ring = reinterpret_cast<const float*>(slot + 16);  // [R, c*d]
  const float* gate_ring = kv_ring + ring * width;                   // [R, c*d]
  const std::int64_t block_start = end / m * m;
  const std::int64_t first_kept = std::max<std::int64_t>(0, m == 4 ? block_start - m : block_start);
  for (std::int64_t q = first_kept; q < end; ++q) {
    const std::int64_t r = m == 4 ? q % (2 * m) : q % m;
    if (r >= ring) fail(c, "a kept token outside the ring", q, r);
    const std::size_t bytes = static_cast<std::size_t>(width) * sizeof(float);
    if (std::memcmp(kv_ring + r * width, s.kv.data() + q * width, bytes) != 0 ||
        std::memcmp(gate_ring + r * width, s.gate.data() + q * width, bytes) != 0) {
      fail(c, "state ring row differs from token q's projections", q, r);
    }
  }
}

template <class Out>
void run(const stream_case& c, fuzz_input& in) {
  const int m = c.ratio;
  const std::int64_t d = c.d, width = (m == 4 ? 2 : 1) * d;
  const std::uint32_t seed = in.u32();
  const float scales[] = {1.0f, 8.0f, 64.0f, 0.01f};
  value_source values(seed, scales[in.u8() % 4]);

  // The stream's weights.
  std::vector<float> bias(static_cast<std::size_t>(m * width)), norm(static_cast<std::size_t>(d));
  for (float& x : bias) x = values.next();
  for (float& x : norm) x = 1.0f + values.next() / 4.0f;
  ref::append_problem problem;
  problem.ratio = m;
  problem.d = d;
  problem.position_bias = c.bias ? bias.data() : nullptr;
  problem.norm_weight = c.norm ? norm.data() : nullptr;
  problem.rope = c.rope ? table().view() : rope_table_view{};
  problem.hadamard = c.hadamard;

  // The sequences: tokens, projections, chunks. HCA rows cost m times more than CSA rows, d = 512
  // rows 4 times more than d = 128 rows: fewer sequences and tokens for them.
  const int max_sequences = m == 4 ? (d == 512 ? 2 : 3) : (d == 512 ? 1 : 2);
  std::vector<sequence> seqs(static_cast<std::size_t>(1 + in.u8() % max_sequences));
  std::int64_t total_rows = 0;
  for (sequence& s : seqs) {
    s.tokens = m == 4 ? in.u8() % (d == 512 ? 24 : 40) : (in.u8() % 2) * 128 + in.u8() % (d == 512 ? 128 : 160);
    s.kv.resize(static_cast<std::size_t>(s.tokens * width));
    s.gate.resize(s.kv.size());
    for (float& x : s.kv) x = values.next();
    for (float& x : s.gate) x = values.next();
    for (std::int64_t left = s.tokens; left > 0;) {
      const std::uint8_t b = in.u8();
      std::int64_t len = b % 8 == 7 ? 0 : 1 + b % (m == 4 ? 11 : 150);  // some empty chunks
      if (b == 0) len = left;                                            // the rest (also: inputs that ran out)
      len = std::min(len, left);
      s.chunks.push_back(len);
      left -= len;
    }
    total_rows += s.tokens / m;
  }

  // State slots: a random permutation; a one-chunk sequence may go without (it needs none).
  const std::int64_t slots = static_cast<std::int64_t>(seqs.size()) + in.u8() % 2;
  std::vector<std::int32_t> perm(static_cast<std::size_t>(slots));
  std::iota(perm.begin(), perm.end(), 0);
  for (std::size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[in.u8() % i]);
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const bool stateless = seqs[i].chunks.size() <= 1 && (in.u8() & 1);
    seqs[i].state_slot = stateless ? -1 : perm[i];
  }
  // Pool rows: every row of every sequence gets a distinct row of a shuffled pool, or -1.
  const std::int64_t pool_rows = total_rows + in.u8() % 3;
  std::vector<std::int32_t> pool_order(static_cast<std::size_t>(pool_rows));
  std::iota(pool_order.begin(), pool_order.end(), 0);
  for (std::size_t i = pool_order.size(); i > 1; --i) std::swap(pool_order[i - 1], pool_order[in.u8() % i]);
  std::size_t next_pool = 0;
  const std::uint8_t skip_mask = in.u8();
  for (sequence& s : seqs) {
    s.pool_row.resize(static_cast<std::size_t>(s.tokens / m));
    for (std::size_t i = 0; i < s.pool_row.size(); ++i) {
      const bool skip = ((skip_mask >> ((next_pool + i) % 8)) & 1) != 0 && i % 3 == 0;
      s.pool_row[i] = skip ? -1 : pool_order[next_pool + i];
    }
    next_pool += s.pool_row.size();
  }

  // The expected rows: a one-shot prefill of each sequence.
  std::vector<std::vector<Out>> expected(seqs.size());
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const sequence& s = seqs[i];
    ref::write_path_problem w;
    w.ratio = m;
    w.kv = {s.kv.data(), s.tokens, width, width};
    w.gate = {s.gate.data(), s.tokens, width, width};
    w.position_bias = problem.position_bias;
    w.norm_weight = problem.norm_weight;
    w.eps = problem.eps;
    w.rope = problem.rope;
    w.start_position = 0;
    w.hadamard = c.hadamard;
    expected[i].resize(static_cast<std::size_t>(s.tokens / m * d));
    if (ref::write_path_rows(w, make_tensor_view(expected[i].data(), s.tokens / m, d)) != status::ok) {
      fail(c, "ref::write_path_rows rejected the prefill", s.tokens);
    }
  }

  // The pool, its sentinel, the states.
  const Out sentinel = static_cast<Out>(-12345.5);
  std::vector<Out> pool(static_cast<std::size_t>(pool_rows * d), sentinel);
  std::vector<std::uint8_t> written(static_cast<std::size_t>(pool_rows), 0);
  const std::int64_t slot_bytes = append_state_bytes(m, d);
  std::vector<std::uint8_t> state(static_cast<std::size_t>(slots * slot_bytes), 0);
  const tensor_view<Out> rows = make_tensor_view(pool.data(), pool_rows, d);
  const span<std::uint8_t> states{state.data(), static_cast<std::int64_t>(state.size())};

  // The batches: each takes the next chunk of some sequences (at least one), in a rotated order.
  const std::int64_t pad = in.u8() % 2 ? 4 : 0;  // row stride of the batch projections: c*d (+4)
  bool rejected_once = !c.reject;
  for (;;) {
    std::vector<std::size_t> members;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      if (seqs[i].next_chunk < seqs[i].chunks.size() && (in.u8() % 4 != 0)) members.push_back(i);
    }
    if (members.empty()) {
      for (std::size_t i = 0; i < seqs.size() && members.empty(); ++i) {
        if (seqs[i].next_chunk < seqs[i].chunks.size()) members.push_back(i);
      }
    }
    if (members.empty()) break;
    std::rotate(members.begin(), members.begin() + in.u8() % members.size(), members.end());

    // The batch: concatenated projections and metadata.
    std::vector<std::int32_t> cu{0}, positions, state_slots, slot_mapping;
    for (std::size_t i : members) {
      const sequence& s = seqs[i];
      const std::int64_t len = s.chunks[s.next_chunk];
      cu.push_back(static_cast<std::int32_t>(cu.back() + len));
      positions.push_back(static_cast<std::int32_t>(s.position));
      state_slots.push_back(s.state_slot);
    }
    const std::int64_t n = cu.back();
    std::vector<float> kv(static_cast<std::size_t>(std::max<std::int64_t>(n, 1) * (width + pad)), 0.0f);
    std::vector<float> gate(kv.size(), 0.0f);
    slot_mapping.assign(static_cast<std::size_t>(n), 0);
    for (std::size_t k = 0; k < members.size(); ++k) {
      const sequence& s = seqs[members[k]];
      for (std::int64_t t = 0; t < cu[k + 1] - cu[k]; ++t) {
        const std::int64_t q = s.position + t, row = cu[k] + t;  // token q of the sequence
        std::memcpy(&kv[row * (width + pad)], &s.kv[q * width], static_cast<std::size_t>(width) * sizeof(float));
        std::memcpy(&gate[row * (width + pad)], &s.gate[q * width], static_cast<std::size_t>(width) * sizeof(float));
        // The block that ends at q: its row's pool slot; other entries are never read.
        slot_mapping[row] = (q + 1) % m == 0 ? s.pool_row[(q + 1) / m - 1] : (in.u8() % 2 ? -2 : 0x7FFFFFFF);
      }
    }
    append_metadata md;
    md.segments = static_cast<std::int64_t>(members.size());
    md.total_tokens = n;
    md.cu_seqlens = cu.data();
    md.positions = positions.data();
    md.state_slots = state_slots.data();
    md.slot_mapping = slot_mapping.data();
    const tensor_view<const float> kv_view{kv.data(), n, width, width + pad};
    const tensor_view<const float> gate_view{gate.data(), n, width, width + pad};

    // A batch whose state does not continue: rejected, nothing changed.
    if (!rejected_once) {
      for (std::size_t k = 0; k < members.size(); ++k) {
        if (positions[k] == 0 || state_slots[k] < 0 || cu[k + 1] == cu[k]) continue;
        rejected_once = true;
        std::vector<std::int32_t> bad = positions;
        bad[k] += 1 + in.u8() % 3;
        // Every row skipped: the metadata passes validate_append_metadata, only the state is wrong.
        const std::vector<std::int32_t> no_rows(slot_mapping.size(), -1);
        append_metadata wrong = md;
        wrong.positions = bad.data();
        wrong.slot_mapping = no_rows.data();
        const std::vector<Out> pool_before = pool;
        const std::vector<std::uint8_t> state_before = state, written_before = written;
        const status s = ref::append(problem, kv_view, gate_view, wrong, states, rows, written.data());
        if (s != status::invalid_argument) fail(c, "a batch whose state ends elsewhere was not rejected", k);
        if (pool != pool_before || state != state_before || written != written_before) {
          fail(c, "a rejected batch changed the states, rows or written flags", k);
        }
        break;
      }
    }

    const status s = ref::append(problem, kv_view, gate_view, md, states, rows, written.data());
    if (s != status::ok) fail(c, "a valid batch was rejected", static_cast<int>(s), md.segments);
    for (std::size_t i : members) {
      sequence& q = seqs[i];
      const std::int64_t len = q.chunks[q.next_chunk++];
      q.position += len;
      // An empty segment is ignored (its state untouched): the state is the previous append's.
      if (q.state_slot >= 0 && q.position > 0) check_state(c, q, state.data() + q.state_slot * slot_bytes, q.position);
    }
  }

  // Every row where it was sent, bit for bit; the rest untouched.
  std::vector<std::uint8_t> sent(static_cast<std::size_t>(pool_rows), 0);
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    const sequence& s = seqs[i];
    for (std::size_t r = 0; r < s.pool_row.size(); ++r) {
      if (s.pool_row[r] < 0) continue;
      sent[s.pool_row[r]] = 1;
      if (std::memcmp(&pool[s.pool_row[r] * d], &expected[i][r * d], static_cast<std::size_t>(d) * sizeof(Out)) != 0) {
        fail(c, "an appended row differs from the one-shot prefill's (sequence, row)", static_cast<std::int64_t>(i),
             static_cast<std::int64_t>(r));
      }
    }
  }
  for (std::int64_t r = 0; r < pool_rows; ++r) {
    if (written[r] != sent[r]) fail(c, "`written` does not mark exactly the rows sent", r);
    if (sent[r]) continue;
    for (std::int64_t j = 0; j < d; ++j) {
      if (std::memcmp(&pool[r * d + j], &sentinel, sizeof(Out)) != 0) fail(c, "a pool row no row was sent to changed", r);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz_input in(data, size);
  const std::uint8_t a = in.u8(), b = in.u8();
  stream_case c;
  c.ratio = a & 1 ? 128 : 4;
  c.d = b % 8 == 7 ? 512 : 128;
  c.bias = a & 2;
  c.norm = a & 4;
  c.rope = a & 8;
  c.hadamard = a & 16;
  c.fp32_rows = a & 32;
  c.reject = a & 64;
  if (c.fp32_rows) {
    run<float>(c, in);
  } else {
    run<double>(c, in);
  }
  return 0;
}
