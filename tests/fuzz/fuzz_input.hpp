// SPDX-License-Identifier: Apache-2.0
#pragma once
// The fuzz targets' reader of libFuzzer's input: bytes in order, zeros once they run out (so every
// input, however short, decodes to a call).
#include <cstddef>
#include <cstdint>

namespace dsv4kv::fuzz {

class fuzz_input {
 public:
  fuzz_input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint64_t bytes(int n) {  // n little-endian bytes
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(u8()) << (8 * i);
    return v;
  }
  std::uint32_t u32() { return static_cast<std::uint32_t>(bytes(4)); }
  std::int64_t i8() { return static_cast<std::int8_t>(u8()); }
  std::int64_t i16() { return static_cast<std::int16_t>(bytes(2)); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace dsv4kv::fuzz
