// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Status codes returned by every host call of dsv4kv (the library never throws, exits or prints).

namespace dsv4kv {

//! Outcome of a host call. `ok` is the only success; every other value means nothing was launched
//! and no output byte was changed (except `cuda_error`, which reports a failed launch).
enum class [[nodiscard]] status : int {
  ok = 0,
  invalid_argument,   //!< a size, count or parameter out of its domain (negative rows, bad eps, ...)
  null_pointer,       //!< a required pointer is null
  unsupported_shape,  //!< a valid shape this build has no kernel for (head dim, ratio, rope dim)
  misaligned,         //!< a pointer or stride breaks the alignment the kernel's vector width needs
  aliasing,           //!< an output overlaps an input or another output
  cuda_error,         //!< the CUDA runtime reported an error (launch failure, no device, ...)
  capacity_exceeded,  //!< the rows would not fit in the remaining capacity of a cache
};

//! Number of status values; status_string() has a message for each.
inline constexpr int status_count = 8;

//! A short, stable, human-readable message for `s` (never null).
[[nodiscard]] constexpr const char* status_string(status s) noexcept {
  switch (s) {
    case status::ok: return "ok";
    case status::invalid_argument: return "invalid argument: a size or parameter is out of range";
    case status::null_pointer: return "null pointer: a required pointer is null";
    case status::unsupported_shape: return "unsupported shape: no kernel for this head dim / ratio / rope dim";
    case status::misaligned: return "misaligned: a pointer or row stride breaks the required alignment";
    case status::aliasing: return "aliasing: an output overlaps an input or another output";
    case status::cuda_error: return "CUDA error: the CUDA runtime reported a failure";
    case status::capacity_exceeded: return "capacity exceeded: the rows do not fit in the cache's free capacity";
  }
  return "unknown status";
}

//! True when `s` is status::ok.
[[nodiscard]] constexpr bool succeeded(status s) noexcept { return s == status::ok; }

}  // namespace dsv4kv

//! Returns from the enclosing function when `expr` yields a status other than ok.
#define DSV4KV_RETURN_IF_ERROR(expr)                                 \
  do {                                                               \
    const ::dsv4kv::status dsv4kv_status_ = (expr);                  \
    if (dsv4kv_status_ != ::dsv4kv::status::ok) return dsv4kv_status_; \
  } while (0)
