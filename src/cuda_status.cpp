// SPDX-License-Identifier: Apache-2.0
#include "dsv4kv/cuda_status.hpp"

namespace dsv4kv {

status status_from_cuda(cudaError_t e) noexcept { return e == cudaSuccess ? status::ok : status::cuda_error; }

status last_launch_status() noexcept { return status_from_cuda(cudaGetLastError()); }

bool device_is_supported(int device) noexcept {
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    (void)cudaGetLastError();  // leave no sticky error behind for the caller
    return false;
  }
  return major >= 9;
}

}  // namespace dsv4kv
