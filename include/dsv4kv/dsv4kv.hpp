// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Umbrella header of the public API. Compiles with a plain C++17 compiler (the host API headers
//! only need <cuda_runtime_api.h> for cudaStream_t).
//!
//! numerics/  e2m1.hpp, e4m3.hpp, bf16.hpp        element conversions (host and device)
//! formats/   nvfp4_rows.hpp, fp8_rows.hpp         row storage views and byte sizes
//!            nvfp4_encoding.hpp, fp8_encoding.hpp the per-row quantization recipes
//! views/     span.hpp, tensor_view.hpp            non-owning views over raw pointers
//! ref/       host reference (the oracle): compress, rmsnorm, rope, hadamard, codecs, write_path,
//!            append
//! rope_table.hpp                                  cos/sin tables and the YaRN builder
//! append_model.hpp                                append's state layout, metadata rules, validator
//! status.hpp, cuda_status.hpp                     status codes
//! host API (device pointers, a cudaStream_t, returns status; kernels in kernels/*.cuh):
//!   compress.hpp, rope.hpp, hadamard.hpp            write-path stages
//!   quantize_nvfp4.hpp, quantize_fp8.hpp            amax -> quantize chains
//!   write_path.hpp                                  the whole write path (fused or two-kernel)
//!   append.hpp                                      streaming append: decode, chunked prefill,
//!                                                   varlen batches with state and paged slots
//!   dequant.hpp                                     read path: all rows or selected rows -> BF16
//! the cache of one layer (the seed's KVCache):
//!   kv_cache_layout.hpp                             bytes to allocate, where each array lives
//!   compressed_kv_cache.hpp                         non-owning view: append a prefill, read back
//!   device_kv_cache.hpp                             owning helper (cudaMalloc) for examples, tests

#include "dsv4kv/host.hpp"

#include "dsv4kv/append.hpp"
#include "dsv4kv/compress.hpp"
#include "dsv4kv/compressed_kv_cache.hpp"
#include "dsv4kv/cuda_status.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/device_kv_cache.hpp"
#include "dsv4kv/hadamard.hpp"
#include "dsv4kv/quantize_fp8.hpp"
#include "dsv4kv/quantize_nvfp4.hpp"
#include "dsv4kv/rope.hpp"
#include "dsv4kv/write_path.hpp"
