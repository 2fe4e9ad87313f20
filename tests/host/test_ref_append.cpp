// SPDX-License-Identifier: Apache-2.0
// The append model on the host (SPEC §7, append_model.hpp, ref::append): appending a sequence
// token by token, in chunks of 1, 3, m-1, m, m+1 and random sizes, or in mixed batches of several
// sequences (different positions, empty segments, a state slot reused by a new sequence) gives
// exactly (==, in double) the rows of the one-shot prefill ref::write_path_rows; the state layout
// sizes; validate_append_metadata's rules and error bits; a state that does not continue is refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "dsv4kv/append_model.hpp"
#include "dsv4kv/ref/append.hpp"
#include "dsv4kv/ref/write_path.hpp"
#include "dsv4kv/rope_table.hpp"

namespace {

using namespace dsv4kv;

// One stream's model and a few sequences' projections.
struct stream_case {
  int ratio;
  std::int64_t d, width;
  bool hadamard;
  std::vector<float> bias, norm;
  rope_table table;
  stream_case(int m, std::int64_t dd, bool had, std::uint32_t seed)
      : ratio(m), d(dd), width(compress_input_width(m, dd)), hadamard(had) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n01(0.0f, 1.0f);
    bias.resize(static_cast<std::size_t>(m * width));
    for (float& b : bias) b = 0.5f * n01(rng);
    norm.resize(static_cast<std::size_t>(dd));
    for (float& w : norm) w = 0.5f + std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
    REQUIRE(make_yarn_rope_table(4096, 64, table) == status::ok);
  }
  ref::append_problem problem() const {
    ref::append_problem p;
    p.ratio = ratio;
    p.d = d;
    p.position_bias = bias.data();
    p.norm_weight = norm.data();
    p.rope = table.view();
    p.hadamard = hadamard;
    return p;
  }
  // Projections [tokens, width] of one sequence: kv ~ N(0, 1) * per-channel scale, gate with a
  // per-channel spread and offset.
  std::pair<std::vector<float>, std::vector<float>> sequence(std::int64_t tokens, std::uint32_t seed) const {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n01(0.0f, 1.0f);
    std::vector<float> scale(static_cast<std::size_t>(width)), spread(scale.size());
    for (std::size_t j = 0; j < scale.size(); ++j) {
      scale[j] = 0.25f + 3.0f * std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
      spread[j] = 0.05f + 4.0f * std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
    }
    std::vector<float> kv(static_cast<std::size_t>(tokens * width)), gate(kv.size());
    for (std::int64_t t = 0; t < tokens; ++t) {
      for (std::int64_t j = 0; j < width; ++j) {
        kv[t * width + j] = n01(rng) * scale[j];
        gate[t * width + j] = n01(rng) * spread[j];
      }
    }
    return {kv, gate};
  }
  // The one-shot prefill rows [floor(T/m), d] of a sequence (the oracle).
  std::vector<double> prefill(const std::vector<float>& kv, const std::vector<float>& gate) const {
    const std::int64_t tokens = static_cast<std::int64_t>(kv.size()) / width, n = tokens / ratio;
    ref::write_path_problem p;
    p.ratio = ratio;
    p.kv = make_tensor_view<const float>(kv.data(), tokens, width);
    p.gate = make_tensor_view<const float>(gate.data(), tokens, width);
    p.position_bias = bias.data();
    p.norm_weight = norm.data();
    p.rope = table.view();
    p.hadamard = hadamard;
    std::vector<double> out(static_cast<std::size_t>(n * d));
    REQUIRE(ref::write_path_rows(p, make_tensor_view(out.data(), n, d)) == status::ok);
    return out;
  }
};

// One segment of a batch under construction.
struct segment {
  std::int32_t state_slot;
  std::int64_t position;
  const std::vector<float>* kv;  // the whole sequence
  const std::vector<float>* gate;
  std::int64_t length;
  std::int64_t pool_base;  // pool row of the sequence's block 0
};

