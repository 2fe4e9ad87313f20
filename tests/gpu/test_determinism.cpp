// SPDX-License-Identifier: Apache-2.0
// Determinism at realistic sizes (T = 65536 tokens of CSA-512 main KV -> NVFP4, HCA-512 main KV
// with BF16 projections -> NVFP4, CSA-128 indexer keys -> Hadamard -> FP8): identical bytes
//   (a) across two runs of the same call;
//   (b) across streams: the same call issued on a blocking and on a non-blocking stream at once,
//       into separate outputs (and separate workspaces / states);
//   (c) across the launch configurations the library may choose: the write path's fused kernel
//       and two-kernel chain; append in one launch, in chunks of 4097, in random chunks, and as
//       batches of four copies of the sequence with different chunk boundaries (different grids,
//       segments per CTA, ring / no-ring token sources); dequant of all rows, of the identity
//       selection, of the identity selection batched over tokens, of a random selection.
// Every output sits between guard bands (tests/common/guarded_buffer.hpp); every reference is the
// two-kernel chain or the host decoder, both checked against the double reference elsewhere.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>  // before device_buffer.hpp: its cudaMalloc(&T*) needs the template overload

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <numeric>
#include <type_traits>
#include <vector>

#include "append_fixtures.hpp"
#include "device_buffer.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "guarded_buffer.hpp"
#include "write_path_fixtures.hpp"

using namespace dsv4kv;
using namespace dsv4kv::test;

namespace {

constexpr std::int64_t tokens = 65536;

const stream_spec csa_main{"CSA-512 main KV -> NVFP4, FP32 projections", 4, 512, true, false, {false, true, false, true}};
const stream_spec hca_main{"HCA-512 main KV -> NVFP4, BF16 projections and bias", 128, 512, true, false,
                           {true, true, true, true}};
const stream_spec csa_indexer{"CSA-128 indexer -> Hadamard -> FP8", 4, 128, false, true, {false, true, false, true}};
const stream_spec* const all_streams[] = {&csa_main, &hca_main, &csa_indexer};

// The 65536-token projections of a stream, drawn once per process (host memory only; each test
// case makes its own device copy).
const compress_case& projections(const stream_spec& s) {
  static std::map<const stream_spec*, compress_case> cache;
  auto it = cache.find(&s);
  if (it == cache.end()) {
    it = cache.emplace(&s, make_compress_case(s.ratio, s.d, tokens, s.opt, 0xDE7E0000u + s.ratio * 1000 + s.d)).first;
  }
  return it->second;
}

// A blocking stream (synchronises with the legacy default stream) and a non-blocking one.
struct stream_pair {
  cudaStream_t blocking = nullptr, non_blocking = nullptr;
  stream_pair() {
    DSV4KV_TEST_CUDA(cudaStreamCreate(&blocking));
    DSV4KV_TEST_CUDA(cudaStreamCreateWithFlags(&non_blocking, cudaStreamNonBlocking));
  }
  ~stream_pair() {
    (void)cudaStreamDestroy(blocking);
    (void)cudaStreamDestroy(non_blocking);
  }
  stream_pair(const stream_pair&) = delete;
  stream_pair& operator=(const stream_pair&) = delete;
  void sync() const {
    DSV4KV_TEST_CUDA(cudaStreamSynchronize(blocking));
    DSV4KV_TEST_CUDA(cudaStreamSynchronize(non_blocking));
  }
};

// An error flags word between guard bands, 0 before the calls.
struct guarded_flags {
  guarded_array<std::uint32_t> buf{1};
  guarded_flags() { buf.upload({0u}); }
  std::uint32_t* get() const { return buf.data(); }
  std::uint32_t value() const { return buf.checked()[0]; }
};

}  // namespace

