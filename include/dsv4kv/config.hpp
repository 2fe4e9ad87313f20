// dsv4kv — compressed KV-cache write and read paths for DeepSeek-V4-class attention.
// SPDX-License-Identifier: Apache-2.0
#pragma once

//! Version of the library (kept in step with project() in CMakeLists.txt).
#define DSV4KV_VERSION_MAJOR 0
#define DSV4KV_VERSION_MINOR 1
#define DSV4KV_VERSION_PATCH 0

// DSV4KV_HOST_DEVICE marks the small functions that run identically on the CPU (host reference,
// tests) and on the GPU (kernels). Without a CUDA compiler they are ordinary inline functions, so
// every header that uses it also compiles with a plain C++17 compiler.
#if defined(__CUDACC__)
#define DSV4KV_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define DSV4KV_HOST_DEVICE inline
#endif

// True while compiling device code for a GPU.
#if defined(__CUDA_ARCH__)
#define DSV4KV_DEVICE_PASS 1
#else
#define DSV4KV_DEVICE_PASS 0
#endif
