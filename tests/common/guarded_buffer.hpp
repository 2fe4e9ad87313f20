// SPDX-License-Identifier: Apache-2.0
#pragma once
// Guard bands of the GPU tests: the one helper every test uses for an output the library writes.
// The output lives inside a device allocation whose every byte starts as sentinel_byte (a memset:
// compute-sanitizer initcheck counts it as initialised, so downloading the whole allocation reads
// no uninitialised byte): guard_bytes before the first row, guard_bytes after the last row's
// stride, and the gaps between rows when the row stride is larger than the row. After the call the
// test downloads it once: checked() fails the test (CHECK) when any byte outside the rows changed
// and returns the rows, which the test compares with what the reference says.
#include <catch2/catch.hpp>
// cuda_runtime.h (not only _api.h): device_buffer.hpp's cudaMalloc(&T*) needs its template overload
// when this header is compiled by the host C++ compiler.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "device_buffer.hpp"
#include "dsv4kv/views/tensor_view.hpp"

namespace dsv4kv::test {

// Byte every output buffer is filled with before a call (and every guard band holds).
inline constexpr int sentinel_byte = 0xA5;

// Sentinel bytes on each side of a guarded output (a multiple of 64: the rows stay as aligned as
// the allocation for every vector width the kernels use).
inline constexpr std::int64_t guard_bytes = 64;

// Bytes of p[0, count) that differ from `byte`.
inline std::size_t count_bytes_not(const std::uint8_t* p, std::size_t count, int byte) {
  const auto b = static_cast<std::uint8_t>(byte);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < count; ++i) bad += p[i] != b;
  return bad;
}

// True when every byte of `host` equals `byte`.
template <class T>
bool all_bytes_are(const std::vector<T>& host, int byte) {
  return count_bytes_not(reinterpret_cast<const std::uint8_t*>(host.data()), host.size() * sizeof(T), byte) == 0;
}

// Index of the first element where a and b differ (the shorter size when one is a prefix of the
// other), -1 when they are equal: CHECK(first_difference(got, want) == -1) reports a position, not
// two printed arrays.
template <class T>
std::int64_t first_difference(const std::vector<T>& a, const std::vector<T>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  if (a.size() == b.size() && (n == 0 || std::memcmp(a.data(), b.data(), n * sizeof(T)) == 0)) return -1;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return static_cast<std::int64_t>(i);
  }
  return a.size() == b.size() ? -1 : static_cast<std::int64_t>(n);
}

// True when the device buffer still holds only sentinel bytes.
template <class T>
bool untouched(const device_buffer<T>& b) {
  return all_bytes_are(b.download(), sentinel_byte);
}

// `rows` rows of `cols` elements of T, `row_stride` elements apart, inside one device allocation
// of guard + rows * row_stride * sizeof(T) + guard bytes, all of them sentinel_byte until written.
// The bytes outside the rows (the guards, the gap after each row) must never be written.
// A flat array of n elements is guarded_array<T>(n): one row.
template <class T>
class guarded_array {
 public:
  guarded_array(std::int64_t rows, std::int64_t cols, std::int64_t row_stride, std::int64_t guard = guard_bytes)
      : rows_(rows), cols_(cols), stride_(row_stride), guard_(guard), buf_(allocation_bytes(rows, cols, row_stride, guard)) {
    reset();
  }
  explicit guarded_array(std::int64_t count) : guarded_array(1, count, count) {}

  // Row 0 (16-byte aligned and more: guard is a multiple of 64 and cudaMalloc aligns to 256).
  T* data() const { return reinterpret_cast<T*>(buf_.get() + guard_); }
  std::uint8_t* bytes() const { return buf_.get() + guard_; }
  float* f32() const { return reinterpret_cast<float*>(bytes()); }
  tensor_view<T> view() const { return {data(), rows_, cols_, stride_}; }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t row_stride() const { return stride_; }
  // Bytes of guard band on each side: row 0 starts at this offset of download_all().
  std::int64_t guard() const { return guard_; }
  // Bytes from row 0 to the end of the last row's stride (the rows and the gaps between them).
  std::int64_t interior_bytes() const { return rows_ * stride_ * static_cast<std::int64_t>(sizeof(T)); }