// Runs one batch through ref::append: concatenates the segments' tokens, maps the row of block i
// of each sequence to pool row pool_base + i.
status run_batch(const stream_case& sc, const std::vector<segment>& segs, std::vector<std::uint8_t>& state,
                 std::vector<double>& pool, std::int64_t pool_rows, std::vector<std::uint8_t>* written = nullptr) {
  std::vector<float> kv, gate;
  std::vector<std::int32_t> cu{0}, pos, slots, mapping;
  for (const segment& s : segs) {
    for (std::int64_t k = 0; k < s.length; ++k) {
      const std::int64_t q = s.position + k;
      kv.insert(kv.end(), s.kv->begin() + q * sc.width, s.kv->begin() + (q + 1) * sc.width);
      gate.insert(gate.end(), s.gate->begin() + q * sc.width, s.gate->begin() + (q + 1) * sc.width);
      mapping.push_back((q + 1) % sc.ratio == 0 ? static_cast<std::int32_t>(s.pool_base + q / sc.ratio) : -7);
    }
    cu.push_back(static_cast<std::int32_t>(cu.back() + s.length));
    pos.push_back(static_cast<std::int32_t>(s.position));
    slots.push_back(s.state_slot);
  }
  append_metadata m;
  m.segments = static_cast<std::int64_t>(segs.size());
  m.total_tokens = cu.back();
  m.cu_seqlens = cu.data();
  m.positions = pos.data();
  m.state_slots = slots.data();
  m.slot_mapping = mapping.data();
  return ref::append(sc.problem(), make_tensor_view<const float>(kv.data(), m.total_tokens, sc.width),
                     make_tensor_view<const float>(gate.data(), m.total_tokens, sc.width), m,
                     span<std::uint8_t>{state.data(), static_cast<std::int64_t>(state.size())},
                     make_tensor_view(pool.data(), pool_rows, sc.d), written ? written->data() : nullptr);
}

// Chunk sizes covering `tokens`: `size` each (the last one shorter), or random in [1, 2m+3] for size 0.
std::vector<std::int64_t> chunking(std::int64_t tokens, std::int64_t size, int ratio, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int64_t> c;
  for (std::int64_t done = 0; done < tokens;) {
    std::int64_t l = size > 0 ? size : std::uniform_int_distribution<std::int64_t>(1, 2 * ratio + 3)(rng);
    l = std::min(l, tokens - done);
    c.push_back(l);
    done += l;
  }
  return c;
}

}  // namespace

TEST_CASE("append model: state layout", "[append][ref]") {
  CHECK(append_state_ring_tokens(4) == 8);
  CHECK(append_state_ring_tokens(128) == 127);
  CHECK(append_state_bytes(4, 512) == 16 + 2 * 8 * 1024 * 4);
  CHECK(append_state_bytes(4, 128) == 16 + 2 * 8 * 256 * 4);
  CHECK(append_state_bytes(128, 512) == 16 + 2 * 127 * 512 * 4);
  CHECK(append_state_bytes(128, 0) == 0);
  CHECK(append_state_first_kept(4, 0) == 0);
  CHECK(append_state_first_kept(4, 9) == 4);   // prev block [4, 8) + partial [8, 9)
  CHECK(append_state_first_kept(4, 8) == 4);   // prev block [4, 8), no partial
  CHECK(append_state_first_kept(128, 300) == 256);
  CHECK(append_state_ring_row(4, 13) == 5);
  CHECK(append_state_ring_row(128, 300) == 44);
  CHECK(append_row_count(4, 3, 1) == 1);
  CHECK(append_row_count(4, 4, 3) == 0);
  CHECK(append_segment_needs_state(4, 4, 4));        // CSA: the previous block is in the state
  CHECK_FALSE(append_segment_needs_state(4, 0, 9));  // from position 0: nothing before it
  CHECK_FALSE(append_segment_needs_state(128, 256, 128));  // HCA at a block start
  CHECK(append_segment_needs_state(128, 257, 127));
  CHECK_FALSE(append_segment_needs_state(128, 257, 10));  // no row finishes
  CHECK(append_state_tag(4, 512) != append_state_tag(128, 512));
  CHECK(append_state_tag(4, 512) != append_state_tag(4, 128));
}