TEST_CASE("determinism: the write path's bytes across runs, streams and both modes", "[gpu][determinism][write_path]") {
  const device_rope_table table(yarn_table());
  const stream_pair streams;
  constexpr write_path_mode fused = write_path_mode::fused, two_kernel = write_path_mode::two_kernel;
  for (const stream_spec* s : all_streams) {
    INFO(s->name << ", T=" << tokens);
    const compress_case& c = projections(*s);
    const device_compress_case dev(c);
    const std::int64_t n = c.rows(), d = c.d;
    // The two-kernel chain on the legacy default stream: the bytes every other run must give.
    const run_outputs ref(n, d, s->nvfp4);
    const guarded_workspace ws_ref(n, d);
    REQUIRE(write_path_call(*s, c, dev, table.view, ref, ws_ref.span_of(), two_kernel, nullptr) == status::ok);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    const std::vector<std::uint8_t> want = ref.all_bytes();
    const std::vector<unsigned char> want_rows = bytes_of(ws_ref.checked_rows());
    REQUIRE_FALSE(all_bytes_are(want, sentinel_byte));

    // (a) The same call twice, fused and two-kernel, on the legacy default stream.
    {
      const run_outputs f1(n, d, s->nvfp4), f2(n, d, s->nvfp4), t2(n, d, s->nvfp4);
      const guarded_workspace w2(n, d);
      REQUIRE(write_path_call(*s, c, dev, table.view, f1, {nullptr, 0}, fused, nullptr) == status::ok);
      REQUIRE(write_path_call(*s, c, dev, table.view, f2, {nullptr, 0}, fused, nullptr) == status::ok);
      REQUIRE(write_path_call(*s, c, dev, table.view, t2, w2.span_of(), two_kernel, nullptr) == status::ok);
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
      CHECK(first_difference(f1.all_bytes(), want) == -1);
      CHECK(first_difference(f2.all_bytes(), want) == -1);
      CHECK(first_difference(t2.all_bytes(), want) == -1);
      CHECK(first_difference(bytes_of(w2.checked_rows()), want_rows) == -1);
    }
    // (b, c) Both modes on a blocking and a non-blocking stream at once, separate outputs and
    // workspaces, no synchronisation between the four calls.
    {
      const run_outputs fa(n, d, s->nvfp4), fb(n, d, s->nvfp4), ta(n, d, s->nvfp4), tb(n, d, s->nvfp4);
      const guarded_workspace wa(n, d), wb(n, d);
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // the sentinel memsets: the non-blocking stream does not wait
      REQUIRE(write_path_call(*s, c, dev, table.view, fa, {nullptr, 0}, fused, streams.blocking) == status::ok);
      REQUIRE(write_path_call(*s, c, dev, table.view, fb, {nullptr, 0}, fused, streams.non_blocking) == status::ok);
      REQUIRE(write_path_call(*s, c, dev, table.view, ta, wa.span_of(), two_kernel, streams.blocking) == status::ok);
      REQUIRE(write_path_call(*s, c, dev, table.view, tb, wb.span_of(), two_kernel, streams.non_blocking) == status::ok);
      streams.sync();
      CHECK(first_difference(fa.all_bytes(), want) == -1);
      CHECK(first_difference(fb.all_bytes(), want) == -1);
      CHECK(first_difference(ta.all_bytes(), want) == -1);
      CHECK(first_difference(tb.all_bytes(), want) == -1);
      CHECK(first_difference(bytes_of(wa.checked_rows()), want_rows) == -1);
      CHECK(first_difference(bytes_of(wb.checked_rows()), want_rows) == -1);
    }
  }
}

