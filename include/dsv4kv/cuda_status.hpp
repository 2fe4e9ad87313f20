// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Bridge from the CUDA runtime's error codes to dsv4kv::status.

#include <cuda_runtime_api.h>

#include "dsv4kv/status.hpp"

namespace dsv4kv {

//! status::ok for cudaSuccess, status::cuda_error otherwise.
[[nodiscard]] status status_from_cuda(cudaError_t e) noexcept;

//! The status of the most recent launch on this host thread (cudaGetLastError, which clears it).
[[nodiscard]] status last_launch_status() noexcept;

//! True when `device` exists and is compute capability 9.0 or newer (Hopper, Blackwell), the
//! GPUs this build targets. Never throws; false when the runtime has no device.
[[nodiscard]] bool device_is_supported(int device) noexcept;

}  // namespace dsv4kv
