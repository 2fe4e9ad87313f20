// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Umbrella header of everything that needs no CUDA toolkit at all (target dsv4kv::host):
//! numerics/, formats/, views/, the host reference ref/, RoPE tables, status codes, the cache layout.

#include "dsv4kv/append_model.hpp"
#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/config.hpp"
#include "dsv4kv/formats/fp8_encoding.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/kv_cache_layout.hpp"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/numerics/e2m1.hpp"
#include "dsv4kv/numerics/e4m3.hpp"
#include "dsv4kv/ref/append.hpp"
#include "dsv4kv/ref/compress.hpp"
#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/hadamard.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "dsv4kv/ref/rmsnorm.hpp"
#include "dsv4kv/ref/rope.hpp"
#include "dsv4kv/ref/write_path.hpp"
#include "dsv4kv/rope_table.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/views/span.hpp"
#include "dsv4kv/views/tensor_view.hpp"