TEST_CASE("append model: any chunking gives the one-shot prefill's rows exactly", "[append][ref]") {
  struct cfg {
    int ratio;
    std::int64_t d;
    bool hadamard;
    std::int64_t tokens;
  };
  for (const cfg c : {cfg{4, 128, true, 203}, cfg{4, 512, false, 61}, cfg{128, 128, false, 3 * 128 + 77}}) {
    const stream_case sc(c.ratio, c.d, c.hadamard, 11u + static_cast<std::uint32_t>(c.ratio));
    const auto [kv, gate] = sc.sequence(c.tokens, 5u);
    const std::vector<double> want = sc.prefill(kv, gate);
    const std::int64_t n = c.tokens / c.ratio;
    const std::vector<std::int64_t> sizes = {c.tokens, 1, 3, c.ratio - 1, c.ratio, c.ratio + 1, 0, 0};
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      INFO("ratio " << c.ratio << " d " << c.d << " chunk size " << sizes[k] << " (0: random)");
      std::vector<std::uint8_t> state(static_cast<std::size_t>(2 * append_state_bytes(c.ratio, c.d)), 0xCD);
      std::vector<double> pool(static_cast<std::size_t>(n * c.d), -1.0);
      std::vector<std::uint8_t> written(static_cast<std::size_t>(n), 0);
      std::int64_t position = 0;
      for (const std::int64_t l : chunking(c.tokens, sizes[k], c.ratio, 100u + static_cast<std::uint32_t>(k))) {
        REQUIRE(run_batch(sc, {{1, position, &kv, &gate, l, 0}}, state, pool, n, &written) == status::ok);
        position += l;
      }
      CHECK(std::all_of(written.begin(), written.end(), [](std::uint8_t w) { return w == 1; }));
      CHECK(pool == want);  // bit for bit
    }
  }
}

TEST_CASE("append model: mixed batches of several sequences", "[append][ref]") {
  for (const int ratio : {4, 128}) {
    const std::int64_t d = 128;
    const stream_case sc(ratio, d, ratio == 4, 77u);
    // Four sequences; the fourth starts later in the state slot of the first once it is done.
    const std::int64_t lengths[4] = {9 * ratio + 1, 5 * ratio + 3, 2 * ratio, 4 * ratio + 2};
    std::vector<std::vector<float>> kv(4), gate(4);
    std::int64_t pool_base[4], pool_rows = 0;
    for (int s = 0; s < 4; ++s) {
      std::tie(kv[s], gate[s]) = sc.sequence(lengths[s], 300u + static_cast<std::uint32_t>(s));
      pool_base[s] = pool_rows;
      pool_rows += lengths[s] / ratio;
    }
    std::vector<std::uint8_t> state(static_cast<std::size_t>(3 * append_state_bytes(ratio, d)), 0);
    std::vector<double> pool(static_cast<std::size_t>(pool_rows * d), -1.0);
    std::int64_t done[4] = {0, 0, 0, 0};
    const std::int32_t state_of[4] = {0, 1, 2, 0};
    std::mt19937 rng(9);
    for (int step = 0; done[0] < lengths[0] || done[1] < lengths[1] || done[2] < lengths[2] || done[3] < lengths[3];
         ++step) {
      INFO("ratio " << ratio << " step " << step);
      std::vector<segment> batch;
      const bool first_done = done[0] >= lengths[0];  // before this step
      for (int s = 0; s < 4; ++s) {
        if (s == 3 && !first_done) continue;  // waits for sequence 0's state slot
        if (s == 2 && step < 3) continue;              // joins later
        std::int64_t l = std::uniform_int_distribution<std::int64_t>(0, ratio + 5)(rng);  // 0: empty segment
        if (step % 5 == 0) l = 1;                                                          // decode steps
        l = std::min(l, lengths[s] - done[s]);
        batch.push_back({state_of[s], done[s], &kv[s], &gate[s], l, pool_base[s]});
        done[s] += l;
      }
      std::shuffle(batch.begin(), batch.end(), rng);
      REQUIRE(run_batch(sc, batch, state, pool, pool_rows) == status::ok);
    }
    for (int s = 0; s < 4; ++s) {
      INFO("ratio " << ratio << " sequence " << s);
      const std::vector<double> want = sc.prefill(kv[s], gate[s]);
      CHECK(std::equal(want.begin(), want.end(), pool.begin() + pool_base[s] * d));
    }
  }
}

