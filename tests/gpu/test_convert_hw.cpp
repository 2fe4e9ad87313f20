// SPDX-License-Identifier: Apache-2.0
// The hardware pair conversions (numerics/convert_hw.cuh) against the portable recipes on the
// device, for all 2^32 float bit patterns: on Hopper the E4M3 instruction runs (sm_89+), on
// Blackwell both. Together with tests/host/test_convert_hw.cpp this shows every target gives the
// same bytes.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <cstdio>

#include "convert_hw_kernels.hpp"
#include "float_corpus.hpp"

using namespace dsv4kv::test;

TEST_CASE("convert_hw: hardware pair conversions equal the portable path on every float", "[gpu][convert_hw]") {
  int device = 0, major = 0, minor = 0;
  REQUIRE(cudaGetDevice(&device) == cudaSuccess);
  REQUIRE(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess);
  REQUIRE(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) == cudaSuccess);
  const convert_hw_sweep r = run_convert_hw_sweep();
  std::printf("convert_hw on sm_%d%d: e4m3x2 %s, e2m1x2 %s\n", major, minor,
              r.hw_e4m3x2 ? "cvt instruction" : "portable", r.hw_e2m1x2 ? "cvt instruction" : "portable");
  for (std::uint32_t u : r.e2m1_examples) std::printf("e2m1x2 mismatch at lo bits %08x (%a)\n", u, from_bits(u));
  for (std::uint32_t u : r.e4m3_examples) std::printf("e4m3x2 mismatch at lo bits %08x (%a)\n", u, from_bits(u));
  std::printf("mismatches: e2m1x2 %llu (%llu with a NaN input), e4m3x2 %llu (%llu with a NaN input)\n",
              static_cast<unsigned long long>(r.e2m1_mismatches), static_cast<unsigned long long>(r.e2m1_nan_mismatches),
              static_cast<unsigned long long>(r.e4m3_mismatches), static_cast<unsigned long long>(r.e4m3_nan_mismatches));
  CHECK(r.e2m1_mismatches == 0);
  CHECK(r.e4m3_mismatches == 0);
  // Hopper and newer must have exercised the E4M3 instruction (the build targets sm_90a / sm_100a).
  if (major * 10 + minor >= 89) CHECK(r.hw_e4m3x2);
  if (major == 10 && minor == 0) CHECK(r.hw_e2m1x2);  // the sm_100a build on B200 / GB200
  if (!r.hw_e2m1x2) WARN("cvt.rn.satfinite.e2m1x2.f32 is not available on this GPU: E2M1 ran the portable path");
}
