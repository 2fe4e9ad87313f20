// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Programmatic dependent launch (PDL, sm_90+): the device side of a launch made with
//! cudaLaunchAttributeProgrammaticStreamSerialization, which lets a kernel start while the kernel
//! before it on the stream is still running.
//!   grid_dependency_wait       blocks until every grid this one depends on has completed and its
//!                              memory is visible; a kernel calls it before its first global read
//!                              or write, so it is correct whatever kernel came before
//!   grid_dependents_launch     lets the next kernel of the stream (if launched with PDL) start
//!                              once every CTA of this grid has called it or exited; that kernel
//!                              still waits for this one to complete before touching memory
//! Both are no-ops in a launch without the attribute and below sm_90.

namespace dsv4kv::detail {

__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void grid_dependents_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

}  // namespace dsv4kv::detail
