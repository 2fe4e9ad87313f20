// SPDX-License-Identifier: Apache-2.0
// device_kv_cache (include/dsv4kv/device_kv_cache.hpp): cudaMalloc'd storage for a
// compressed_kv_cache and its workspace.
#include "dsv4kv/device_kv_cache.hpp"

#include <cuda_runtime_api.h>

#include <utility>

#include "dsv4kv/cuda_status.hpp"

namespace dsv4kv {
namespace {

// cudaMalloc of `bytes` (nothing for 0). A failure is cleared from the runtime's last-error slot,
// so that it is not reported later as the failure of an unrelated launch.
status device_allocate(std::int64_t bytes, void** p) {
  *p = nullptr;
  if (bytes <= 0) return status::ok;
  const cudaError_t e = cudaMalloc(p, static_cast<std::size_t>(bytes));
  if (e != cudaSuccess) {
    *p = nullptr;
    (void)cudaGetLastError();
  }
  return status_from_cuda(e);
}

}  // namespace

device_kv_cache::~device_kv_cache() { release(); }

device_kv_cache::device_kv_cache(device_kv_cache&& other) noexcept
    : storage_(std::exchange(other.storage_, nullptr)),
      workspace_(std::exchange(other.workspace_, {})),
      layout_(std::exchange(other.layout_, {})),
      cache_(std::exchange(other.cache_, {})) {}

device_kv_cache& device_kv_cache::operator=(device_kv_cache&& other) noexcept {
  if (this != &other) {
    release();
    storage_ = std::exchange(other.storage_, nullptr);
    workspace_ = std::exchange(other.workspace_, {});
    layout_ = std::exchange(other.layout_, {});
    cache_ = std::exchange(other.cache_, {});
  }
  return *this;
}

void device_kv_cache::release() noexcept {
  if (storage_ != nullptr) (void)cudaFree(storage_);
  if (workspace_.data != nullptr) (void)cudaFree(workspace_.data);
  storage_ = nullptr;
  workspace_ = {};
  layout_ = {};
  cache_ = {};
}

status device_kv_cache::create(const kv_cache_shape& shape, std::int64_t max_append_rows,
                               device_kv_cache& out) noexcept {
  if (max_append_rows < 0) return status::invalid_argument;
  device_kv_cache c;
  DSV4KV_RETURN_IF_ERROR(make_kv_cache_layout(shape, c.layout_));
  DSV4KV_RETURN_IF_ERROR(device_allocate(c.layout_.total_bytes, &c.storage_));
  DSV4KV_RETURN_IF_ERROR(compressed_kv_cache::create(c.storage_, c.layout_.total_bytes, c.layout_, c.cache_));
  const std::int64_t ws_bytes = c.cache_.workspace_bytes(max_append_rows);
  void* ws = nullptr;
  DSV4KV_RETURN_IF_ERROR(device_allocate(ws_bytes, &ws));
  c.workspace_ = {static_cast<std::uint8_t*>(ws), ws_bytes};
  out = std::move(c);
  return status::ok;
}

}  // namespace dsv4kv
