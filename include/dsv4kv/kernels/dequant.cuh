// SPDX-License-Identifier: Apache-2.0
#pragma once
//! The read-path kernel (SPEC §8): stored rows (NVFP4 or FP8, through a chunk reader) -> BF16 bits
//! or FP32, either every row of the pool or the rows an int32 index list selects, per token.
//!
//! Work unit: a chunk of 8 elements of one output row = one 16-byte BF16 store. Consecutive lanes
//! take consecutive chunks, so every warp-wide store writes 512 contiguous bytes (within a row)
//! and every warp-wide code load reads 128 (NVFP4) or 256 (FP8) contiguous bytes: whole cache
//! lines, no partial sectors. Each thread keeps UNROLL chunks in flight (loads issued before any
//! decode), and a grid-stride loop over tiles of BLOCK * UNROLL chunks covers any size.
//! Why the code loads are 4 / 8 bytes and not 16: a 16-byte NVFP4 load feeds 64 bytes of BF16 per
//! lane, whose four 16-byte stores would sit 64 bytes apart across the warp (half-sector writes per
//! instruction). The output is 70-80 % of the traffic, so the mapping keeps the stores perfect;
//! the narrower loads still move whole 128-byte lines per warp instruction.
//!
//! Selected mode: output row (t, j) reads pool row indices[t * index_stride + j]; an index that is
//! negative or >= pool_rows yields a row of +0 and reads nothing from the pool.

#include <cuda_runtime.h>

#include <cstdint>

#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/detail/fast_divmod.hpp"
#include "dsv4kv/kernels/dequant_fp8.cuh"
#include "dsv4kv/kernels/dequant_nvfp4.cuh"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/status.hpp"

namespace dsv4kv::detail {

//! Everything one dequant launch needs. OUT is std::uint16_t (BF16 bits) or float.
template <class READER, class OUT>
struct dequant_params {
  READER in;                         // the pool's arrays
  std::int64_t pool_rows = 0;        // valid source rows (selected mode bound)
  const std::int32_t* indices = nullptr;  // [tokens, index_stride] (selected mode only)
  std::int64_t index_stride = 0;     // elements between two tokens' index lists
  OUT* out = nullptr;                // [tokens, token_stride], row (t, j) at t * token_stride + j * row_stride
  std::int64_t row_stride = 0;       // elements, a multiple of 16 bytes
  std::int64_t token_stride = 0;     // elements, a multiple of 16 bytes
  fast_divmod rows_per_token;        // k: output rows per token (selected mode)
  std::uint64_t chunks = 0;          // output rows * READER::chunks_per_row
};

//! Two floats -> packed BF16 bits {lo in bits 0-15, hi in 16-31}, round to nearest even; equal to
//! bf16_encode on each (cvt.rn.bf16x2.f32 keeps subnormals and gives 0x7FFF for any NaN).
__device__ __forceinline__ std::uint32_t pack_bf16x2_rn(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  std::uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
#else
  return static_cast<std::uint32_t>(bf16_encode(lo)) | (static_cast<std::uint32_t>(bf16_encode(hi)) << 16);
#endif
}

//! One 16-byte global store of four 32-bit words at `dst` (16-byte aligned). Written as PTX so that
//! it stays one vector store in every path (aggregate stores were split into 4-byte stores).
__device__ __forceinline__ void store_16_bytes(void* dst, std::uint32_t a, std::uint32_t b, std::uint32_t c,
                                               std::uint32_t d) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(dst), "r"(a), "r"(b), "r"(c), "r"(d) : "memory");
}

//! Stores 8 decoded values at `dst` (16-byte aligned): one 16-byte store of BF16 bits.
__device__ __forceinline__ void store_chunk(std::uint16_t* dst, const float (&x)[8]) {
  store_16_bytes(dst, pack_bf16x2_rn(x[0], x[1]), pack_bf16x2_rn(x[2], x[3]), pack_bf16x2_rn(x[4], x[5]),
                 pack_bf16x2_rn(x[6], x[7]));
}
//! Stores 8 decoded values at `dst` (16-byte aligned): two 16-byte stores of FP32.
__device__ __forceinline__ void store_chunk(float* dst, const float (&x)[8]) {
  store_16_bytes(dst, __float_as_uint(x[0]), __float_as_uint(x[1]), __float_as_uint(x[2]), __float_as_uint(x[3]));
  store_16_bytes(dst + 4, __float_as_uint(x[4]), __float_as_uint(x[5]), __float_as_uint(x[6]), __float_as_uint(x[7]));
}
//! Stores 8 zeros (+0) at `dst`.
template <class OUT>
__device__ __forceinline__ void store_zero_chunk(OUT* dst) {
  const float zeros[8] = {};
  store_chunk(dst, zeros);
}

