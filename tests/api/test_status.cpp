// SPDX-License-Identifier: Apache-2.0
// Status codes through the host API, on the CPU: every status value is reachable through a call
// and carries its message; every entry point reaches each rejection it documents, through
// can_implement_* and through the entry itself (which rejects before launching, so no GPU is
// needed); sizes at the limits are rejected without overflow. Pointers are fake addresses: the
// validation never reads them.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "dsv4kv/compress.hpp"
#include "dsv4kv/compressed_kv_cache.hpp"
#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/hadamard.hpp"
#include "dsv4kv/quantize_fp8.hpp"
#include "dsv4kv/quantize_nvfp4.hpp"
#include "dsv4kv/rope.hpp"
#include "dsv4kv/status.hpp"
#include "fake_address.hpp"

using namespace dsv4kv;

namespace {

// Entries are only called on arguments can_implement_* rejects: nothing is ever launched.
constexpr cudaStream_t stream = nullptr;
constexpr std::int64_t huge = std::numeric_limits<std::int64_t>::max();

}  // namespace

TEST_CASE("status: every value is reachable through a call and has its message", "[status]") {
  const tensor_view<float> rows{fake<float>(0), 4, 128, 128};  // [4, 128]
  struct reached {
    status expected;
    const char* message;
    std::function<status()> call;
  };
  const std::vector<reached> table = {
      {status::ok, "ok", [&] { return can_implement_hadamard_rotate(rows); }},
      {status::invalid_argument, "invalid argument: a size or parameter is out of range",
       [&] { return hadamard_rotate({rows.data, -1, 128, 128}, stream); }},
      {status::null_pointer, "null pointer: a required pointer is null",
       [&] { return hadamard_rotate({nullptr, 4, 128, 128}, stream); }},
      {status::unsupported_shape, "unsupported shape: no kernel for this head dim / ratio / rope dim",
       [&] { return hadamard_rotate({rows.data, 4, 256, 256}, stream); }},
      {status::misaligned, "misaligned: a pointer or row stride breaks the required alignment",
       [&] { return hadamard_rotate({rows.data + 1, 4, 128, 128}, stream); }},
      {status::aliasing, "aliasing: an output overlaps an input or another output",
       [&] {
         const tensor_view<const float> x{fake<float>(0), 4, 128, 128};
         const nvfp4_rows out{fake<std::uint8_t>(0, 1024), fake<std::uint8_t>(2), fake<float>(3), 4, 128};
         return quantize_nvfp4(x, out, fake<float>(4), stream);
       }},
      {status::cuda_error, "CUDA error: the CUDA runtime reported a failure",
       [] { return status_from_cuda(cudaErrorInvalidValue); }},
      {status::capacity_exceeded, "capacity exceeded: the rows do not fit in the cache's free capacity",
       [] {
         // An HCA cache of 1 row; a prefill of 256 tokens emits 2 rows.
         const nvfp4_rows main{fake<std::uint8_t>(10), fake<std::uint8_t>(11), fake<float>(12), 1, 512};
         compressed_kv_cache cache;
         if (compressed_kv_cache::create(main, fp8_rows{}, cache) != status::ok) return status::ok;
         compress_params<float, float> p;
         p.ratio = 128;
         p.kv = {fake<const float>(0), 256, 512, 512};
         p.gate = {fake<const float>(2), 256, 512, 512};
         return cache.can_implement_append_prefill(p, span<std::uint8_t>{});
       }},
  };
  std::set<int> covered;
  for (const reached& r : table) {
    INFO("status " << static_cast<int>(r.expected));
    CHECK(r.call() == r.expected);
    CHECK(std::string(status_string(r.expected)) == r.message);
    covered.insert(static_cast<int>(r.expected));
  }
  CHECK(covered.size() == static_cast<std::size_t>(status_count));  // every value, once
  CHECK(status_from_cuda(cudaSuccess) == status::ok);
  CHECK(status_from_cuda(cudaErrorMemoryAllocation) == status::cuda_error);
}

