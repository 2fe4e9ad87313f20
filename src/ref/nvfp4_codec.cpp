// SPDX-License-Identifier: Apache-2.0
// Host reference of SPEC §5. Each step calls the same scalar recipe the kernels call.
#include "dsv4kv/ref/nvfp4_codec.hpp"

#include <algorithm>

#include "dsv4kv/detail/view_checks.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/numerics/bf16.hpp"

namespace dsv4kv::ref {
namespace {

status check_rows(const const_nvfp4_rows& r) {
  if (r.rows < 0 || !nvfp4_supports_width(r.d)) return r.rows < 0 ? status::invalid_argument : status::unsupported_shape;
  if (r.rows > 0 && (r.codes == nullptr || r.block_scales == nullptr || r.global_scales == nullptr)) {
    return status::null_pointer;
  }
  return status::ok;
}

// Decodes row r of `in` into out[d] through `store` (float or BF16 bits).
template <class Store>
void decode_row(const const_nvfp4_rows& in, std::int64_t r, Store store) {
  const std::uint8_t* codes = in.row_codes(r);
  const std::uint8_t* scales = in.row_block_scales(r);
  const float g = in.global_scales[r];
  for (std::int64_t k = 0; k < in.d; ++k) {
    const std::uint8_t code = (k % 2 == 0) ? (codes[k / 2] & 0xF) : (codes[k / 2] >> 4);
    store(k, nvfp4_decode_element(code, scales[k / nvfp4_block_size], g));
  }
}

}  // namespace

void encode_nvfp4_row(span<const float> x, std::uint8_t* codes, std::uint8_t* block_scales, float* global_scale) {
  const std::int64_t d = x.size;
  // Steps 1-3: row amax (NaN-aware) and the row scales.
  row_amax amax;
  for (float v : x) amax.add(v);
  const nvfp4_row_scale scale = nvfp4_row_scale_from_amax(amax);
  *global_scale = scale.decode;
  if (!amax.finite) {  // step 2: the whole row decodes to NaN through g
    std::fill(codes, codes + d / 2, std::uint8_t{0});
    std::fill(block_scales, block_scales + d / nvfp4_block_size, std::uint8_t{0});
    return;
  }
  for (std::int64_t b = 0; b < d / nvfp4_block_size; ++b) {
    const float* block = x.data + b * nvfp4_block_size;
    // Step 4: block scale from the block's max |x|.
    row_amax block_amax;
    for (int k = 0; k < nvfp4_block_size; ++k) block_amax.add(block[k]);
    const std::uint8_t sf = nvfp4_block_scale(block_amax.amax, scale.encode);
    block_scales[b] = sf;
    // Steps 5-6: multiplier, then E2M1 codes, two per byte.
    const float mul = nvfp4_block_multiplier(sf, scale.decode);
    for (int k = 0; k < nvfp4_block_size; k += 2) {
      codes[(b * nvfp4_block_size + k) / 2] = e2m1_pack(e2m1_encode(block[k] * mul), e2m1_encode(block[k + 1] * mul));
    }
  }
}

status encode_nvfp4(tensor_view<const float> x, nvfp4_rows out) {
  DSV4KV_RETURN_IF_ERROR(check_rows(out));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(x, out.rows, out.d));
  for (std::int64_t r = 0; r < x.rows; ++r) {
    encode_nvfp4_row(x.row_span(r), out.row_codes(r), out.row_block_scales(r), out.global_scales + r);
  }
  return status::ok;
}

status decode_nvfp4(const_nvfp4_rows in, tensor_view<float> out) {
  DSV4KV_RETURN_IF_ERROR(check_rows(in));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(out, in.rows, in.d));
  for (std::int64_t r = 0; r < in.rows; ++r) {
    decode_row(in, r, [&](std::int64_t k, float v) { out(r, k) = v; });
  }
  return status::ok;
}

status decode_nvfp4_bf16(const_nvfp4_rows in, tensor_view<std::uint16_t> out) {
  DSV4KV_RETURN_IF_ERROR(check_rows(in));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(out, in.rows, in.d));
  for (std::int64_t r = 0; r < in.rows; ++r) {
    decode_row(in, r, [&](std::int64_t k, float v) { out(r, k) = bf16_encode(v); });
  }
  return status::ok;
}

status decode_nvfp4_selected_bf16(const_nvfp4_rows in, span<const std::int32_t> indices,
                                  tensor_view<std::uint16_t> out) {
  DSV4KV_RETURN_IF_ERROR(check_rows(in));
  DSV4KV_RETURN_IF_ERROR(detail::check_view(out, indices.size, in.d));
  if (indices.size > 0 && indices.data == nullptr) return status::null_pointer;
  for (std::int64_t i = 0; i < indices.size; ++i) {
    const std::int64_t r = indices[i];
    if (r < 0 || r >= in.rows) {
      std::fill(out.row(i), out.row(i) + in.d, std::uint16_t{0});
      continue;
    }
    decode_row(in, r, [&](std::int64_t k, float v) { out(i, k) = bf16_encode(v); });
  }
  return status::ok;
}

}  // namespace dsv4kv::ref
