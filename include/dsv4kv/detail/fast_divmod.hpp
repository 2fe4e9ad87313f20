// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Division of 31-bit numerators by a divisor fixed at launch time, by a multiply-high and a shift
//! (Granlund-Montgomery round-up method, as in CUTLASS's FastDivmod). Exact for every numerator in
//! [0, 2^31) and every divisor in [1, 2^31). Built on the host, used in kernels.

#include <cstdint>

#include "dsv4kv/config.hpp"

namespace dsv4kv::detail {

struct fast_divmod {
  std::uint32_t divisor = 1;
  std::uint32_t multiplier = 0;  // ceil(2^(31 + l) / divisor), l = ceil(log2(divisor)); 0 for divisor 1
  std::uint32_t shift = 0;       // l - 1

  fast_divmod() = default;

  //! Precomputes the multiplier for `d` in [1, 2^31).
  DSV4KV_HOST_DEVICE explicit fast_divmod(std::uint32_t d) : divisor(d) {
    if (d <= 1u) return;
    std::uint32_t l = 0;
    while ((std::uint64_t{1} << l) < d) ++l;  // l = ceil(log2(d)), 1..31
    multiplier = static_cast<std::uint32_t>(((std::uint64_t{1} << (31u + l)) + d - 1u) / d);
    shift = l - 1u;
  }

  //! n / divisor for n in [0, 2^31).
  DSV4KV_HOST_DEVICE std::uint32_t div(std::uint32_t n) const {
    if (divisor == 1u) return n;
#if DSV4KV_DEVICE_PASS
    return __umulhi(n, multiplier) >> shift;
#else
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(n) * multiplier) >> 32) >> shift;
#endif
  }
};

}  // namespace dsv4kv::detail