TEST_CASE("status: compress reaches each documented rejection", "[status][compress]") {
  compress_params<float, float> p;  // CSA, d = 128: kv / gate [16, 256] -> out [4, 128]
  p.ratio = csa_ratio;
  p.kv = {fake<const float>(0), 16, 256, 256};
  p.gate = {fake<const float>(1), 16, 256, 256};
  const tensor_view<float> out{fake<float>(2), 4, 128, 128};
  CHECK(can_implement_compress(p, out) == status::ok);
  auto both = [&](const compress_params<float, float>& q, tensor_view<float> o) {
    const status s = can_implement_compress(q, o);
    if (s != status::ok) CHECK(compress(q, o, stream) == s);
    return s;
  };
  auto with = [&](auto edit) {
    compress_params<float, float> q = p;
    edit(q);
    return both(q, out);
  };
  CHECK(with([](auto& q) { q.kv.cols = 128; }) == status::invalid_argument);
  CHECK(with([](auto& q) { q.eps = -1.0f; }) == status::invalid_argument);
  CHECK(with([](auto& q) { q.eps = std::numeric_limits<float>::quiet_NaN(); }) == status::invalid_argument);
  CHECK(with([](auto& q) { q.gate.data = nullptr; }) == status::null_pointer);
  CHECK(with([](auto& q) { q.ratio = 8; }) == status::unsupported_shape);
  CHECK(both(p, {out.data, 4, 256, 256}) == status::unsupported_shape);
  CHECK(with([](auto& q) { q.kv.row_stride = 258; }) == status::misaligned);
  CHECK(with([](auto& q) { q.norm_weight = fake<const float>(3, 4); }) == status::misaligned);
  CHECK(with([&](auto& q) { q.kv.data = out.data + 64; }) == status::aliasing);
  // RoPE: table checks, positions past the table, sizes at the limits.
  auto rope_on = [&](auto edit) {
    return with([&](auto& q) {
      q.rope = {fake<const float>(4), fake<const float>(5), 16, 64};
      edit(q);
    });
  };
  CHECK(rope_on([](auto&) {}) == status::ok);
  CHECK(rope_on([](auto& q) { q.rope.rope_dim = 62; }) == status::unsupported_shape);
  CHECK(rope_on([](auto& q) { q.rope.sin = nullptr; }) == status::null_pointer);
  CHECK(rope_on([](auto& q) { q.rope.max_pos = 12; }) == status::invalid_argument);  // row 3 sits at 12
  CHECK(rope_on([](auto& q) { q.start_position = huge; }) == status::invalid_argument);
  CHECK(rope_on([](auto& q) { q.rope.max_pos = huge; }) == status::invalid_argument);
  CHECK(rope_on([](auto& q) { q.rope.cos = fake<const float>(2); }) == status::aliasing);
}

TEST_CASE("status: rope and hadamard_rotate reach each documented rejection", "[status][rope][hadamard]") {
  const tensor_view<float> rows{fake<float>(0), 8, 128, 128};
  rope_params p;
  p.table = {fake<const float>(1), fake<const float>(2), 64, 64};
  p.ratio = 4;
  CHECK(can_implement_rope(rows, p) == status::ok);
  auto with = [&](tensor_view<float> r, auto edit) {
    rope_params q = p;
    edit(q);
    const status s = can_implement_rope(r, q);
    if (s != status::ok) CHECK(rope(r, q, stream) == s);
    return s;
  };
  auto none = [](rope_params&) {};
  CHECK(with({rows.data, -1, 128, 128}, none) == status::invalid_argument);
  CHECK(with(rows, [](auto& q) { q.ratio = 0; }) == status::invalid_argument);
  CHECK(with(rows, [](auto& q) { q.start_position = 40; }) == status::invalid_argument);  // 40 + 7*4 >= 64
  CHECK(with(rows, [](auto& q) { q.start_position = huge; }) == status::invalid_argument);
  CHECK(with(rows, [](auto& q) { q.table.max_pos = std::int64_t{1} << 50; }) == status::invalid_argument);
  CHECK(with(rows, [](auto& q) { q.table.cos = nullptr; }) == status::null_pointer);
  CHECK(with(rows, [](auto& q) { q.table.rope_dim = 0; }) == status::unsupported_shape);
  CHECK(with(rows, [](auto& q) { q.table.rope_dim = 256; }) == status::unsupported_shape);
  CHECK(with({rows.data, 8, 130, 132}, none) == status::misaligned);  // rotated channels not 16-byte aligned
  CHECK(with({rows.data + 2, 8, 128, 128}, none) == status::misaligned);
  CHECK(with(rows, [](auto& q) { q.positions = fake<const std::int32_t>(3, 2); }) == status::misaligned);
  CHECK(with(rows, [&](auto& q) { q.positions = reinterpret_cast<const std::int32_t*>(rows.data + 8); }) ==
        status::aliasing);

  CHECK(can_implement_hadamard_rotate({fake<float>(0), 0, 512, 512}) == status::ok);
  CHECK(can_implement_hadamard_rotate({fake<float>(0), 3, 512, 516}) == status::ok);
  CHECK(can_implement_hadamard_rotate({fake<float>(0), 3, 512, 514}) == status::misaligned);
  CHECK(can_implement_hadamard_rotate({fake<float>(0), huge, 512, 512}) == status::invalid_argument);
}