  // Every byte back to the sentinel (a memset on the legacy default stream).
  void reset() { buf_.fill_bytes(sentinel_byte); }
  // Every byte of the rows (not the gaps, not the guards) to `byte`, e.g. 0 for a fresh state.
  void fill_rows(int byte) {
    if (rows_ == 0 || cols_ == 0) return;
    const std::size_t row_bytes = static_cast<std::size_t>(cols_) * sizeof(T);
    const std::size_t pitch = static_cast<std::size_t>(stride_) * sizeof(T);
    if (pitch == row_bytes) {
      DSV4KV_TEST_CUDA(cudaMemset(bytes(), byte, row_bytes * static_cast<std::size_t>(rows_)));
    } else {
      DSV4KV_TEST_CUDA(cudaMemset2D(bytes(), pitch, byte, row_bytes, static_cast<std::size_t>(rows_)));
    }
  }
  // host [rows, cols] into the rows (the gaps and the guards keep their bytes).
  void upload(const std::vector<T>& host) {
    if (static_cast<std::int64_t>(host.size()) != rows_ * cols_) throw std::runtime_error("guarded_array::upload: size");
    if (host.empty()) return;
    const std::size_t row_bytes = static_cast<std::size_t>(cols_) * sizeof(T);
    const std::size_t pitch = static_cast<std::size_t>(stride_) * sizeof(T);
    if (pitch == row_bytes) {
      DSV4KV_TEST_CUDA(cudaMemcpy(bytes(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    } else {
      DSV4KV_TEST_CUDA(cudaMemcpy2D(bytes(), pitch, host.data(), row_bytes, row_bytes, static_cast<std::size_t>(rows_),
                                    cudaMemcpyHostToDevice));
    }
  }

  // Every byte of the allocation (guards included).
  std::vector<std::uint8_t> download_all() const { return buf_.download(); }
  // Bytes outside the rows in a download_all() image that are not the sentinel.
  std::size_t damaged_bytes(const std::vector<std::uint8_t>& all) const {
    const std::size_t g = static_cast<std::size_t>(guard_), row = static_cast<std::size_t>(cols_) * sizeof(T);
    const std::size_t pitch = static_cast<std::size_t>(stride_) * sizeof(T);
    std::size_t bad = count_bytes_not(all.data(), g, sentinel_byte);
    bad += count_bytes_not(all.data() + g + static_cast<std::size_t>(interior_bytes()), g, sentinel_byte);
    if (pitch > row) {
      for (std::int64_t r = 0; r < rows_; ++r) {
        bad += count_bytes_not(all.data() + g + static_cast<std::size_t>(r) * pitch + row, pitch - row, sentinel_byte);
      }
    }
    return bad;
  }
  // The rows [rows, cols] (dense); fails the test (CHECK) when a byte outside them changed.
  std::vector<T> checked() const {
    const std::vector<std::uint8_t> all = download_all();
    const std::size_t bad = damaged_bytes(all);
    INFO("bytes written outside the output (guard bands, gaps between rows): " << bad);
    CHECK(bad == 0);
    std::vector<T> rows(static_cast<std::size_t>(rows_ * cols_));
    const std::size_t row = static_cast<std::size_t>(cols_) * sizeof(T);
    for (std::int64_t r = 0; r < rows_ && row > 0; ++r) {
      std::memcpy(rows.data() + r * cols_, all.data() + guard_ + r * stride_ * static_cast<std::int64_t>(sizeof(T)), row);
    }
    return rows;
  }
  // True when every byte of the allocation still holds the sentinel (nothing was written).
  bool untouched() const { return all_bytes_are(download_all(), sentinel_byte); }

 private:
  static std::size_t allocation_bytes(std::int64_t rows, std::int64_t cols, std::int64_t stride, std::int64_t guard) {
    if (rows < 0 || cols < 0 || stride < cols || guard < 0 || guard % 64 != 0) {
      throw std::runtime_error("guarded_array: bad shape");
    }
    return static_cast<std::size_t>(2 * guard + rows * stride * static_cast<std::int64_t>(sizeof(T)));
  }
  std::int64_t rows_, cols_, stride_, guard_;
  device_buffer<std::uint8_t> buf_;
};

// A guarded byte array (the quantized outputs: codes, scales, global scales; states; workspaces).
using guarded = guarded_array<std::uint8_t>;

template <class T>
bool untouched(const guarded_array<T>& g) {
  return g.untouched();
}

}  // namespace dsv4kv::test