TEST_CASE("determinism: append's bytes for every chunking, batch composition and stream", "[gpu][determinism][append]") {
  const device_rope_table table(yarn_table());
  const stream_pair streams;
  for (const stream_spec* s : all_streams) {
    INFO(s->name << ", T=" << tokens);
    const compress_case& c = projections(*s);
    const device_compress_case dev(c);
    const std::int64_t n = c.rows(), d = c.d, m = s->ratio;
    const pool_row_bytes b = row_bytes_of(*s);

    const std::array<std::vector<std::uint8_t>, 3> want = one_shot_bytes(*s, c, dev, table.view);  // per array

    // Pools of `copies` copies of the sequence: row i of copy k in pool row k * n + i.
    constexpr int copies = 4;
    const prepared_append::row_map row_of = [n](int copy, std::int64_t row) {
      return static_cast<std::int32_t>(copy * n + row);
    };
    struct run {
      const char* what;
      int copies_used;
      run_outputs pool;
      guarded_states states;
      guarded_flags flags;
    };
    const auto make_run = [&](const char* what, int used) {
      return run{what, used, run_outputs(copies * n, d, s->nvfp4), guarded_states(*s, copies), guarded_flags()};
    };
    // Copies [0, used) hold the one-shot bytes and the state of a finished sequence; the other
    // copies' rows are untouched; no byte outside the pool or the states was written; no error.
    const auto check_run = [&](const run& r) {
      INFO(r.what);
      CHECK(r.flags.value() == 0u);
      const std::vector<std::uint8_t> got[3] = {r.pool.codes.checked(), r.pool.scales.checked(), r.pool.global.checked()};
      const std::int64_t per_row[3] = {b.code, b.scale, b.global};
      for (int a = 0; a < 3; ++a) {
        const std::size_t copy_bytes = static_cast<std::size_t>(n * per_row[a]);
        for (int k = 0; k < copies; ++k) {
          INFO("array " << a << " (codes, scales, global scales), copy " << k);
          const std::vector<std::uint8_t> part(got[a].begin() + k * copy_bytes, got[a].begin() + (k + 1) * copy_bytes);
          if (k < r.copies_used) {
            CHECK(first_difference(part, want[a]) == -1);
          } else {
            CHECK(all_bytes_are(part, sentinel_byte));
          }
        }
      }
      const std::vector<std::uint8_t> st = r.states.buf.checked();
      for (int k = 0; k < r.copies_used; ++k) check_state_slot(*s, c, st, k, tokens);
    };

    // The plans: one launch; chunks of 4097; random chunks of 1 .. 3*4096 tokens; four copies at
    // once, each advancing a random 0 .. 6000 tokens per launch (0: an empty segment), the
    // segments' order rotating from launch to launch.
    const append_plan one_shot = single_copy_plan({tokens});
    const append_plan by_4097 = single_copy_plan(fixed_chunks(tokens, 4097));
    const append_plan random = single_copy_plan(random_chunks(tokens, 1, 3 * 4096, 0xC4u + m));
    append_plan batches;
    {
      split_mix_rng rng(0xBA7Cu + m);
      std::int64_t done[copies] = {};
      for (int launch = 0; std::any_of(done, done + copies, [](std::int64_t x) { return x < tokens; }); ++launch) {
        std::vector<plan_segment> segs;
        for (int j = 0; j < copies; ++j) {
          const int k = (j + launch) % copies;
          const std::int64_t l = std::min<std::int64_t>(static_cast<std::int64_t>(rng.next() % 6001), tokens - done[k]);
          segs.push_back({k, done[k], l});
          done[k] += l;
        }
        batches.push_back(segs);
      }
    }
    INFO("launches: one-shot 1, chunks of 4097 " << by_4097.size() << ", random chunks " << random.size()
                                                 << ", batches of four copies " << batches.size());

    // (c) Chunkings and batch compositions, on the legacy default stream.
    struct variant {
      const char* what;
      const append_plan* plan;
      int copies_used;
    };
    const variant variants[] = {{"one launch", &one_shot, 1},
                                {"chunks of 4097", &by_4097, 1},
                                {"random chunks", &random, 1},
                                {"batches of four copies", &batches, copies}};
    for (const variant& v : variants) {
      const prepared_append prepared(*s, c, dev, table.view, *v.plan, row_of);
      run r = make_run(v.what, v.copies_used);
      REQUIRE(prepared.enqueue(r.pool, r.states.view(), r.flags.get(), nullptr) == status::ok);
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
      check_run(r);
    }
    // (a, b) The same chunked append twice at once, on a blocking and a non-blocking stream
    // (separate pools and states), with a third, randomly chunked one queued behind the first.
    {
      const prepared_append p4097(*s, c, dev, table.view, by_4097, row_of);
      const prepared_append prandom(*s, c, dev, table.view, random, row_of);
      run ra = make_run("chunks of 4097, blocking stream", 1), rb = make_run("chunks of 4097, non-blocking stream", 1),
          rc = make_run("random chunks after the first, blocking stream", 1);
      REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // the memsets: the non-blocking stream does not wait
      REQUIRE(p4097.enqueue(ra.pool, ra.states.view(), ra.flags.get(), streams.blocking) == status::ok);
      REQUIRE(p4097.enqueue(rb.pool, rb.states.view(), rb.flags.get(), streams.non_blocking) == status::ok);
      REQUIRE(prandom.enqueue(rc.pool, rc.states.view(), rc.flags.get(), streams.blocking) == status::ok);
      streams.sync();
      check_run(ra);
      check_run(rb);
      check_run(rc);
    }
  }
}

