// SPDX-License-Identifier: Apache-2.0
// A tiny engine-side program: links dsv4kv::dsv4kv and calls into it (host reference and the CUDA
// bridge), the way a project that consumes the package would.
#include <dsv4kv/cuda_status.hpp>
#include <dsv4kv/dsv4kv.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  constexpr int d = 512;
  std::vector<float> row(d);
  for (int k = 0; k < d; ++k) row[k] = std::sin(0.37f * k) * (1.0f + k % 7);
  std::vector<std::uint8_t> codes(dsv4kv::nvfp4_code_bytes_per_row(d)), scales(dsv4kv::nvfp4_scale_bytes_per_row(d));
  float g = 0.0f;
  dsv4kv::ref::encode_nvfp4_row({row.data(), d}, codes.data(), scales.data(), &g);
  std::vector<float> back(d);
  const dsv4kv::const_nvfp4_rows stored{codes.data(), scales.data(), &g, 1, d};
  const dsv4kv::status s = dsv4kv::ref::decode_nvfp4(stored, dsv4kv::make_tensor_view(back.data(), 1, d));
  double err = 0.0, norm = 0.0;
  for (int k = 0; k < d; ++k) err += (back[k] - row[k]) * (back[k] - row[k]), norm += row[k] * row[k];
  const bool gpu = dsv4kv::device_is_supported(0);
  std::printf("dsv4kv consumer: decode %s, %lld bytes/row, relative RMSE %.4f, supported GPU: %s\n",
              dsv4kv::status_string(s), static_cast<long long>(dsv4kv::nvfp4_bytes_per_row(d)),
              std::sqrt(err / norm), gpu ? "yes" : "no");
  return s == dsv4kv::status::ok && std::sqrt(err / norm) < 0.15 ? 0 : 1;
}