//! Dequantizes p.chunks chunks; SELECTED picks source rows through p.indices.
template <class READER, class OUT, bool SELECTED, int BLOCK, int UNROLL>
__global__ void __launch_bounds__(BLOCK) dequant_kernel(const dequant_params<READER, OUT> p) {
  constexpr std::uint64_t CHUNKS_PER_ROW = READER::chunks_per_row;
  static_assert((CHUNKS_PER_ROW & (CHUNKS_PER_ROW - 1)) == 0, "row / column by shift and mask");
  constexpr std::uint64_t TILE = static_cast<std::uint64_t>(BLOCK) * UNROLL;

  for (std::uint64_t first = blockIdx.x * TILE + threadIdx.x; first < p.chunks;
       first += static_cast<std::uint64_t>(gridDim.x) * TILE) {
    std::int64_t src[UNROLL];  // pool row of each chunk, -1: none (zero row or past the end)
    std::int64_t dst[UNROLL];  // element offset of each chunk in p.out
    int col[UNROLL];           // chunk index within its row
    bool live[UNROLL];         // chunk < p.chunks
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const std::uint64_t q = first + static_cast<std::uint64_t>(u) * BLOCK;
      live[u] = q < p.chunks;
      const auto row = static_cast<std::uint32_t>(q / CHUNKS_PER_ROW);  // output row, < 2^31
      col[u] = static_cast<int>(q % CHUNKS_PER_ROW);
      if constexpr (SELECTED) {
        const std::uint32_t t = p.rows_per_token.div(row);
        const std::uint32_t j = row - t * p.rows_per_token.divisor;
        const std::int64_t index = live[u] ? __ldg(p.indices + t * p.index_stride + j) : -1;
        src[u] = (index >= 0 && index < p.pool_rows) ? index : -1;
        dst[u] = t * p.token_stride + j * p.row_stride + col[u] * 8;
      } else {
        src[u] = live[u] ? static_cast<std::int64_t>(row) : -1;
        dst[u] = row * p.row_stride + col[u] * 8;
      }
    }
    typename READER::chunk raw[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      if (src[u] >= 0) raw[u] = p.in.load(src[u], col[u]);
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      if (!live[u]) continue;
      if (src[u] >= 0) {
        float x[8];
        READER::decode(raw[u], x);
        store_chunk(p.out + dst[u], x);
      } else {
        store_zero_chunk(p.out + dst[u]);
      }
    }
  }
}

//! Launch configuration of the library's dequant kernels (the benchmark sweeps others).
inline constexpr int dequant_block = 256;
inline constexpr int dequant_unroll = 4;

//! Launches dequant_kernel for p on `stream` (no launch for empty work). Grid: one tile of
//! BLOCK * UNROLL chunks per block, capped at 2^31 - 1 blocks (the grid-stride loop covers the rest).
template <class READER, class OUT, bool SELECTED, int BLOCK = dequant_block, int UNROLL = dequant_unroll>
[[nodiscard]] status launch_dequant(const dequant_params<READER, OUT>& p, cudaStream_t stream) {
  if (p.chunks == 0) return status::ok;
  constexpr std::uint64_t TILE = static_cast<std::uint64_t>(BLOCK) * UNROLL;
  const std::uint64_t tiles = (p.chunks + TILE - 1) / TILE;
  const auto grid = static_cast<unsigned>(tiles < 0x7FFFFFFFu ? tiles : 0x7FFFFFFFu);
  dequant_kernel<READER, OUT, SELECTED, BLOCK, UNROLL><<<grid, BLOCK, 0, stream>>>(p);
  return last_launch_status();
}

}  // namespace dsv4kv::detail
