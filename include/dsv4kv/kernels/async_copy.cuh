// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Asynchronous global -> shared copies (cp.async, sm_80+): a thread copies 4, 8 or 16 bytes into
//! shared memory without holding them in registers, then waits for its own copies.
//!   cp_async<BYTES>(smem, gmem)  one copy (16 bytes bypass L1; 4 and 8 go through it)
//!   cp_async_commit()            closes the thread's group of copies issued so far
//!   cp_async_wait_all()          waits until every group of the thread has landed; the data is
//!                                then visible to the issuing thread (other threads need a barrier)
//! Both addresses are aligned to BYTES.

namespace dsv4kv::detail {

template <int BYTES>
__device__ __forceinline__ void cp_async(void* smem, const void* gmem) {
  static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  if constexpr (BYTES == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(__cvta_generic_to_global(gmem)) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2;" ::"r"(s), "l"(__cvta_generic_to_global(gmem)), "n"(BYTES)
                 : "memory");
  }
#else
  __trap();  // the kernels that stage rows are built for sm_90 and later
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

__device__ __forceinline__ void cp_async_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;" ::: "memory");
#endif
}

}  // namespace dsv4kv::detail