TEST_CASE("status: quantize_nvfp4 and quantize_fp8 reach each documented rejection", "[status][quantize]") {
  const tensor_view<const float> x{fake<const float>(0), 8, 128, 128};
  const nvfp4_rows q{fake<std::uint8_t>(1), fake<std::uint8_t>(2), fake<float>(3), 8, 128};
  const fp8_rows f{fake<std::uint8_t>(1), fake<float>(3), 8, 128};
  float* amax = fake<float>(4);
  auto nvfp4 = [&](tensor_view<const float> xx, nvfp4_rows o, float* a) {
    const status s = can_implement_quantize_nvfp4(xx, o, a);
    if (s != status::ok) CHECK(quantize_nvfp4(xx, o, a, stream) == s);
    return s;
  };
  auto fp8 = [&](tensor_view<const float> xx, fp8_scale_mode m, fp8_rows o, float* a) {
    const status s = can_implement_quantize_fp8(xx, m, o, a);
    if (s != status::ok) CHECK(quantize_fp8(xx, m, o, a, stream) == s);
    return s;
  };
  CHECK(can_implement_quantize_nvfp4(x, q, amax) == status::ok);
  CHECK(nvfp4(x, {q.codes, q.block_scales, q.global_scales, 7, 128}, amax) == status::invalid_argument);
  CHECK(nvfp4(x, {q.codes, q.block_scales, q.global_scales, -8, 128}, amax) == status::invalid_argument);
  CHECK(nvfp4({x.data, huge, 128, 128}, {q.codes, q.block_scales, q.global_scales, huge, 128}, amax) ==
        status::invalid_argument);
  CHECK(nvfp4(x, q, nullptr) == status::null_pointer);
  CHECK(nvfp4({x.data, 8, 120, 128}, {q.codes, q.block_scales, q.global_scales, 8, 120}, amax) ==
        status::unsupported_shape);
  CHECK(nvfp4(x, {q.codes + 1, q.block_scales, q.global_scales, 8, 128}, amax) == status::misaligned);
  CHECK(nvfp4(x, {q.codes, q.block_scales, q.global_scales, 8, 128}, reinterpret_cast<float*>(q.codes + 64)) ==
        status::aliasing);
  // Codes in the last 512 bytes of the address space: one past the end would be 2^64, which no
  // pointer holds, so the array wraps and is rejected.
  std::uint8_t* top = reinterpret_cast<std::uint8_t*>(~std::uintptr_t{0} - 511);
  CHECK(nvfp4(x, {top, q.block_scales, q.global_scales, 8, 128}, amax) == status::invalid_argument);

  CHECK(can_implement_quantize_fp8(x, fp8_scale_mode::pow2, f, amax) == status::ok);
  CHECK(fp8(x, static_cast<fp8_scale_mode>(2), f, amax) == status::invalid_argument);
  CHECK(fp8(x, fp8_scale_mode::fp32, {nullptr, f.scales, 8, 128}, amax) == status::null_pointer);
  CHECK(fp8({x.data, 8, 40, 128}, fp8_scale_mode::fp32, {f.codes, f.scales, 8, 40}, amax) ==
        status::unsupported_shape);
  CHECK(fp8(x, fp8_scale_mode::fp32, {f.codes + 2, f.scales, 8, 128}, amax) == status::misaligned);
  CHECK(fp8(x, fp8_scale_mode::fp32, {f.codes, reinterpret_cast<float*>(amax + 4), 8, 128}, amax) ==
        status::aliasing);
}

