// SPDX-License-Identifier: Apache-2.0
// Test-only kernel: evaluates the shared host/device numerics on the GPU, next to CUDA's own
// device conversions, so the host test binary can compare all of them with the host results.
#include <cuda_bf16.h>
#include <cuda_fp4.h>
#include <cuda_fp8.h>

#include "device_buffer.hpp"
#include "dsv4kv/formats/fp8_encoding.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/numerics/e2m1.hpp"
#include "dsv4kv/numerics/e4m3.hpp"
#include "numerics_kernels.hpp"

namespace dsv4kv::test {
namespace {

struct numerics_ptrs {
  const float* x;                       // [n]
  std::uint8_t *e2m1, *e4m3;            // [n]
  std::uint16_t* bf16;                  // [n]
  std::uint8_t *e2m1_cuda, *e4m3_cuda;  // [n]
  std::uint16_t* bf16_cuda;             // [n]
  float *g, *s_enc, *pow2, *mul;        // [n]
  std::uint8_t* sf;                     // [n]
  float* e2m1_decoded;                  // [16]
  float* e4m3_decoded;                  // [256]
  std::int64_t n;
};

__global__ void numerics_kernel(numerics_ptrs p) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < p.n; i += stride) {
    const float x = p.x[i];
    p.e2m1[i] = e2m1_encode(x);
    p.e4m3[i] = e4m3_encode(x);
    p.bf16[i] = bf16_encode(x);
    p.e2m1_cuda[i] = static_cast<std::uint8_t>(__nv_cvt_float_to_fp4(x, __NV_E2M1, cudaRoundNearest));
    p.e4m3_cuda[i] = static_cast<std::uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
    p.bf16_cuda[i] = static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(x)).x;
    row_amax a;
    a.add(x);
    const nvfp4_row_scale rs = nvfp4_row_scale_from_amax(a);
    p.g[i] = rs.decode;
    p.s_enc[i] = rs.encode;
    p.pow2[i] = is_finite_bits(x) && x != 0.0f ? fp8_pow2_scale(abs_bits(x)) : 0.0f;
    row_amax wider;
    wider.add(x * 4.5f);
    const nvfp4_row_scale ws = nvfp4_row_scale_from_amax(wider);
    p.sf[i] = nvfp4_block_scale(abs_bits(x), ws.encode);
    p.mul[i] = nvfp4_block_multiplier(p.sf[i], ws.decode);
  }
  if (blockIdx.x == 0) {
    for (int c = threadIdx.x; c < 256; c += blockDim.x) {
      p.e4m3_decoded[c] = e4m3_decode(static_cast<std::uint8_t>(c));
      if (c < 16) p.e2m1_decoded[c] = e2m1_decode(static_cast<std::uint8_t>(c));
    }
  }
}

}  // namespace

device_numerics run_device_numerics(const std::vector<float>& x) {
  const std::size_t n = x.size();
  device_buffer<float> dx(x), g(n), s_enc(n), pow2(n), mul(n), e2m1_dec(16), e4m3_dec(256);
  device_buffer<std::uint8_t> e2m1(n), e4m3(n), e2m1_cuda(n), e4m3_cuda(n), sf(n);
  device_buffer<std::uint16_t> bf16(n), bf16_cuda(n);
  const numerics_ptrs p{dx.get(),   e2m1.get(),  e4m3.get(), bf16.get(),     e2m1_cuda.get(),
                        e4m3_cuda.get(), bf16_cuda.get(), g.get(), s_enc.get(), pow2.get(),
                        mul.get(),  sf.get(),    e2m1_dec.get(), e4m3_dec.get(), static_cast<std::int64_t>(n)};
  numerics_kernel<<<1024, 256>>>(p);
  DSV4KV_TEST_CUDA(cudaGetLastError());
  DSV4KV_TEST_CUDA(cudaDeviceSynchronize());
  device_numerics r;
  r.e2m1 = e2m1.download();
  r.e4m3 = e4m3.download();
  r.bf16 = bf16.download();
  r.e2m1_cuda = e2m1_cuda.download();
  r.e4m3_cuda = e4m3_cuda.download();
  r.bf16_cuda = bf16_cuda.download();
  r.nvfp4_g = g.download();
  r.nvfp4_s_enc = s_enc.download();
  r.fp8_pow2 = pow2.download();
  r.nvfp4_mul = mul.download();
  r.nvfp4_sf = sf.download();
  r.e2m1_decoded = e2m1_dec.download();
  r.e4m3_decoded = e4m3_dec.download();
  return r;
}

}  // namespace dsv4kv::test
