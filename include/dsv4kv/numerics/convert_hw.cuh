// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Pair conversions float -> E2M1x2 and float -> E4M3x2: the GPU's conversion instruction where
//! the target has it, the portable recipe (numerics/e2m1.hpp, e4m3.hpp) everywhere else.
//!
//! cvt.rn.satfinite.e2m1x2.f32  Blackwell family-specific targets (sm_100a/f, sm_103a/f, sm_110,
//!                              sm_120a/f): the same condition cuda_fp8.h uses for
//!                              __CUDA_FP8_INTERNAL_CAN_RELY_ON_PTX_FOR_SHORTTYPESCVT__.
//! cvt.rn.satfinite.e4m3x2.f32  sm_89 and newer (Ada, Hopper, Blackwell).
//!
//! Both instructions round each element to nearest-even and saturate to the largest finite value,
//! which is exactly what e2m1_encode / e4m3_encode compute: tests/host/test_convert_hw.cpp proves
//! the portable pair functions equal cuda_fp4.h / cuda_fp8.h's pair conversions (whose device
//! branch is this very instruction) on the host, and tests/gpu/test_convert_hw.cpp compares the
//! instruction with the portable path on the device for every float bit pattern. So every target
//! produces the same bytes.
//!
//! The quantizers never hand these a NaN (a non-finite row is zeroed before any conversion), so
//! their bytes do not depend on how an instruction treats NaN; the device test covers it anyway.
//!
//! Operand order: the instruction's first source lands in the high half, so (hi, lo) is passed to
//! place element 2k (`lo`) in the low nibble / byte, as SPEC §5 stores it.

#include <cstdint>

#include "dsv4kv/config.hpp"
#include "dsv4kv/numerics/e2m1.hpp"
#include "dsv4kv/numerics/e4m3.hpp"

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 1000) && defined(__CUDA_ARCH_FAMILY_SPECIFIC__) && \
    (__CUDA_ARCH_FAMILY_SPECIFIC__ >= 1000) && (__CUDA_ARCH_FAMILY_SPECIFIC__ < 1300)
#define DSV4KV_HW_E2M1X2 1  // this device pass converts to E2M1 with cvt.rn.satfinite.e2m1x2.f32
#else
#define DSV4KV_HW_E2M1X2 0
#endif

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ >= 890)
#define DSV4KV_HW_E4M3X2 1  // this device pass converts to E4M3 with cvt.rn.satfinite.e4m3x2.f32
#else
#define DSV4KV_HW_E4M3X2 0
#endif

namespace dsv4kv {

//! Two E2M1 codes in one byte: e2m1_encode(lo) in the low nibble, e2m1_encode(hi) in the high one.
//! Equal to e2m1_pack(e2m1_encode(lo), e2m1_encode(hi)) on every target.
DSV4KV_HOST_DEVICE std::uint8_t e2m1x2_encode(float lo, float hi) {
#if DSV4KV_HW_E2M1X2
  std::uint16_t r;
  asm("{ .reg .b8 t;\n"
      "  cvt.rn.satfinite.e2m1x2.f32 t, %2, %1;\n"
      "  mov.b16 %0, {t, 0}; }\n"
      : "=h"(r)
      : "f"(lo), "f"(hi));
  return static_cast<std::uint8_t>(r);
#else
  return e2m1_pack(e2m1_encode(lo), e2m1_encode(hi));
#endif
}

//! Two E4M3FN codes: e4m3_encode(lo) in the low byte, e4m3_encode(hi) in the high byte.
//! Equal to e4m3_encode(lo) | e4m3_encode(hi) << 8 on every target.
DSV4KV_HOST_DEVICE std::uint16_t e4m3x2_encode(float lo, float hi) {
#if DSV4KV_HW_E4M3X2
  std::uint16_t r;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %2, %1;" : "=h"(r) : "f"(lo), "f"(hi));
  return r;
#else
  return static_cast<std::uint16_t>(e4m3_encode(lo) | (static_cast<std::uint16_t>(e4m3_encode(hi)) << 8));
#endif
}

}  // namespace dsv4kv