TEST_CASE("status: dequant entry points reach each documented rejection", "[status][dequant]") {
  const const_nvfp4_rows pool{fake<const std::uint8_t>(0), fake<const std::uint8_t>(1), fake<const float>(2), 64, 128};
  const const_fp8_rows pool8{fake<const std::uint8_t>(0), fake<const float>(2), 64, 128};
  const tensor_view<bf16_bits> all{fake<bf16_bits>(3), 64, 128, 128};
  CHECK(can_implement_dequant_nvfp4(pool, all) == status::ok);
  CHECK(can_implement_dequant_fp8(pool8, tensor_view<float>{fake<float>(3), 64, 128, 132}) == status::ok);
  CHECK(can_implement_dequant_nvfp4(pool, {all.data, 63, 128, 128}) == status::invalid_argument);
  CHECK(dequant_nvfp4(pool, {all.data, 63, 128, 128}, stream) == status::invalid_argument);
  CHECK(dequant_nvfp4({pool.codes, pool.block_scales, nullptr, 64, 128}, all, stream) == status::null_pointer);
  CHECK(dequant_nvfp4({pool.codes, pool.block_scales, pool.global_scales, 64, 256},
                      tensor_view<bf16_bits>{all.data, 64, 256, 256}, stream) == status::unsupported_shape);
  CHECK(dequant_nvfp4({pool.codes, pool.block_scales, pool.global_scales, 64, 120},
                      tensor_view<bf16_bits>{all.data, 64, 120, 120}, stream) == status::invalid_argument);
  CHECK(dequant_fp8(pool8, tensor_view<bf16_bits>{all.data, 64, 128, 132}, stream) == status::misaligned);
  CHECK(dequant_fp8(pool8, tensor_view<bf16_bits>{fake<bf16_bits>(0, 128), 64, 128, 128}, stream) ==
        status::aliasing);

  const std::int32_t* idx = fake<const std::int32_t>(4);
  const tensor_view<float> sel{fake<float>(3), 8, 128, 128};
  CHECK(can_implement_dequant_nvfp4_selected(pool, {idx, 8}, sel) == status::ok);
  CHECK(can_implement_dequant_nvfp4_selected(pool, {idx, 0}, tensor_view<float>{nullptr, 0, 128, 128}) == status::ok);
  CHECK(dequant_nvfp4_selected(pool, {idx, 7}, sel, stream) == status::invalid_argument);
  CHECK(dequant_nvfp4_selected(pool, {idx, huge}, tensor_view<float>{sel.data, huge, 128, 128}, stream) ==
        status::invalid_argument);
  CHECK(dequant_fp8_selected(pool8, {nullptr, 8}, sel, stream) == status::null_pointer);
  CHECK(dequant_fp8_selected(pool8, {fake<const std::int32_t>(4, 2), 8}, sel, stream) == status::misaligned);
  CHECK(dequant_fp8_selected(pool8, {reinterpret_cast<const std::int32_t*>(sel.data + 4), 8}, sel, stream) ==
        status::aliasing);

  const tensor_view<const std::int32_t> idx2{idx, 3, 8, 8};
  const batched_rows_view<bf16_bits> bout{fake<bf16_bits>(3), 3, 8, 128, 128, 2048};
  CHECK(can_implement_dequant_nvfp4_selected_batched(pool, idx2, bout) == status::ok);
  CHECK(can_implement_dequant_fp8_selected_batched(pool8, idx2, bout) == status::ok);
  auto batched = [&](tensor_view<const std::int32_t> i, batched_rows_view<bf16_bits> o) {
    const status s = can_implement_dequant_nvfp4_selected_batched(pool, i, o);
    if (s != status::ok) CHECK(dequant_nvfp4_selected_batched(pool, i, o, stream) == s);
    return s;
  };
  CHECK(batched(idx2, {bout.data, 3, 8, 128, 128, 1000}) == status::invalid_argument);  // tokens overlap
  CHECK(batched(idx2, {bout.data, 3, 8, 128, 128, 1028}) == status::misaligned);
  CHECK(batched({idx, 3, 8, 4}, bout) == status::invalid_argument);
  CHECK(batched({idx, 3, 8, huge}, bout) == status::invalid_argument);  // no overflow in the index extent
  CHECK(batched({nullptr, 3, 8, 8}, bout) == status::null_pointer);
  CHECK(batched({reinterpret_cast<const std::int32_t*>(bout.data + 2048 + 6), 3, 8, 8}, bout) == status::aliasing);
  // Strides that no row uses may take any value; extents past 2^50 bytes are rejected.
  CHECK(batched({idx, 1, 1, huge}, {bout.data, 1, 1, 128, huge - 7, huge - 7}) == status::ok);
  CHECK(batched({idx, 0, 8, 8}, {bout.data, 0, 8, 128, huge - 7, 0}) == status::ok);
  CHECK(batched({idx, 2, 1, 1}, {bout.data, 2, 1, 128, 128, std::int64_t{1} << 49}) == status::invalid_argument);
}
