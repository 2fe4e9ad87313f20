// SPDX-License-Identifier: Apache-2.0
// detail::fast_divmod (the kernels' division by a launch-time divisor) against integer division.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "dsv4kv/detail/fast_divmod.hpp"

TEST_CASE("fast_divmod equals n / d for numerators below 2^31", "[host][fast_divmod]") {
  std::vector<std::uint32_t> divisors;
  for (std::uint32_t d = 1; d <= 4100; ++d) divisors.push_back(d);
  for (int e = 12; e <= 30; ++e) {
    for (std::int64_t delta = -3; delta <= 3; ++delta) divisors.push_back(static_cast<std::uint32_t>((std::int64_t{1} << e) + delta));
  }
  divisors.push_back(0x7FFFFFFFu);
  divisors.push_back(2147483629u);  // a prime near 2^31
  std::mt19937 rng(0xD1u);
  for (int i = 0; i < 2000; ++i) divisors.push_back(1u + rng() % 0x7FFFFFFFu);

  std::size_t bad = 0;
  for (const std::uint32_t d : divisors) {
    const dsv4kv::detail::fast_divmod f(d);
    // Around multiples of d (where a wrong rounding shows), the ends of the range, random values.
    std::vector<std::uint32_t> ns = {0u, 1u, d - 1u, d, d + 1u, 0x7FFFFFFFu, 0x7FFFFFFEu};
    const std::uint32_t top = 0x7FFFFFFFu / d;
    for (std::uint32_t q : {1u, 2u, 3u, top / 2u, top - 1u, top}) {
      const std::uint64_t m = static_cast<std::uint64_t>(q) * d;
      for (std::int64_t delta = -1; delta <= 1; ++delta) {
        const std::int64_t n = static_cast<std::int64_t>(m) + delta;
        if (n >= 0 && n <= 0x7FFFFFFF) ns.push_back(static_cast<std::uint32_t>(n));
      }
    }
    for (int i = 0; i < 64; ++i) ns.push_back(rng() & 0x7FFFFFFFu);
    for (const std::uint32_t n : ns) {
      if (n > 0x7FFFFFFFu) continue;
      if (f.div(n) != n / d) ++bad;
    }
  }
  REQUIRE(bad == 0);
}
