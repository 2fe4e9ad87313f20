// SPDX-License-Identifier: Apache-2.0
#include "dsv4kv/ref/write_path.hpp"

#include "dsv4kv/ref/compress.hpp"
#include "dsv4kv/ref/hadamard.hpp"
#include "dsv4kv/ref/rmsnorm.hpp"
#include "dsv4kv/ref/rope.hpp"

namespace dsv4kv::ref {

template <class Out>
status write_path_rows(const write_path_problem& p, tensor_view<Out> out) {
  // compress always runs in double; the stages after it keep that precision until `out`.
  DSV4KV_RETURN_IF_ERROR(compress(p.kv, p.gate, p.position_bias, p.ratio, out));
  if (p.norm_weight != nullptr) DSV4KV_RETURN_IF_ERROR(rmsnorm(out, p.norm_weight, p.eps));
  if (p.rope.rope_dim != 0) DSV4KV_RETURN_IF_ERROR(rope_prefill(out, p.start_position, p.ratio, p.rope));
  if (p.hadamard) DSV4KV_RETURN_IF_ERROR(hadamard_rotate(out));
  return status::ok;
}

template status write_path_rows<float>(const write_path_problem&, tensor_view<float>);
template status write_path_rows<double>(const write_path_problem&, tensor_view<double>);

}  // namespace dsv4kv::ref
