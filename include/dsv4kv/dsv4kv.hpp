// SPDX-License-Identifier: Apache-2.0
#pragma once
//! Umbrella header: everything usable from plain C++ (no CUDA compiler needed).
//!
//! numerics/  e2m1.hpp, e4m3.hpp, bf16.hpp        element conversions (host and device)
//! formats/   nvfp4_rows.hpp, fp8_rows.hpp         row storage views and byte sizes
//!            nvfp4_encoding.hpp, fp8_encoding.hpp the per-row quantization recipes
//! views/     span.hpp, tensor_view.hpp            non-owning views over raw pointers
//! ref/       host reference (the oracle): compress, rmsnorm, rope, hadamard, codecs, write_path
//! rope_table.hpp                                  cos/sin tables and the YaRN builder
//! status.hpp, cuda_status.hpp                     status codes

#include "dsv4kv/compress_geometry.hpp"
#include "dsv4kv/config.hpp"
#include "dsv4kv/formats/fp8_encoding.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/numerics/bf16.hpp"
#include "dsv4kv/numerics/e2m1.hpp"
#include "dsv4kv/numerics/e4m3.hpp"
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
