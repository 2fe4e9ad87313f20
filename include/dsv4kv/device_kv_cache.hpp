// SPDX-License-Identifier: Apache-2.0
#pragma once
//! device_kv_cache: a compressed_kv_cache that owns its device memory (cudaMalloc), plus a write
//! workspace, freed on destruction. For examples, tests and quick experiments; an engine allocates
//! with its own allocator and uses compressed_kv_cache::create directly (kv_cache_layout.hpp).
//! Never throws: creation reports failure through its status. Plain C++; link dsv4kv::dsv4kv.

#include <cstdint>

#include "dsv4kv/compressed_kv_cache.hpp"
#include "dsv4kv/kv_cache_layout.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"

namespace dsv4kv {

//! Owns one cache allocation (make_kv_cache_layout(shape).total_bytes) and one workspace.
class device_kv_cache {
 public:
  //! Empty: no memory, an empty cache.
  device_kv_cache() = default;
  ~device_kv_cache();
  device_kv_cache(const device_kv_cache&) = delete;
  device_kv_cache& operator=(const device_kv_cache&) = delete;
  device_kv_cache(device_kv_cache&& other) noexcept;
  device_kv_cache& operator=(device_kv_cache&& other) noexcept;

  //! Allocates a cache of `shape` and a workspace for appends of up to `max_append_rows` rows
  //! (0: none; pass your own workspace to append). On success `out` owns both (its previous
  //! memory is freed); otherwise `out` is unchanged and the status says why: invalid_argument (a
  //! bad shape, max_append_rows < 0), cuda_error (cudaMalloc failed, e.g. no device or no memory).
  //! Synchronizes like cudaMalloc does; not for use inside CUDA graph capture.
  [[nodiscard]] static status create(const kv_cache_shape& shape, std::int64_t max_append_rows,
                                     device_kv_cache& out) noexcept;

  //! The cache view over the owned memory.
  [[nodiscard]] compressed_kv_cache& cache() noexcept { return cache_; }
  [[nodiscard]] const compressed_kv_cache& cache() const noexcept { return cache_; }
  //! Where each array lives inside storage().
  [[nodiscard]] const kv_cache_layout& layout() const noexcept { return layout_; }
  //! Base of the cache allocation (layout().total_bytes bytes, device memory).
  [[nodiscard]] void* storage() const noexcept { return storage_; }
  //! The owned workspace (cache().workspace_bytes(max_append_rows) bytes, device memory).
  [[nodiscard]] span<std::uint8_t> workspace() const noexcept { return workspace_; }

 private:
  void release() noexcept;
  void* storage_ = nullptr;
  span<std::uint8_t> workspace_{};
  kv_cache_layout layout_{};
  compressed_kv_cache cache_{};
};

}  // namespace dsv4kv
