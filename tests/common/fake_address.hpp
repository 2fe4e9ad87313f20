// SPDX-License-Identifier: Apache-2.0
#pragma once
// Fake device addresses for validation-only tests (never dereferenced): 1 TiB + mib MiB + byte_offset.
#include <cstdint>

template <class T>
T* fake(std::int64_t mib, std::int64_t byte_offset = 0) {
  return reinterpret_cast<T*>((std::uintptr_t{1} << 40) + (static_cast<std::uintptr_t>(mib) << 20) +
                              static_cast<std::uintptr_t>(byte_offset));
}
