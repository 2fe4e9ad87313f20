// SPDX-License-Identifier: Apache-2.0
// status.hpp, views/, formats/ sizes, compress geometry and detail/view_checks.hpp.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"

using namespace dsv4kv;

TEST_CASE("status: every value has its own message", "[status]") {
  std::set<std::string> messages;
  for (int i = 0; i < status_count; ++i) {
    const std::string m = status_string(static_cast<status>(i));
    CHECK(!m.empty());
    CHECK(m != "unknown status");
    messages.insert(m);
  }
  CHECK(messages.size() == static_cast<std::size_t>(status_count));
  CHECK(std::string(status_string(status::ok)) == "ok");
  CHECK(std::string(status_string(static_cast<status>(99))) == "unknown status");
  CHECK(succeeded(status::ok));
  CHECK(!succeeded(status::aliasing));
}

TEST_CASE("views: span and tensor_view index, stride, const conversion", "[views]") {
  std::vector<int> buf(30);
  for (int i = 0; i < 30; ++i) buf[i] = i;
  tensor_view<int> t{buf.data(), 3, 4, 10};  // 3 rows of 4 inside rows of 10
  CHECK(t(2, 3) == 23);
  CHECK(t.row(1)[0] == 10);
  CHECK(t.extent_elements() == 24);
  CHECK(!t.is_contiguous());
  tensor_view<const int> c = t;
  CHECK(c(1, 2) == 12);
  span<int> s = t.row_span(2);
  CHECK(s.size == 4);
  CHECK(s[3] == 23);
  span<const int> cs = s;
  CHECK(cs.size_bytes() == 16);
  CHECK(make_tensor_view(buf.data(), 5, 6).is_contiguous());
  CHECK(tensor_view<int>{}.extent_elements() == 0);
  static_assert(std::is_trivially_copyable_v<tensor_view<const float>>);
}

TEST_CASE("formats: bytes per row and buffer sizes", "[formats]") {
  CHECK(nvfp4_bytes_per_row(512) == 292);  // 256 + 32 + 4
  CHECK(nvfp4_bytes_per_row(128) == 76);
  CHECK(fp8_bytes_per_row(128) == 132);
  // Against BF16: 1024 / 292 = 3.51x, 256 / 132 = 1.94x.
  CHECK(1024.0 / nvfp4_bytes_per_row(512) == Approx(3.5068).epsilon(1e-4));
  CHECK(256.0 / fp8_bytes_per_row(128) == Approx(1.9394).epsilon(1e-4));
  const auto s = nvfp4_buffer_bytes(1 << 20, 512);
  CHECK(s.codes == 256LL << 20);
  CHECK(s.block_scales == 32LL << 20);
  CHECK(s.global_scales == 4LL << 20);
  CHECK(s.total() == 292LL << 20);
  CHECK(fp8_buffer_bytes(10, 128).total() == 1320);
  CHECK(nvfp4_supports_width(512));
  CHECK(!nvfp4_supports_width(520 + 4));
  CHECK(!nvfp4_supports_width(0));
  std::vector<std::uint8_t> codes(3 * 64), scales(3 * 8);
  std::vector<float> g(3);
  nvfp4_rows r{codes.data(), scales.data(), g.data(), 3, 128};
  CHECK(r.row_codes(2) == codes.data() + 128);
  CHECK(r.row_block_scales(2) == scales.data() + 16);
  const_nvfp4_rows cr = r;
  CHECK(cr.sizes().total() == 3 * 76);
  fp8_rows f{codes.data(), g.data(), 3, 64};
  const_fp8_rows cf = f;
  CHECK(cf.row_codes(1) == codes.data() + 64);
}

TEST_CASE("compress geometry", "[geometry]") {
  CHECK(compress_overlaps(4));
  CHECK(!compress_overlaps(128));
  CHECK(compress_input_width(4, 512) == 1024);
  CHECK(compress_input_width(128, 512) == 512);
  CHECK(compress_slots(4) == 8);
  CHECK(compress_slots(128) == 128);
  CHECK(compressed_row_count(4097, 4) == 1024);
  CHECK(compressed_row_count(127, 128) == 0);
}

TEST_CASE("view checks: shapes, null, alignment, overlap", "[views][checks]") {
  float buf[64];
  CHECK(detail::check_view(make_tensor_view(buf, 4, 16)) == status::ok);
  CHECK(detail::check_view(make_tensor_view(buf, 4, 16), 4, 16) == status::ok);
  CHECK(detail::check_view(make_tensor_view(buf, 4, 16), 4, 8) == status::invalid_argument);
  CHECK(detail::check_view(tensor_view<float>{buf, 4, 16, 8}) == status::invalid_argument);
  CHECK(detail::check_view(tensor_view<float>{buf, -1, 16, 16}) == status::invalid_argument);
  CHECK(detail::check_view(tensor_view<float>{nullptr, 4, 16, 16}) == status::null_pointer);
  CHECK(detail::check_view(tensor_view<float>{nullptr, 0, 16, 16}) == status::ok);
  alignas(16) unsigned char bytes[64];
  CHECK(detail::is_aligned(bytes, 16));
  CHECK(!detail::is_aligned(bytes + 4, 16));
  CHECK(detail::is_aligned(bytes + 4, 4));
  CHECK(detail::ranges_overlap(bytes, 16, bytes + 15, 4));
  CHECK(!detail::ranges_overlap(bytes, 16, bytes + 16, 4));
  CHECK(!detail::ranges_overlap(bytes, 0, bytes, 4));
  CHECK(detail::extent_bytes(tensor_view<float>{buf, 2, 3, 5}) == 32);
}