namespace {

// The dequant calls of a pool in either format (pool: a run_outputs of the write path).
template <class OUT>
status dequant_all_rows(const run_outputs& pool, tensor_view<OUT> out, cudaStream_t s) {
  return pool.nvfp4 ? dequant_nvfp4(pool.nvfp4_view(), out, s) : dequant_fp8(pool.fp8_view(), out, s);
}
template <class OUT>
status dequant_rows_selected(const run_outputs& pool, span<const std::int32_t> idx, tensor_view<OUT> out, cudaStream_t s) {
  return pool.nvfp4 ? dequant_nvfp4_selected(pool.nvfp4_view(), idx, out, s)
                    : dequant_fp8_selected(pool.fp8_view(), idx, out, s);
}
template <class OUT>
status dequant_rows_batched(const run_outputs& pool, tensor_view<const std::int32_t> idx, batched_rows_view<OUT> out,
                            cudaStream_t s) {
  return pool.nvfp4 ? dequant_nvfp4_selected_batched(pool.nvfp4_view(), idx, out, s)
                    : dequant_fp8_selected_batched(pool.fp8_view(), idx, out, s);
}

// All rows of the pool to BF16 by the host reference decoder.
std::vector<std::uint16_t> reference_bf16(const run_outputs& pool) {
  const std::int64_t n = pool.n, d = pool.d;
  std::vector<std::uint8_t> codes = pool.codes.checked(), scales = pool.scales.checked(), global = pool.global.checked();
  std::vector<std::uint16_t> out(static_cast<std::size_t>(n * d));
  const tensor_view<std::uint16_t> o = make_tensor_view(out.data(), n, d);
  if (pool.nvfp4) {
    const const_nvfp4_rows in{codes.data(), scales.data(), reinterpret_cast<const float*>(global.data()), n, d};
    REQUIRE(ref::decode_nvfp4_bf16(in, o) == status::ok);
  } else {
    const const_fp8_rows in{codes.data(), reinterpret_cast<const float*>(scales.data()), n, d};
    REQUIRE(ref::decode_fp8_bf16(in, o) == status::ok);
  }
  return out;
}

template <class OUT>
void check_dequant_paths(const run_outputs& pool, const stream_pair& streams) {
  const std::int64_t n = pool.n, d = pool.d, pad = 16;  // strided outputs: 16 elements of gap per row
  INFO((std::is_same_v<OUT, float> ? "FP32 output" : "BF16 output"));
  std::vector<std::int32_t> identity(static_cast<std::size_t>(n));
  std::iota(identity.begin(), identity.end(), 0);
  const device_buffer<std::int32_t> d_identity(identity);
  // A random selection with repeats and bad indices (-1, -2, n, n + 1 -> +0 rows).
  split_mix_rng rng(0x5E1Eu + static_cast<std::uint64_t>(d));
  std::vector<std::int32_t> random(static_cast<std::size_t>(n / 2 + 7));
  for (auto& i : random) i = static_cast<std::int32_t>(rng.next() % static_cast<std::uint64_t>(n + 4)) - 2;
  const device_buffer<std::int32_t> d_random(random);
  const auto k = static_cast<std::int64_t>(random.size());

  // (a) all rows twice; (c) the identity selection, dense and strided, and batched over 16 tokens.
  const guarded_array<OUT> all1(n, d, d), all2(n, d, d), sel(n, d, d + pad), bat(n, d, d), pick(k, d, d + pad);
  const cudaStream_t legacy = nullptr;
  REQUIRE(dequant_all_rows(pool, all1.view(), legacy) == status::ok);
  REQUIRE(dequant_all_rows(pool, all2.view(), legacy) == status::ok);
  REQUIRE(dequant_rows_selected(pool, {d_identity.get(), n}, sel.view(), legacy) == status::ok);
  const std::int64_t tokens_b = 16, kb = n / tokens_b;
  REQUIRE(dequant_rows_batched(pool, {d_identity.get(), tokens_b, kb, kb},
                               batched_rows_view<OUT>{bat.data(), tokens_b, kb, d, d, kb * d}, legacy) == status::ok);
  REQUIRE(dequant_rows_selected(pool, {d_random.get(), k}, pick.view(), legacy) == status::ok);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  const std::vector<OUT> want = all1.checked();
  CHECK(first_difference(all2.checked(), want) == -1);
  CHECK(first_difference(sel.checked(), want) == -1);
  CHECK(first_difference(bat.checked(), want) == -1);
  // The random selection: the all-rows output's rows, +0 rows for the bad indices.
  std::vector<OUT> gathered(static_cast<std::size_t>(k * d), OUT{0});
  for (std::int64_t i = 0; i < k; ++i) {
    const std::int32_t r = random[static_cast<std::size_t>(i)];
    if (r >= 0 && r < n) std::copy_n(want.begin() + r * d, d, gathered.begin() + i * d);
  }
  CHECK(first_difference(pick.checked(), gathered) == -1);
  if constexpr (std::is_same_v<OUT, std::uint16_t>) CHECK(first_difference(want, reference_bf16(pool)) == -1);

  // (b) All rows on a blocking stream and the identity selection on a non-blocking one, at once.
  const guarded_array<OUT> on_a(n, d, d), on_b(n, d, d + pad);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);  // the memsets: the non-blocking stream does not wait
  REQUIRE(dequant_all_rows(pool, on_a.view(), streams.blocking) == status::ok);
  REQUIRE(dequant_rows_selected(pool, {d_identity.get(), n}, on_b.view(), streams.non_blocking) == status::ok);
  streams.sync();
  CHECK(first_difference(on_a.checked(), want) == -1);
  CHECK(first_difference(on_b.checked(), want) == -1);
}

}  // namespace

TEST_CASE("determinism: dequant's bytes across runs, streams and the all / selected / batched paths",
          "[gpu][determinism][dequant]") {
  const device_rope_table table(yarn_table());
  const stream_pair streams;
  for (const stream_spec* s : {&csa_main, &csa_indexer}) {
    INFO(s->name << " rows of T=" << tokens << " tokens");
    const compress_case& c = projections(*s);
    const device_compress_case dev(c);
    const run_outputs pool(c.rows(), c.d, s->nvfp4);  // the fused write path's rows
    REQUIRE(write_path_call(*s, c, dev, table.view, pool, {nullptr, 0}, write_path_mode::fused, nullptr) == status::ok);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    check_dequant_paths<std::uint16_t>(pool, streams);
    check_dequant_paths<float>(pool, streams);
  }
}