TEST_CASE("append model: a state that does not continue the sequence is refused", "[append][ref]") {
  const stream_case sc(4, 128, true, 5u);
  const auto [kv, gate] = sc.sequence(64, 1u);
  std::vector<std::uint8_t> state(static_cast<std::size_t>(append_state_bytes(4, 128)), 0);
  std::vector<double> pool(static_cast<std::size_t>(16 * 128), -1.0);
  const std::vector<double> before = pool;
  // Fresh (zero) state: appending at position 5 is refused, nothing changes.
  CHECK(run_batch(sc, {{0, 5, &kv, &gate, 8, 0}}, state, pool, 16) == status::invalid_argument);
  CHECK(pool == before);
  // Position 0 starts fresh whatever the state holds; then a gap or a repeat is refused.
  REQUIRE(run_batch(sc, {{0, 0, &kv, &gate, 10, 0}}, state, pool, 16) == status::ok);
  CHECK(run_batch(sc, {{0, 11, &kv, &gate, 4, 0}}, state, pool, 16) == status::invalid_argument);
  CHECK(run_batch(sc, {{0, 9, &kv, &gate, 4, 0}}, state, pool, 16) == status::invalid_argument);
  CHECK(run_batch(sc, {{0, 10, &kv, &gate, 4, 0}}, state, pool, 16) == status::ok);
  // The state of another stream (its tag) is refused.
  const stream_case other(4, 512, false, 6u);
  std::vector<std::uint8_t> big(static_cast<std::size_t>(append_state_bytes(4, 512)), 0);
  std::memcpy(big.data(), state.data(), 16);  // header says next_position 14, tag of (4, 128)
  const auto [kv5, gate5] = other.sequence(64, 2u);
  std::vector<double> pool5(static_cast<std::size_t>(16 * 512), -1.0);
  CHECK(run_batch(other, {{0, 14, &kv5, &gate5, 4, 0}}, big, pool5, 16) == status::invalid_argument);
}

TEST_CASE("append model: validate_append_metadata rules and error bits", "[append][ref]") {
  // Three segments of 5, 0 and 7 tokens (CSA, m = 4).
  std::vector<std::int32_t> cu{0, 5, 5, 12}, pos{8, 3, 0}, slots{0, 1, 2}, map(12, -1);
  map[3] = 0;   // segment 0 ends block 2 at token 3 (position 11)
  map[8] = 1;   // segment 2: block 0 ends at token 5 + 3
  map[11] = 2;  // segment 2: block 1
  append_metadata m;
  m.segments = 3;
  m.total_tokens = 12;
  m.cu_seqlens = cu.data();
  m.positions = pos.data();
  m.state_slots = slots.data();
  m.slot_mapping = map.data();
  append_metadata_report r;
  const auto check = [&](std::uint32_t bits, std::int64_t segment) {
    const status s = validate_append_metadata(m, 4, 3, 8, &r);
    CHECK(s == (bits == 0 ? status::ok : status::invalid_argument));
    CHECK(r.errors == bits);
    CHECK(r.segment == (bits == 0 ? -1 : segment));
  };
  check(0, -1);
  cu[2] = 4;  // not non-decreasing
  check(append_error_cu_seqlens, 1);
  cu[2] = 5;
  cu[3] = 13;  // past total_tokens
  check(append_error_cu_seqlens, 2);
  cu[3] = 12;
  pos[0] = -1;
  check(append_error_position, 0);
  pos[0] = 0x7FFFFFFF - 2;  // position + length past 2^31 - 1
  check(append_error_position, 0);
  pos[0] = 8;
  slots[2] = 3;  // out of range
  check(append_error_state_slot, 2);
  slots[2] = -1;  // segment 2 starts at 0: needs no state
  check(0, -1);
  slots[0] = -1;  // segment 0 (position 8, CSA) needs its state
  check(append_error_state_slot, 0);
  slots[0] = 2;
  slots[2] = 2;  // shared by two non-empty segments
  check(append_error_duplicate_state, 2);
  slots[2] = 1;  // shared with the empty segment 1: fine
  check(0, -1);
  map[8] = 8;  // pool slot out of range
  check(append_error_pool_slot, 2);
  map[8] = -2;
  check(append_error_pool_slot, 2);
  map[8] = 0;  // same pool row as segment 0's row
  check(append_error_duplicate_pool, 2);
  map[8] = 1;
  map[0] = 99;  // a token that ends no block: never read
  check(0, -1);
  m.max_segment_tokens = 7;  // declared bound: the longest segment (7 tokens) fits
  check(0, -1);
  m.max_segment_tokens = 6;  // segment 2 is longer than declared (the empty segment 1 is not)
  check(append_error_segment_length, 2);
  m.max_segment_tokens = 4;  // so is segment 0: the first one is reported
  check(append_error_segment_length, 0);
  m.max_segment_tokens = -1;
  CHECK(validate_append_metadata(m, 4, 3, 8, &r) == status::invalid_argument);
  m.max_segment_tokens = 0;
  m.segments = 0;
  check(0, -1);
  CHECK(validate_append_metadata(m, 8, 3, 8, &r) == status::unsupported_shape);
}

