// SPDX-License-Identifier: Apache-2.0
#pragma once
//! span<T>: a pointer and an element count. Trivially copyable, usable inside kernels.

#include <cstdint>
#include <type_traits>

#include "dsv4kv/config.hpp"

namespace dsv4kv {

//! A non-owning view of `size` consecutive elements at `data` (host or device memory).
template <class T>
struct span {
  T* data = nullptr;       // [size]
  std::int64_t size = 0;   // elements

  DSV4KV_HOST_DEVICE T& operator[](std::int64_t i) const { return data[i]; }
  DSV4KV_HOST_DEVICE bool empty() const { return size == 0; }
  DSV4KV_HOST_DEVICE T* begin() const { return data; }
  DSV4KV_HOST_DEVICE T* end() const { return data + size; }
  DSV4KV_HOST_DEVICE std::int64_t size_bytes() const { return size * static_cast<std::int64_t>(sizeof(T)); }

  //! The same elements, read-only.
  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  DSV4KV_HOST_DEVICE operator span<const U>() const { return {data, size}; }
};

static_assert(std::is_trivially_copyable_v<span<float>>);

}  // namespace dsv4kv