TEST_CASE("view checks: byte ranges of views and row formats", "[views][checks]") {
  alignas(16) unsigned char bytes[1024];
  const detail::byte_range a{bytes, 100}, b{bytes + 100, 50}, c{bytes + 120, 10};
  CHECK(!detail::overlaps_any(a, {b, c}));
  CHECK(detail::overlaps_any(b, {a, c}));
  CHECK(detail::pairwise_disjoint({a, b}));
  CHECK(!detail::pairwise_disjoint({a, b, c}));
  CHECK(detail::pairwise_disjoint({a, {nullptr, 10}, {bytes, 0}}));  // empty ranges never overlap
  const nvfp4_rows r{bytes, bytes + 128, reinterpret_cast<float*>(bytes + 144), 2, 128};
  const auto nr = detail::nvfp4_ranges(r);
  CHECK(nr[0].bytes == 128);
  CHECK(nr[1].bytes == 16);
  CHECK(nr[2].bytes == 8);
  CHECK(detail::pairwise_disjoint({nr[0], nr[1], nr[2]}));
  CHECK(detail::overlaps_any({bytes + 150, 4}, nr));
  const const_fp8_rows f{bytes, reinterpret_cast<const float*>(bytes + 256), 2, 128};
  const auto fr = detail::fp8_ranges(f);
  CHECK(fr[0].bytes == 256);
  CHECK(!detail::overlaps_any({bytes + 264, 8}, fr));
  float fl[12];
  CHECK(detail::range_of(tensor_view<float>{fl, 2, 3, 5}).bytes == 32);
}

TEST_CASE("view checks: array limits, no overflow, no wrap", "[views][checks]") {
  constexpr std::int64_t big = std::numeric_limits<std::int64_t>::max();
  float* p = reinterpret_cast<float*>(std::uintptr_t{1} << 40);  // never dereferenced
  CHECK(detail::fits_array(detail::max_array_bytes / 4, 4));
  CHECK(!detail::fits_array(detail::max_array_bytes / 4 + 1, 4));
  CHECK(!detail::fits_array(-1, 4));
  CHECK(detail::fits_array(big, 0));
  CHECK(detail::addressable(p, detail::max_array_bytes));
  CHECK(!detail::addressable(p, detail::max_array_bytes + 1));
  CHECK(detail::addressable(reinterpret_cast<void*>(~std::uintptr_t{0} - 16), 16));   // one past the end: 2^64 - 1
  CHECK(!detail::addressable(reinterpret_cast<void*>(~std::uintptr_t{0} - 15), 16));  // one past the end: 2^64
  // Extents: exact below the limit, -1 above it, whatever the sizes (no signed overflow).
  CHECK(detail::bounded_extent_elements<float>(3, 4, 10) == 24);
  CHECK(detail::bounded_extent_elements<float>(1, 4, big) == 4);  // one row: the stride is unused
  CHECK(detail::bounded_extent_elements<float>(2, 4, big) == -1);
  CHECK(detail::bounded_extent_elements<float>(big, big, big) == -1);
  CHECK(detail::check_view(tensor_view<float>{p, 1, 4, big}) == status::ok);
  CHECK(detail::check_view(tensor_view<float>{p, big, 4, 4}) == status::invalid_argument);
  CHECK(detail::check_view(tensor_view<float>{nullptr, big, big, big}) == status::invalid_argument);
  CHECK(detail::check_view(tensor_view<float>{reinterpret_cast<float*>(~std::uintptr_t{0} - 63), 4, 4, 4}) ==
        status::invalid_argument);
  // Row formats: the three (two) arrays within the limit and the address space.
  CHECK(detail::check_storage(nvfp4_rows{reinterpret_cast<std::uint8_t*>(p), reinterpret_cast<std::uint8_t*>(p),
                                         p, std::int64_t{1} << 40, 512}) == status::ok);
  CHECK(detail::check_storage(nvfp4_rows{nullptr, nullptr, nullptr, big, 512}) == status::invalid_argument);
  CHECK(detail::check_storage(nvfp4_rows{nullptr, nullptr, nullptr, 4, -16}) == status::invalid_argument);
  CHECK(detail::check_storage(fp8_rows{nullptr, nullptr, 2, big}) == status::invalid_argument);
  CHECK(detail::check_storage(fp8_rows{reinterpret_cast<std::uint8_t*>(~std::uintptr_t{0} - 255), p, 2, 128}) ==
        status::invalid_argument);
}