TEST_CASE("append model: append_max_segment_rows bounds the rows of any segment of at most that many tokens",
          "[append][ref]") {
  for (const int m : {4, 128}) {
    for (std::int64_t t = 1; t <= 3 * m; ++t) {
      std::int64_t most = 0;
      for (std::int64_t p = 0; p < 2 * m; ++p) {
        for (std::int64_t l = 0; l <= t; ++l) most = std::max(most, append_row_count(m, p, l));
      }
      INFO("m = " << m << ", tokens = " << t);
      CHECK(append_max_segment_rows(m, t) == most);  // exact: reached at some position
    }
    // No overflow at the top of the range (a caller may declare any non-negative bound).
    constexpr std::int64_t top = std::numeric_limits<std::int64_t>::max();
    CHECK(append_max_segment_rows(m, top) == top / m + 1);
  }
}

// The largest sum of floor(L / q) + 1 over at most b non-empty segments of total <= n tokens, by
// exhaustive search (the bound append_scan_units claims to be exact).
static std::int64_t max_units_brute_force(std::int64_t n, std::int64_t b, std::int64_t q) {
  std::vector<std::vector<std::int64_t>> best(static_cast<std::size_t>(n + 1),
                                              std::vector<std::int64_t>(static_cast<std::size_t>(b + 1), 0));
  for (std::int64_t segs = 1; segs <= b; ++segs) {
    for (std::int64_t tokens = 1; tokens <= n; ++tokens) {
      std::int64_t v = best[tokens][segs - 1];  // one segment fewer
      for (std::int64_t len = 1; len <= tokens; ++len) v = std::max(v, len / q + 1 + best[tokens - len][segs - 1]);
      best[tokens][segs] = v;
    }
  }
  return best[n][b];
}

TEST_CASE("append model: append_scan_units is the exact bound on the units a batch can need", "[append][ref]") {
  for (const std::int64_t q : {2, 3, 4, 8, 16, 128}) {
    for (std::int64_t n = 0; n <= 48; ++n) {
      for (std::int64_t b = 0; b <= 12; ++b) {
        INFO("n = " << n << ", b = " << b << ", q = " << q);
        CHECK(append_scan_units(n, b, q) == max_units_brute_force(n, b, q));
      }
    }
  }
  CHECK(append_scan_units(256, 256, 8) == 256);  // a decode step of 256 sequences: one unit each
  CHECK(append_scan_units(4096, 1, 8) == 4096 / 8 + 1);
  CHECK(append_scan_units(32768, 1, 128) == 32768 / 128 + 1);
}

TEST_CASE("append model: append_single_units bounds one segment's units from floor(cu[0] / q)", "[append][ref]") {
  // Every first token b, length L >= 1 (b + L <= N) and position p of one segment: the units
  // [floor(b / q), floor(b / q) + max(1, ceil(rows / ROWS))) the direct mapping gives it end within
  // append_single_units(N, q), and the bound is reached. The rows depend on p only through p mod m
  // (p in [0, m] covers every residue); the bound's argument holds for any m, and m = 4 (CSA) and
  // m = 16 keep the search exhaustive and fast (m = 128 is spot-checked below).
  for (const int m : {4, 16}) {
    for (const std::int64_t rows_per_unit : {1, 2}) {
      const std::int64_t q = m * rows_per_unit;
      for (std::int64_t n = 1; n <= 3 * q + 3; ++n) {
        std::int64_t reached = 0;
        for (std::int64_t b = 0; b < n; ++b) {
          for (std::int64_t len = 1; b + len <= n; ++len) {
            for (std::int64_t p = 0; p <= m; ++p) {
              const std::int64_t rows = append_row_count(m, p, len);
              const std::int64_t units = rows > rows_per_unit ? (rows + rows_per_unit - 1) / rows_per_unit : 1;
              const std::int64_t last = b / q + units;  // one past the segment's last unit
              reached = std::max(reached, last);
              if (last > append_single_units(n, q)) FAIL("n " << n << " b " << b << " L " << len << " p " << p);
            }
          }
        }
        CHECK(reached == append_single_units(n, q));
      }
    }
  }
  CHECK(append_single_units(4096, 128) == 32);  // an HCA chunk of 4K tokens: its 32 rows, no spare unit
  CHECK(append_single_units(4096, 8) == 512);
  // m = 128, q = 128 (HCA): the worst segments of a 4K chunk (any start, any position) fit 32 units.
  for (const std::int64_t b : {0, 1, 127, 128, 4000}) {
    for (const std::int64_t p : {0, 1, 64, 127, 128, 4096, 4097}) {
      const std::int64_t len = 4096 - b;
      const std::int64_t rows = append_row_count(128, p, len);
      CHECK(b / 128 + std::max<std::int64_t>(1, rows) <= append_single_units(4096, 128));
    }
  }
}
