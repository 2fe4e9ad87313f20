// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the validation of every host API entry of the GPU library, on the CPU.
//
// Each input is one call: byte 0 picks the entry point, byte 1 a valid baseline call of it (shape,
// optional arguments), and every further pair (field, mutation bytes) changes one argument: a size
// or stride to a boundary value, a delta or raw bits; a pointer to null, a misaligned, shifted or
// wrapping address, or next to / inside another argument's array. Pointers are fake addresses in
// an arena that is never mapped (ASan's shadow gap): validation must decide without reading them.
//
// Entries: compress, rope, hadamard_rotate, quantize_*, dequant_* (all, selected, batched),
// write_path_*, append_* (append.hpp), reset_append_state, compressed_kv_cache::create (both
// overloads) and its append_prefill (HCA and CSA), and two host utilities with their own checks:
// validate_append_metadata on host metadata decoded from the input (real arrays; the error bits
// and the first offending segment of its report against the rules of append_model.hpp) and the
// kv_cache_layout functions (the documented layout, views and row bytes).
//
// Asserted for every input (a failure prints the call and aborts):
//   1. no crash and no sanitizer finding (ASan; UBSan: no overflow in any size computation);
//   2. can_implement_<entry> returns ok exactly when the predicate below finds no broken rule;
//   3. a rejection names a rule the call breaks: its status is in the predicate's set;
//   4. when can_implement_<entry> rejects, the entry itself returns the same status (one
//      validation per entry; it is only called then, so nothing is ever launched).
// Where a header leaves a rule open, the predicate tolerates a rejection naming it but does not
// require one (verdict::lenient). Entries without a can_implement (reset_append_state, create) are
// called directly, reset_append_state only when it must reject or has nothing to launch.
// The predicate is independent of the library: written from the rules the API headers document,
// in exact 128-bit arithmetic, using none of the library's check helpers.
#include <cfloat>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <type_traits>
#include <vector>

#include "dsv4kv/append.hpp"
#include "dsv4kv/append_model.hpp"
#include "dsv4kv/compress.hpp"
#include "dsv4kv/compressed_kv_cache.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/hadamard.hpp"
#include "dsv4kv/kv_cache_layout.hpp"
#include "dsv4kv/quantize_fp8.hpp"
#include "dsv4kv/quantize_nvfp4.hpp"
#include "dsv4kv/rope.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/write_path.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace dsv4kv;
using i128 = __int128;
using u128 = unsigned __int128;

// --- input bytes --------------------------------------------------------------------------------

using dsv4kv::fuzz::fuzz_input;

// --- the fake address space ---------------------------------------------------------------------

// Arrays of a baseline call live in 16 MiB slots from 2^40 (inside ASan's never-mapped shadow gap
// on x86-64, and unmapped in any ordinary process), far apart, so baselines do not alias.
constexpr std::uint64_t arena = std::uint64_t{1} << 40;
constexpr std::uint64_t slot_bytes = std::uint64_t{1} << 24;
constexpr std::int64_t slot(int k) { return static_cast<std::int64_t>(arena + k * slot_bytes); }

// --- the arguments of one call, as mutable 64-bit fields ------------------------------------------

struct fields {
  static constexpr int capacity = 64;
  std::int64_t v[capacity] = {};
  const char* names[capacity] = {};
  std::uint64_t pointers = 0;  // bit i: field i is an address
  int count = 0;

  void set(int i, const char* name, std::int64_t value, bool pointer = false) {
    v[i] = value;
    names[i] = name;
    if (pointer) pointers |= std::uint64_t{1} << i;
    if (i + 1 > count) count = i + 1;
  }
  template <class T = void>
  T* ptr(int i) const {
    return reinterpret_cast<T*>(static_cast<std::uintptr_t>(v[i]));
  }
  int i32(int i) const { return static_cast<int>(static_cast<std::int32_t>(static_cast<std::uint32_t>(v[i]))); }
  float f32(int i) const {
    const auto u = static_cast<std::uint32_t>(v[i]);
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
};

std::int64_t float_field(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

constexpr std::int64_t interesting_sizes[] = {
    -1, 0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 48, 63, 64, 65, 127, 128, 129, 132, 255, 256, 257, 511, 512, 513,
    1023, 1024, 1025, 4096, 65536, (std::int64_t{1} << 31) - 1, std::int64_t{1} << 31, std::int64_t{1} << 32,
    std::int64_t{1} << 40, (std::int64_t{1} << 46) + 16, std::int64_t{1} << 47, std::int64_t{1} << 48,
    std::int64_t{1} << 49, (std::int64_t{1} << 50) - 1, std::int64_t{1} << 50, (std::int64_t{1} << 50) + 1,
    std::int64_t{1} << 51, std::int64_t{1} << 61, std::int64_t{1} << 62, std::numeric_limits<std::int64_t>::max(),
    std::numeric_limits<std::int64_t>::min(), -(std::int64_t{1} << 31), std::numeric_limits<std::int32_t>::max(),
    std::numeric_limits<std::int32_t>::min(), -16, -128};

const float interesting_floats[] = {0.0f, -0.0f, 1e-6f, -1e-6f, 1.0f, FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f,
                                    std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                    std::numeric_limits<float>::quiet_NaN()};

std::int64_t wrapping_add(std::int64_t a, std::int64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b));
}

std::int64_t mutate_value(std::int64_t cur, fuzz_input& in) {
  switch (in.u8() % 9) {
    case 0: return interesting_sizes[in.u8() % std::size(interesting_sizes)];
    case 1: return wrapping_add(cur, in.i8());
    case 2: return in.i8();
    case 3: return static_cast<std::int64_t>(static_cast<std::uint64_t>(cur) << 1);
    case 4: return cur / 2;
    case 5: return static_cast<std::int64_t>(in.bytes(8));
    case 6: return static_cast<std::int64_t>(in.bytes(2));
    case 7: return static_cast<std::int64_t>(static_cast<std::uint64_t>(cur) ^ (std::uint64_t{1} << (in.u8() % 64)));
    default: return float_field(interesting_floats[in.u8() % std::size(interesting_floats)]);
  }
}

std::int64_t mutate_pointer(const fields& f, std::int64_t cur, fuzz_input& in) {
  switch (in.u8() % 8) {
    case 0: return 0;
    case 1: return wrapping_add(cur, in.i8());        // misalign or shift a little
    case 2: return wrapping_add(cur, in.i16() * 16);  // aligned shift
    case 3: {                                          // at or near another array: aliasing
      int other = in.u8() % f.count;
      for (int k = 0; k < f.count && !((f.pointers >> other) & 1); ++k) other = (other + 1) % f.count;
      return wrapping_add(f.v[other], in.i16() * (in.u8() % 2 ? 1 : 16));
    }
    case 4: return static_cast<std::int64_t>(std::numeric_limits<std::uint64_t>::max() - in.bytes(2));  // wraps
    case 5: return static_cast<std::int64_t>(in.bytes(8));
    case 6: return slot(in.u8() % 32) + static_cast<std::int64_t>(in.bytes(3));
    default: return static_cast<std::int64_t>(in.bytes(6));  // a user-space-sized address
  }
}

void mutate(fields& f, fuzz_input& in) {
  const int i = in.u8() % f.count;
  f.v[i] = ((f.pointers >> i) & 1) ? mutate_pointer(f, f.v[i], in) : mutate_value(f.v[i], in);
}

// --- the predicate: which documented rules a call breaks -----------------------------------------

constexpr i128 max_array_bytes = i128{1} << 50;  // the API's limit on one array
constexpr i128 int32_max = 0x7FFFFFFF;
// The largest 1-D grid is 2^31 - 1 CTAs; an HCA row may take a cluster of up to 8 CTAs (the
// portable cluster size). A call whose grid might not fit may be rejected: a limit of the
// implementation the headers do not state, so the predicate tolerates it beyond this many units.
constexpr i128 grid_units_surely_fitting = int32_max / 8;
constexpr i128 address_space = i128{1} << 64;
constexpr i128 saturation = i128{1} << 100;     // exact arithmetic saturates here (>> any limit)

i128 clamp(i128 x) { return x > saturation ? saturation : (x < -saturation ? -saturation : x); }
// Saturating product of two values within +-2^100 (exact whenever the result is below 2^100).
i128 mul(i128 a, i128 b) {
  a = clamp(a);
  b = clamp(b);
  if (a == 0 || b == 0) return 0;
  const i128 abs_a = a < 0 ? -a : a, abs_b = b < 0 ? -b : b;
  if (abs_b > saturation / abs_a) return ((a < 0) != (b < 0)) ? -saturation : saturation;
  return a * b;
}

i128 address(const void* p) { return static_cast<i128>(reinterpret_cast<std::uintptr_t>(p)); }
bool aligned(const void* p, int bytes) { return reinterpret_cast<std::uintptr_t>(p) % bytes == 0; }

// Bytes [begin, begin + bytes); bytes < 0: unknown (the shape is already invalid).
struct range {
  i128 begin = 0;
  i128 bytes = -1;
};
// Two arrays share a byte. A null or empty array is absent.
bool overlap(const range& a, const range& b) {
  if (a.bytes <= 0 || b.bytes <= 0 || a.begin == 0 || b.begin == 0) return false;
  return a.begin < b.begin + b.bytes && b.begin < a.begin + a.bytes;
}

struct verdict {
  unsigned bits = 0;     // the statuses of the broken rules: the call must be rejected with one
  unsigned lenient = 0;  // the statuses of rules the headers leave open: a rejection may name one
  void add(status s) { bits |= 1u << static_cast<int>(s); }
  void add_if(bool broken, status s) {
    if (broken) add(s);
  }
  void tolerate_if(bool maybe_broken, status s) {
    if (maybe_broken) lenient |= 1u << static_cast<int>(s);
  }
  bool valid() const { return bits == 0; }
  bool allows(status s) const { return ((bits | lenient) >> static_cast<int>(s)) & 1u; }
};

// An array of `bytes` bytes at p exists: at most 2^50 bytes, and its one-past-the-end address
// is below 2^64 (a pointer can hold it). Returns its range.
range array_rules(verdict& v, const void* p, i128 bytes) {
  v.add_if(bytes > max_array_bytes || address(p) + bytes >= address_space, status::invalid_argument);
  return {address(p), bytes};
}
// A pointer the call needs.
void required(verdict& v, const void* p, bool needed) { v.add_if(needed && p == nullptr, status::null_pointer); }

// tensor_view rules: rows, cols >= 0, row_stride >= cols, the extent an array (above), non-null
// when it holds elements.
template <class T>
range view_rules(verdict& v, const tensor_view<T>& t) {
  if (t.rows < 0 || t.cols < 0 || t.row_stride < t.cols) {
    v.add(status::invalid_argument);
    return {address(t.data), -1};
  }
  const i128 elems = (t.rows == 0 || t.cols == 0) ? 0 : i128{t.rows - 1} * t.row_stride + t.cols;
  const i128 bytes = mul(elems, sizeof(T));
  required(v, t.data, bytes > 0);
  return array_rules(v, t.data, bytes);
}

bool any_overlap(const range& r, std::initializer_list<range> others) {
  for (const range& o : others) {
    if (overlap(r, o)) return true;
  }
  return false;
}
bool all_disjoint(std::initializer_list<range> rs) {
  for (auto a = rs.begin(); a != rs.end(); ++a) {
    for (auto b = a + 1; b != rs.end(); ++b) {
      if (overlap(*a, *b)) return false;
    }
  }
  return true;
}

// --- checking one call --------------------------------------------------------------------------

const char* status_name(status s) {
  switch (s) {
    case status::ok: return "ok";
    case status::invalid_argument: return "invalid_argument";
    case status::null_pointer: return "null_pointer";
    case status::unsupported_shape: return "unsupported_shape";
    case status::misaligned: return "misaligned";
    case status::aliasing: return "aliasing";
    case status::cuda_error: return "cuda_error";
    case status::capacity_exceeded: return "capacity_exceeded";
  }
  return "?";
}

void print_fields(const fields& f) {
  for (int i = 0; i < f.count; ++i) {
    std::fprintf(stderr, "  %-16s = %lld (0x%llx)\n", f.names[i], static_cast<long long>(f.v[i]),
                 static_cast<unsigned long long>(f.v[i]));
  }
}

[[noreturn]] void fail(const char* entry, const fields& f, const verdict& v, const char* what, status got) {
  std::fprintf(stderr, "fuzz_validation: %s: %s (got %s; the predicate allows:", entry, what, status_name(got));
  if (v.valid()) std::fprintf(stderr, " ok");
  for (int s = 1; s < status_count; ++s) {
    if ((v.bits >> s) & 1u) std::fprintf(stderr, " %s", status_name(static_cast<status>(s)));
  }
  for (int s = 1; s < status_count; ++s) {
    if (((v.lenient & ~v.bits) >> s) & 1u) std::fprintf(stderr, " (%s)", status_name(static_cast<status>(s)));
  }
  std::fprintf(stderr, ")\n");
  print_fields(f);
  std::abort();
}

// Asserts 2-4 for one call: `check` is can_implement_<entry>, `call` the entry (run only when
// `check` rejects). A valid call may also be rejected with a status of v.lenient (printed in
// parentheses): a rule the headers leave open.
template <class CHECK, class CALL>
void expect(const char* entry, const fields& f, const verdict& v, CHECK&& check, CALL&& call) {
  const status s = check();
  if (v.valid() && s != status::ok && !v.allows(s)) fail(entry, f, v, "a valid call was rejected", s);
  if (!v.valid() && s == status::ok) fail(entry, f, v, "an invalid call was accepted", s);
  if (!v.valid() && !v.allows(s)) fail(entry, f, v, "the rejection names no broken rule", s);
  if (s != status::ok) {
    const status launched = call();
    if (launched != s) fail(entry, f, v, "the entry point and can_implement disagree", launched);
  }
}

// The entries only receive a stream when they reject the call, so it is never used.
constexpr cudaStream_t no_stream = nullptr;

// --- compress (compress.hpp) ----------------------------------------------------------------------

enum compress_field {
  c_ratio, c_kv, c_kv_rows, c_kv_cols, c_kv_stride, c_gate, c_gate_rows, c_gate_cols, c_gate_stride, c_bias,
  c_norm, c_eps, c_cos, c_sin, c_max_pos, c_rope_dim, c_start, c_positions, c_hadamard, c_out, c_out_rows,
  c_out_cols, c_out_stride, c_fields
};

// Field names of a compress_params at field 0, and of a second one (a CSA cache's indexer keys).
const char* const compress_names[c_fields] = {
    "ratio", "kv", "kv.rows", "kv.cols", "kv.row_stride", "gate", "gate.rows", "gate.cols", "gate.row_stride",
    "position_bias", "norm_weight", "eps", "rope.cos", "rope.sin", "rope.max_pos", "rope.rope_dim",
    "start_position", "positions", "hadamard", "out", "out.rows", "out.cols", "out.row_stride"};
const char* const indexer_names[c_fields] = {
    "ix.ratio", "ix.kv", "ix.kv.rows", "ix.kv.cols", "ix.kv.row_stride", "ix.gate", "ix.gate.rows", "ix.gate.cols",
    "ix.gate.row_stride", "ix.position_bias", "ix.norm_weight", "ix.eps", "ix.rope.cos", "ix.rope.sin",
    "ix.rope.max_pos", "ix.rope.rope_dim", "ix.start_position", "ix.positions", "ix.hadamard", "(unused)",
    "(unused)", "(unused)", "(unused)"};

// Variants: (m, d) in {(4,128), (4,512), (128,128), (128,512)}, T = 3m + 0..2 tokens, with or
// without RoPE / positions / norm weight / position bias. The fields start at field `at`, the
// arrays at slot `slot0`.
void compress_baseline_at(fields& f, std::uint8_t variant, int at, int slot0, const char* const* names) {
  const int m = variant & 2 ? 128 : 4;
  const std::int64_t d = variant & 1 ? 512 : 128;
  const std::int64_t width = (m == 4 ? 2 : 1) * d;
  const std::int64_t tokens = 3 * m + (variant >> 2) % 3;
  const bool rope = !(variant & 16), positions = variant & 32, norm = !(variant & 64), bias = !(variant & 128);
  const auto set = [&](int i, std::int64_t value, bool pointer = false) { f.set(at + i, names[i], value, pointer); };
  set(c_ratio, m);
  set(c_kv, slot(slot0 + 0), true);
  set(c_kv_rows, tokens);
  set(c_kv_cols, width);
  set(c_kv_stride, width + (variant & 8 ? 4 : 0));
  set(c_gate, slot(slot0 + 1), true);
  set(c_gate_rows, tokens);
  set(c_gate_cols, width);
  set(c_gate_stride, width);
  set(c_bias, bias ? slot(slot0 + 2) : 0, true);
  set(c_norm, norm ? slot(slot0 + 3) : 0, true);
  set(c_eps, float_field(1e-6f));
  set(c_cos, rope ? slot(slot0 + 4) : 0, true);
  set(c_sin, rope ? slot(slot0 + 5) : 0, true);
  set(c_max_pos, rope ? 4 * tokens : 0);
  set(c_rope_dim, rope ? 64 : 0);
  set(c_start, 0);
  set(c_positions, positions ? slot(slot0 + 6) : 0, true);
  set(c_hadamard, variant & 4);
  set(c_out, slot(slot0 + 7), true);
  set(c_out_rows, tokens / m);
  set(c_out_cols, d);
  set(c_out_stride, d);
}
void compress_baseline(fields& f, std::uint8_t variant) { compress_baseline_at(f, variant, 0, 0, compress_names); }

// The compress_params whose fields start at field `at`.
template <class IN, class BIAS>
compress_params<IN, BIAS> compress_args(const fields& f, int at = 0) {
  compress_params<IN, BIAS> p;
  p.ratio = f.i32(at + c_ratio);
  p.kv = {f.ptr<const IN>(at + c_kv), f.v[at + c_kv_rows], f.v[at + c_kv_cols], f.v[at + c_kv_stride]};
  p.gate = {f.ptr<const IN>(at + c_gate), f.v[at + c_gate_rows], f.v[at + c_gate_cols], f.v[at + c_gate_stride]};
  p.position_bias = f.ptr<const BIAS>(at + c_bias);
  p.norm_weight = f.ptr<const float>(at + c_norm);
  p.eps = f.f32(at + c_eps);
  p.rope = {f.ptr<const float>(at + c_cos), f.ptr<const float>(at + c_sin), f.v[at + c_max_pos],
            f.i32(at + c_rope_dim)};
  p.start_position = f.v[at + c_start];
  p.positions = f.ptr<const std::int32_t>(at + c_positions);
  p.hadamard = f.v[at + c_hadamard] & 1;
  return p;
}

// The documented rules of the compress inputs (compress.hpp, append.hpp) for output rows of width
// d, shared by compress, the write path and append. P: compress_params or append_params (fields
// ratio, kv, gate, position_bias, norm_weight, eps, rope). Returns the ranges they read (without
// compress's positions).
struct compress_reads {
  range kv, gate, bias, norm, cos, sin, positions;
};
template <class P>
compress_reads compress_input_rules(verdict& v, const P& p, std::int64_t d) {
  using IN = std::remove_const_t<std::remove_pointer_t<decltype(p.kv.data)>>;
  using BIAS = std::remove_const_t<std::remove_pointer_t<decltype(p.position_bias)>>;
  compress_reads r;
  r.kv = view_rules(v, p.kv);
  r.gate = view_rules(v, p.gate);
  const int m = p.ratio;
  const bool supported = (m == 4 || m == 128) && (d == 128 || d == 512);
  v.add_if(!supported, status::unsupported_shape);
  const i128 width = i128{m == 4 ? 2 : 1} * d;
  const std::int64_t tokens = p.kv.rows;
  if (supported) {
    v.add_if(p.kv.cols != width || p.gate.rows != tokens || p.gate.cols != width, status::invalid_argument);
  }
  v.add_if(!(p.eps >= 0.0f && p.eps <= FLT_MAX), status::invalid_argument);
  const bool rope = p.rope.rope_dim != 0;
  i128 table_bytes = 0;
  if (rope) {
    if (p.rope.rope_dim < 0) v.add(status::invalid_argument);  // also unsupported_shape, below
    v.add_if(p.rope.rope_dim < 0 || p.rope.rope_dim % 4 != 0 || p.rope.rope_dim > d, status::unsupported_shape);
    v.add_if(p.rope.max_pos < 0, status::invalid_argument);
    table_bytes = p.rope.max_pos > 0 && p.rope.rope_dim > 0 ? mul(p.rope.max_pos, mul(p.rope.rope_dim / 2, 4)) : 0;
    required(v, p.rope.cos, true);
    required(v, p.rope.sin, true);
  }
  if (supported) {
    r.bias = array_rules(v, p.position_bias, p.position_bias ? i128{m} * width * sizeof(BIAS) : 0);
    r.norm = array_rules(v, p.norm_weight, p.norm_weight ? i128{d} * 4 : 0);
  }
  r.cos = array_rules(v, p.rope.cos, table_bytes);
  r.sin = array_rules(v, p.rope.sin, table_bytes);
  // Alignment: kv / gate 4 elements and row stride % 4, bias 4 elements, norm weight 16 bytes, RoPE
  // tables 8 bytes.
  v.add_if(!aligned(p.kv.data, 4 * sizeof(IN)) || p.kv.row_stride % 4 != 0 || !aligned(p.gate.data, 4 * sizeof(IN)) ||
               p.gate.row_stride % 4 != 0 || !aligned(p.position_bias, 4 * sizeof(BIAS)) ||
               !aligned(p.norm_weight, 16),
           status::misaligned);
  if (rope) v.add_if(!aligned(p.rope.cos, 8) || !aligned(p.rope.sin, 8), status::misaligned);
  return r;
}

// The documented rules of compress (compress.hpp): the inputs', a prefill of floor(T / m) rows into
// `out` (its view rules are the caller's), the RoPE positions. Returns the ranges compress reads.
template <class IN, class BIAS>
compress_reads compress_rules(verdict& v, const compress_params<IN, BIAS>& p, const tensor_view<float>& out) {
  const std::int64_t d = out.cols;
  compress_reads r = compress_input_rules(v, p, d);
  const int m = p.ratio;
  const bool supported = (m == 4 || m == 128) && (d == 128 || d == 512);
  const std::int64_t tokens = p.kv.rows;
  const i128 n = tokens >= 0 && m > 0 ? tokens / m : -1;
  if (supported) v.add_if(out.rows != n, status::invalid_argument);
  v.tolerate_if(n > grid_units_surely_fitting, status::invalid_argument);  // a CTA (cluster) per row at most
  const bool rope = p.rope.rope_dim != 0;
  if (rope && p.positions == nullptr) {
    v.add_if(p.start_position < 0, status::invalid_argument);
    v.add_if(n > 0 && i128{p.start_position} + (n - 1) * m >= p.rope.max_pos, status::invalid_argument);
  }
  if (supported) r.positions = array_rules(v, p.positions, rope && p.positions && n > 0 ? n * 4 : 0);
  // Alignment: out 16 bytes and row stride % 4, positions 4 bytes.
  v.add_if(!aligned(out.data, 16) || out.row_stride % 4 != 0, status::misaligned);
  if (rope) v.add_if(!aligned(p.positions, 4), status::misaligned);
  return r;
}

template <class IN, class BIAS>
void run_compress(const fields& f, const char* entry) {
  const compress_params<IN, BIAS> p = compress_args<IN, BIAS>(f);
  const tensor_view<float> out{f.ptr<float>(c_out), f.v[c_out_rows], f.v[c_out_cols], f.v[c_out_stride]};
  verdict v;
  const range o = view_rules(v, out);
  const compress_reads r = compress_rules(v, p, out);
  v.add_if(any_overlap(o, {r.kv, r.gate, r.bias, r.norm, r.cos, r.sin, r.positions}), status::aliasing);
  expect(entry, f, v, [&] { return can_implement_compress(p, out); }, [&] { return compress(p, out, no_stream); });
}

// --- rope (rope.hpp) --------------------------------------------------------------------------------

enum rope_field { r_rows, r_rows_count, r_cols, r_stride, r_cos, r_sin, r_max_pos, r_rope_dim, r_start, r_ratio,
                  r_positions, r_fields };

void rope_baseline(fields& f, std::uint8_t variant) {
  const std::int64_t d = (variant & 3) == 0 ? 64 : (variant & 3) == 1 ? 128 : (variant & 3) == 2 ? 512 : 132;
  const int ratio = variant & 4 ? 4 : (variant & 8 ? 128 : 1);
  const std::int64_t rows = variant >> 5;
  f.set(r_rows, "rows", slot(0), true);
  f.set(r_rows_count, "rows.rows", rows);
  f.set(r_cols, "rows.cols", d);
  f.set(r_stride, "rows.row_stride", d + (variant & 16 ? 8 : 0));
  f.set(r_cos, "table.cos", slot(1), true);
  f.set(r_sin, "table.sin", slot(2), true);
  f.set(r_max_pos, "table.max_pos", rows * ratio + 1);
  f.set(r_rope_dim, "table.rope_dim", 64);
  f.set(r_start, "start_position", 0);
  f.set(r_ratio, "ratio", ratio);
  f.set(r_positions, "positions", variant & 16 ? slot(3) : 0, true);
}

void run_rope(const fields& f, const char* entry) {
  const tensor_view<float> rows{f.ptr<float>(r_rows), f.v[r_rows_count], f.v[r_cols], f.v[r_stride]};
  rope_params p;
  p.table = {f.ptr<const float>(r_cos), f.ptr<const float>(r_sin), f.v[r_max_pos], f.i32(r_rope_dim)};
  p.start_position = f.v[r_start];
  p.ratio = f.i32(r_ratio);
  p.positions = f.ptr<const std::int32_t>(r_positions);
  const rope_table_view& t = p.table;
  verdict v;
  const range x = view_rules(v, rows);
  // rope_dim > 0, % 4 == 0, <= d: else no kernel (a non-positive one is also an invalid argument).
  v.add_if(t.rope_dim <= 0 || t.rope_dim % 4 != 0 || t.rope_dim > rows.cols, status::unsupported_shape);
  v.add_if(t.rope_dim <= 0, status::invalid_argument);
  v.add_if(t.max_pos < 0 || p.ratio < 1, status::invalid_argument);
  const i128 table_bytes = t.max_pos > 0 && t.rope_dim > 0 ? mul(t.max_pos, mul(t.rope_dim / 2, 4)) : 0;
  const range cos = array_rules(v, t.cos, table_bytes), sin = array_rules(v, t.sin, table_bytes);
  required(v, t.cos, true);
  required(v, t.sin, true);
  const range positions = array_rules(v, p.positions, p.positions && rows.rows > 0 ? mul(rows.rows, 4) : 0);
  if (p.positions == nullptr) {
    v.add_if(p.start_position < 0, status::invalid_argument);
    v.add_if(rows.rows > 0 && i128{p.start_position} + mul(rows.rows - 1, p.ratio) >= t.max_pos,
             status::invalid_argument);
  }
  // Rows and their rotated channels [d - rope_dim, d) are read as float4.
  v.add_if(!aligned(rows.data, 16) || rows.row_stride % 4 != 0 || rows.cols % 4 != 0 || !aligned(t.cos, 8) ||
               !aligned(t.sin, 8) || !aligned(p.positions, 4),
           status::misaligned);
  v.add_if(any_overlap(x, {cos, sin, positions}), status::aliasing);
  expect(entry, f, v, [&] { return can_implement_rope(rows, p); }, [&] { return rope(rows, p, no_stream); });
}

// --- hadamard_rotate (hadamard.hpp) -------------------------------------------------------------------

enum hadamard_field { h_rows, h_rows_count, h_cols, h_stride, h_fields };

void hadamard_baseline(fields& f, std::uint8_t variant) {
  const std::int64_t d = variant & 1 ? 512 : 128;
  f.set(h_rows, "rows", slot(0), true);
  f.set(h_rows_count, "rows.rows", variant >> 2);
  f.set(h_cols, "rows.cols", d);
  f.set(h_stride, "rows.row_stride", d + (variant & 2 ? 4 : 0));
}

void run_hadamard(const fields& f, const char* entry) {
  const tensor_view<float> rows{f.ptr<float>(h_rows), f.v[h_rows_count], f.v[h_cols], f.v[h_stride]};
  verdict v;
  view_rules(v, rows);
  v.add_if(rows.cols != 128 && rows.cols != 512, status::unsupported_shape);
  v.add_if(!aligned(rows.data, 16) || rows.row_stride % 4 != 0, status::misaligned);
  expect(entry, f, v, [&] { return can_implement_hadamard_rotate(rows); },
         [&] { return hadamard_rotate(rows, no_stream); });
}

// --- quantize_nvfp4 / quantize_fp8 (quantize_*.hpp) ---------------------------------------------------

enum quantize_field { q_x, q_x_rows, q_x_cols, q_x_stride, q_codes, q_scales, q_global, q_rows, q_d, q_amax, q_mode,
                      q_fields };

void quantize_baseline(fields& f, std::uint8_t variant) {
  const std::int64_t d = (variant & 3) == 0 ? 16 : (variant & 3) == 1 ? 128 : (variant & 3) == 2 ? 512 : 48;
  const std::int64_t rows = variant >> 3;
  f.set(q_x, "x", slot(0), true);
  f.set(q_x_rows, "x.rows", rows);
  f.set(q_x_cols, "x.cols", d);
  f.set(q_x_stride, "x.row_stride", d + (variant & 4 ? 4 : 0));
  f.set(q_codes, "out.codes", slot(1), true);
  f.set(q_scales, "out.block_scales", slot(2), true);  // FP8: unused
  f.set(q_global, "out.scales", slot(3), true);
  f.set(q_rows, "out.rows", rows);
  f.set(q_d, "out.d", d);
  f.set(q_amax, "row_amax", slot(4), true);
  f.set(q_mode, "mode", variant & 4 ? 1 : 0);  // NVFP4: unused
}

// The rules of NVFP4 output rows (quantize_nvfp4.hpp, write_path.hpp): rows, d >= 0, d a positive
// multiple of 16 (d == 0 counts as either rule), arrays that exist, are non-null when rows > 0 and
// pairwise disjoint, codes 2-byte and global scales 4-byte aligned. Returns the ranges written.
struct nvfp4_writes {
  range codes, block_scales, global_scales, amax;
};
nvfp4_writes nvfp4_output_rules(verdict& v, const nvfp4_rows& out) {
  nvfp4_writes w;
  v.add_if(out.rows < 0 || out.d < 0, status::invalid_argument);
  v.add_if(out.d <= 0 || out.d % 16 != 0, status::unsupported_shape);
  v.add_if(out.d == 0, status::invalid_argument);
  if (out.rows >= 0 && out.d >= 0) {
    w.codes = array_rules(v, out.codes, mul(out.rows, out.d / 2));
    w.block_scales = array_rules(v, out.block_scales, mul(out.rows, out.d / 16));
    w.global_scales = array_rules(v, out.global_scales, mul(out.rows, 4));
  }
  required(v, out.codes, out.rows > 0);
  required(v, out.block_scales, out.rows > 0);
  required(v, out.global_scales, out.rows > 0);
  v.add_if(!aligned(out.codes, 2) || !aligned(out.global_scales, 4), status::misaligned);
  v.add_if(!all_disjoint({w.codes, w.block_scales, w.global_scales}), status::aliasing);
  return w;
}

// The rules quantize_nvfp4 states for x, out, row_amax (all but x against the outputs).
nvfp4_writes quantize_nvfp4_rules(verdict& v, const tensor_view<const float>& x, const nvfp4_rows& out,
                                  const float* amax, range* x_range) {
  const range xr = view_rules(v, x);
  if (x_range) *x_range = xr;
  nvfp4_writes w = nvfp4_output_rules(v, out);
  v.add_if(x.rows != out.rows || x.cols != out.d, status::invalid_argument);
  if (out.rows >= 0) w.amax = array_rules(v, amax, mul(out.rows, 4));
  required(v, amax, out.rows > 0);
  v.add_if(!aligned(x.data, 16) || x.row_stride % 4 != 0 || !aligned(amax, 4), status::misaligned);
  return w;
}

void run_quantize_nvfp4(const fields& f, const char* entry) {
  const tensor_view<const float> x{f.ptr<const float>(q_x), f.v[q_x_rows], f.v[q_x_cols], f.v[q_x_stride]};
  const nvfp4_rows out{f.ptr<std::uint8_t>(q_codes), f.ptr<std::uint8_t>(q_scales), f.ptr<float>(q_global),
                       f.v[q_rows], f.v[q_d]};
  float* amax = f.ptr<float>(q_amax);
  verdict v;
  range xr;
  const nvfp4_writes w = quantize_nvfp4_rules(v, x, out, amax, &xr);
  v.add_if(!all_disjoint({xr, w.codes, w.block_scales, w.global_scales, w.amax}), status::aliasing);
  expect(entry, f, v, [&] { return can_implement_quantize_nvfp4(x, out, amax); },
         [&] { return quantize_nvfp4(x, out, amax, no_stream); });
}

// The rules of FP8 output rows: a valid scale mode, rows, d >= 0, d a positive multiple of 16,
// arrays that exist, are non-null when rows > 0 and disjoint, codes and scales 4-byte aligned.
struct fp8_writes {
  range codes, scales, amax;
};
fp8_writes fp8_output_rules(verdict& v, fp8_scale_mode mode, const fp8_rows& out) {
  fp8_writes w;
  v.add_if(mode != fp8_scale_mode::fp32 && mode != fp8_scale_mode::pow2, status::invalid_argument);
  v.add_if(out.rows < 0 || out.d < 0, status::invalid_argument);
  v.add_if(out.d <= 0 || out.d % 16 != 0, status::unsupported_shape);
  v.add_if(out.d == 0, status::invalid_argument);
  if (out.rows >= 0 && out.d >= 0) {
    w.codes = array_rules(v, out.codes, mul(out.rows, out.d));
    w.scales = array_rules(v, out.scales, mul(out.rows, 4));
  }
  required(v, out.codes, out.rows > 0);
  required(v, out.scales, out.rows > 0);
  v.add_if(!aligned(out.codes, 4) || !aligned(out.scales, 4), status::misaligned);
  v.add_if(!all_disjoint({w.codes, w.scales}), status::aliasing);
  return w;
}

fp8_writes quantize_fp8_rules(verdict& v, const tensor_view<const float>& x, fp8_scale_mode mode, const fp8_rows& out,
                              const float* amax, range* x_range) {
  const range xr = view_rules(v, x);
  if (x_range) *x_range = xr;
  fp8_writes w = fp8_output_rules(v, mode, out);
  v.add_if(x.rows != out.rows || x.cols != out.d, status::invalid_argument);
  if (out.rows >= 0) w.amax = array_rules(v, amax, mul(out.rows, 4));
  required(v, amax, out.rows > 0);
  v.add_if(!aligned(x.data, 16) || x.row_stride % 4 != 0 || !aligned(amax, 4), status::misaligned);
  return w;
}

void run_quantize_fp8(const fields& f, const char* entry) {
  const tensor_view<const float> x{f.ptr<const float>(q_x), f.v[q_x_rows], f.v[q_x_cols], f.v[q_x_stride]};
  const fp8_rows out{f.ptr<std::uint8_t>(q_codes), f.ptr<float>(q_global), f.v[q_rows], f.v[q_d]};
  const auto mode = static_cast<fp8_scale_mode>(f.i32(q_mode));
  float* amax = f.ptr<float>(q_amax);
  verdict v;
  range xr;
  const fp8_writes w = quantize_fp8_rules(v, x, mode, out, amax, &xr);
  v.add_if(!all_disjoint({xr, w.codes, w.scales, w.amax}), status::aliasing);
  expect(entry, f, v, [&] { return can_implement_quantize_fp8(x, mode, out, amax); },
         [&] { return quantize_fp8(x, mode, out, amax, no_stream); });
}

// --- dequant (dequant.hpp): {NVFP4, FP8} x {all, selected, batched} x {BF16, FP32} -------------------

enum dequant_field { d_codes, d_scales, d_global, d_pool_rows, d_d, d_out, d_tokens, d_rows, d_cols, d_row_stride,
                     d_token_stride, d_indices, d_index_rows, d_index_cols, d_index_stride, d_fields };

enum class dequant_kind { all, selected, batched };

void dequant_baseline(fields& f, std::uint8_t variant, dequant_kind kind) {
  const std::int64_t d = variant & 1 ? 512 : 128;
  const std::int64_t pool_rows = (variant >> 4) * 3;
  const std::int64_t k = kind == dequant_kind::all ? pool_rows : (variant >> 1) & 7;
  const std::int64_t tokens = kind == dequant_kind::batched && (variant & 16) ? 3 : 1;
  const std::int64_t row_stride = d + (variant & 32 ? 8 : 0);
  f.set(d_codes, "in.codes", slot(0), true);
  f.set(d_scales, "in.block_scales", slot(1), true);  // FP8: unused
  f.set(d_global, "in.scales", slot(2), true);
  f.set(d_pool_rows, "in.rows", pool_rows);
  f.set(d_d, "in.d", d);
  f.set(d_out, "out", slot(3), true);
  f.set(d_tokens, "out.tokens", tokens);
  f.set(d_rows, "out.rows", k);
  f.set(d_cols, "out.cols", d);
  f.set(d_row_stride, "out.row_stride", row_stride);
  f.set(d_token_stride, "out.token_stride", k * row_stride + (variant & 64 ? 16 : 0));
  f.set(d_indices, "indices", slot(4), true);
  f.set(d_index_rows, "indices.rows", tokens);
  f.set(d_index_cols, "indices.cols", k);  // selected: indices.size
  f.set(d_index_stride, "indices.row_stride", k + (variant & 128 ? 3 : 0));
}

// The pool rules: rows >= 0, a valid row width (NVFP4: positive multiple of 16; FP8: positive),
// arrays that exist and are non-null when rows > 0, NVFP4 codes 4-byte / FP8 codes 8-byte aligned,
// scales 4-byte aligned. Returns the pool's arrays.
struct pool_ranges {
  range a, b, c;
};
pool_ranges pool_rules(verdict& v, const const_nvfp4_rows& in) {
  pool_ranges r;
  v.add_if(in.rows < 0 || in.d <= 0 || in.d % 16 != 0, status::invalid_argument);
  if (in.rows >= 0 && in.d >= 0) {
    r.a = array_rules(v, in.codes, mul(in.rows, in.d / 2));
    r.b = array_rules(v, in.block_scales, mul(in.rows, in.d / 16));
    r.c = array_rules(v, in.global_scales, mul(in.rows, 4));
  }
  required(v, in.codes, in.rows > 0);
  required(v, in.block_scales, in.rows > 0);
  required(v, in.global_scales, in.rows > 0);
  v.add_if(!aligned(in.codes, 4) || !aligned(in.global_scales, 4), status::misaligned);
  return r;
}
pool_ranges pool_rules(verdict& v, const const_fp8_rows& in) {
  pool_ranges r;
  v.add_if(in.rows < 0 || in.d <= 0, status::invalid_argument);
  if (in.rows >= 0 && in.d >= 0) {
    r.a = array_rules(v, in.codes, mul(in.rows, in.d));
    r.b = array_rules(v, in.scales, mul(in.rows, 4));
  }
  required(v, in.codes, in.rows > 0);
  required(v, in.scales, in.rows > 0);
  v.add_if(!aligned(in.codes, 8) || !aligned(in.scales, 4), status::misaligned);
  return r;
}

template <class ROWS>
ROWS pool_args(const fields& f);
template <>
const_nvfp4_rows pool_args<const_nvfp4_rows>(const fields& f) {
  return {f.ptr<const std::uint8_t>(d_codes), f.ptr<const std::uint8_t>(d_scales), f.ptr<const float>(d_global),
          f.v[d_pool_rows], f.v[d_d]};
}
template <>
const_fp8_rows pool_args<const_fp8_rows>(const fields& f) {
  return {f.ptr<const std::uint8_t>(d_codes), f.ptr<const float>(d_global), f.v[d_pool_rows], f.v[d_d]};
}

// The output rules of every request [tokens, rows, d]: sizes >= 0, cols == d, row stride >= d, at
// most 2^31 - 1 output rows, tokens that do not overlap, an existing array, non-null when it holds
// rows, 16-byte aligned with strides of whole 16-byte vectors.
template <class OUT>
range output_rules(verdict& v, const batched_rows_view<OUT>& o, std::int64_t d) {
  const i128 max_rows = 0x7FFFFFFF;
  if (o.tokens < 0 || o.rows < 0 || o.cols != d || o.row_stride < o.cols || o.tokens > max_rows ||
      o.rows > max_rows || i128{o.tokens} * o.rows > max_rows) {
    v.add(status::invalid_argument);
    return {address(o.data), -1};
  }
  const i128 token_elems = o.rows == 0 || o.cols == 0 ? 0 : mul(o.rows - 1, o.row_stride) + o.cols;
  v.add_if(o.tokens > 1 && o.rows > 0 && o.token_stride < token_elems, status::invalid_argument);
  const i128 elems = o.tokens == 0 || token_elems == 0 ? 0 : mul(o.tokens - 1, o.token_stride) + token_elems;
  const range r = array_rules(v, o.data, mul(elems, sizeof(OUT)));
  required(v, o.data, o.tokens > 0 && o.rows > 0);
  constexpr std::int64_t vec = 16 / sizeof(OUT);
  v.add_if(!aligned(o.data, 16) || o.row_stride % vec != 0 || (o.tokens > 1 && o.token_stride % vec != 0),
           status::misaligned);
  return r;
}

template <class ROWS, class OUT>
status dequant_entry(dequant_kind kind, const ROWS& in, span<const std::int32_t> idx,
                     tensor_view<const std::int32_t> idx2, tensor_view<OUT> out, batched_rows_view<OUT> bout,
                     bool launch) {
  constexpr bool nvfp4 = std::is_same_v<ROWS, const_nvfp4_rows>;
  if constexpr (nvfp4) {
    switch (kind) {
      case dequant_kind::all: return launch ? dequant_nvfp4(in, out, no_stream) : can_implement_dequant_nvfp4(in, out);
      case dequant_kind::selected:
        return launch ? dequant_nvfp4_selected(in, idx, out, no_stream)
                      : can_implement_dequant_nvfp4_selected(in, idx, out);
      case dequant_kind::batched:
        return launch ? dequant_nvfp4_selected_batched(in, idx2, bout, no_stream)
                      : can_implement_dequant_nvfp4_selected_batched(in, idx2, bout);
    }
  } else {
    switch (kind) {
      case dequant_kind::all: return launch ? dequant_fp8(in, out, no_stream) : can_implement_dequant_fp8(in, out);
      case dequant_kind::selected:
        return launch ? dequant_fp8_selected(in, idx, out, no_stream)
                      : can_implement_dequant_fp8_selected(in, idx, out);
      case dequant_kind::batched:
        return launch ? dequant_fp8_selected_batched(in, idx2, bout, no_stream)
                      : can_implement_dequant_fp8_selected_batched(in, idx2, bout);
    }
  }
  return status::cuda_error;  // unreachable
}

template <class ROWS, class OUT>
void run_dequant(const fields& f, const char* entry, dequant_kind kind) {
  const ROWS in = pool_args<ROWS>(f);
  verdict v;
  const pool_ranges pool = pool_rules(v, in);
  const bool valid_width = std::is_same_v<ROWS, const_nvfp4_rows> ? (in.d > 0 && in.d % 16 == 0) : in.d > 0;
  v.add_if(valid_width && in.d != 128 && in.d != 512, status::unsupported_shape);  // no kernel for this d

  // The request: out [tokens, k, d] and the index array.
  const tensor_view<OUT> out{f.ptr<OUT>(d_out), f.v[d_rows], f.v[d_cols], f.v[d_row_stride]};
  const batched_rows_view<OUT> bout{f.ptr<OUT>(d_out), f.v[d_tokens], f.v[d_rows], f.v[d_cols], f.v[d_row_stride],
                                    f.v[d_token_stride]};
  const span<const std::int32_t> idx{f.ptr<const std::int32_t>(d_indices), f.v[d_index_cols]};
  const tensor_view<const std::int32_t> idx2{f.ptr<const std::int32_t>(d_indices), f.v[d_index_rows],
                                             f.v[d_index_cols], f.v[d_index_stride]};
  range indices{0, 0}, output;
  bool nonempty = false;
  switch (kind) {
    case dequant_kind::all:
      v.add_if(out.rows != in.rows, status::invalid_argument);
      output = output_rules(v, batched_rows_view<OUT>{out.data, 1, out.rows, out.cols, out.row_stride, 0}, in.d);
      nonempty = out.rows > 0;
      break;
    case dequant_kind::selected:
      v.add_if(idx.size < 0 || out.rows != idx.size, status::invalid_argument);
      indices = array_rules(v, idx.data, idx.size >= 0 ? mul(idx.size, 4) : 0);
      output = output_rules(v, batched_rows_view<OUT>{out.data, 1, out.rows, out.cols, out.row_stride, 0}, in.d);
      nonempty = out.rows > 0;
      break;
    case dequant_kind::batched:
      indices = view_rules(v, idx2);
      v.add_if(bout.tokens != idx2.rows || bout.rows != idx2.cols, status::invalid_argument);
      output = output_rules(v, bout, in.d);
      nonempty = bout.tokens > 0 && bout.rows > 0;
      break;
  }
  if (kind != dequant_kind::all) {
    required(v, idx.data, nonempty);
    v.add_if(!aligned(idx.data, 4), status::misaligned);
  }
  v.add_if(any_overlap(output, {pool.a, pool.b, pool.c, indices}), status::aliasing);
  expect(entry, f, v, [&] { return dequant_entry(kind, in, idx, idx2, out, bout, false); },
         [&] { return dequant_entry(kind, in, idx, idx2, out, bout, true); });
}

// --- write_path_nvfp4 / write_path_fp8 (write_path.hpp) ----------------------------------------------

enum write_path_field { w_codes = c_fields, w_scales, w_global, w_rows, w_d, w_workspace, w_workspace_size, w_mode,
                        w_scale_mode, w_fields };

// The two_kernel workspace (write_path.hpp): FP32 rows [rows, d] at offset 0, then the FP32 amax
// scratch [rows], each part rounded up to 16 bytes; none for rows <= 0 or d <= 0.
i128 round16(i128 x) { return (x + 15) / 16 * 16; }
i128 amax_offset(std::int64_t rows, std::int64_t d) { return round16(mul(mul(rows, d), 4)); }
i128 workspace_bytes(std::int64_t rows, std::int64_t d) {
  return rows <= 0 || d <= 0 ? 0 : round16(amax_offset(rows, d) + mul(rows, 4));
}

// Variants: those of compress; mode two_kernel (bit 2) or fused; FP8 scale mode pow2 and 64 spare
// workspace bytes (bit 3).
void write_path_baseline(fields& f, std::uint8_t variant) {
  compress_baseline(f, variant);
  const std::int64_t n = f.v[c_out_rows], d = f.v[c_out_cols];
  f.set(c_out, "(unused)", 0, true);
  f.set(w_codes, "out.codes", slot(8), true);
  f.set(w_scales, "out.block_scales", slot(9), true);  // FP8: unused
  f.set(w_global, "out.scales", slot(10), true);
  f.set(w_rows, "out.rows", n);
  f.set(w_d, "out.d", d);
  f.set(w_workspace, "workspace", slot(11), true);
  f.set(w_workspace_size, "workspace.size", static_cast<std::int64_t>(workspace_bytes(n, d)) + (variant & 8 ? 64 : 0));
  f.set(w_mode, "mode", variant & 4 ? static_cast<int>(write_path_mode::two_kernel) : 0);
  f.set(w_scale_mode, "scale_mode", (variant >> 3) & 1);
}

// The output rules of NVFP4 (NVFP4) or FP8 rows (the other view is not read): the arrays written,
// into arrays[0..2] (FP8: codes, scales, and an absent third).
template <bool NVFP4>
void format_output_rules(verdict& v, fp8_scale_mode mode, const nvfp4_rows& out4, const fp8_rows& out8,
                         range (&arrays)[3]) {
  if constexpr (NVFP4) {
    const nvfp4_writes w = nvfp4_output_rules(v, out4);
    arrays[0] = w.codes, arrays[1] = w.block_scales, arrays[2] = w.global_scales;
  } else {
    const fp8_writes w = fp8_output_rules(v, mode, out8);
    arrays[0] = w.codes, arrays[1] = w.scales;
  }
}

// The documented rules of write_path_nvfp4 (NVFP4) / write_path_fp8 for compress inputs p, output
// rows out4 / out8 (the other is unused), a workspace and a mode. Returns what the call reads.
template <bool NVFP4, class IN, class BIAS>
compress_reads write_path_rules(verdict& v, const compress_params<IN, BIAS>& p, fp8_scale_mode scale_mode,
                                const nvfp4_rows& out4, const fp8_rows& out8, span<std::uint8_t> ws,
                                write_path_mode mode) {
  const std::int64_t n = NVFP4 ? out4.rows : out8.rows, d = NVFP4 ? out4.d : out8.d;
  range o[3];  // the output arrays
  format_output_rules<NVFP4>(v, scale_mode, out4, out8, o);
  compress_reads r;
  if (mode == write_path_mode::fused) {  // compress -> quantize in one kernel, no workspace
    r = compress_rules(v, p, tensor_view<float>{nullptr, n, d, d});
  } else if (mode == write_path_mode::two_kernel) {  // compress into the workspace, then quantize
    v.add_if(ws.size < 0, status::invalid_argument);
    array_rules(v, ws.data, ws.size >= 0 ? ws.size : 0);
    v.add_if(ws.size < workspace_bytes(n, d), status::invalid_argument);
    required(v, ws.data, workspace_bytes(n, d) > 0);
    v.add_if(!aligned(ws.data, 16), status::misaligned);
    const tensor_view<float> rows{reinterpret_cast<float*>(ws.data), n, d, d};  // [n, d] FP32, offset 0
    const bool has_amax = ws.data != nullptr && n > 0 && d > 0 && amax_offset(n, d) < max_array_bytes;
    float* amax = has_amax ? reinterpret_cast<float*>(reinterpret_cast<std::uintptr_t>(ws.data) +
                                                      static_cast<std::uintptr_t>(amax_offset(n, d)))
                           : nullptr;  // [n], after the rows
    const range x = view_rules(v, rows);
    r = compress_rules(v, p, rows);
    range xr;
    const range a = NVFP4 ? quantize_nvfp4_rules(v, rows, out4, amax, &xr).amax
                          : quantize_fp8_rules(v, rows, scale_mode, out8, amax, &xr).amax;
    v.add_if(any_overlap(x, {r.kv, r.gate, r.bias, r.norm, r.cos, r.sin, r.positions}) ||
                 any_overlap(a, {r.kv, r.gate, r.bias, r.norm, r.cos, r.sin, r.positions}) ||
                 !all_disjoint({x, o[0], o[1], o[2], a}),
             status::aliasing);
  } else {
    v.add(status::invalid_argument);
  }
  for (const range& out : o) {
    v.add_if(any_overlap(out, {r.kv, r.gate, r.bias, r.norm, r.cos, r.sin, r.positions}), status::aliasing);
  }
  return r;
}

template <bool NVFP4, class IN, class BIAS>
void run_write_path(const fields& f, const char* entry) {
  const compress_params<IN, BIAS> p = compress_args<IN, BIAS>(f);
  const auto mode = static_cast<write_path_mode>(f.i32(w_mode));
  const auto scale_mode = static_cast<fp8_scale_mode>(f.i32(w_scale_mode));
  const span<std::uint8_t> ws{f.ptr<std::uint8_t>(w_workspace), f.v[w_workspace_size]};
  const nvfp4_rows out4{f.ptr<std::uint8_t>(w_codes), f.ptr<std::uint8_t>(w_scales), f.ptr<float>(w_global),
                        f.v[w_rows], f.v[w_d]};
  const fp8_rows out8{f.ptr<std::uint8_t>(w_codes), f.ptr<float>(w_global), f.v[w_rows], f.v[w_d]};
  verdict v;
  write_path_rules<NVFP4>(v, p, scale_mode, out4, out8, ws, mode);
  if constexpr (NVFP4) {
    expect(entry, f, v, [&] { return can_implement_write_path_nvfp4(p, out4, ws, mode); },
           [&] { return write_path_nvfp4(p, out4, ws, no_stream, mode); });
  } else {
    expect(entry, f, v, [&] { return can_implement_write_path_fp8(p, scale_mode, out8, ws, mode); },
           [&] { return write_path_fp8(p, scale_mode, out8, ws, no_stream, mode); });
  }
}

// --- append_nvfp4 / append_fp8 (append.hpp) ----------------------------------------------------------

enum append_field { a_segments = c_fields, a_cu_seqlens, a_positions, a_state_slots, a_slot_mapping, a_state,
                    a_state_count, a_flags, a_codes, a_scales, a_global, a_pool_rows, a_pool_d, a_scale_mode,
                    a_max_tokens, a_fields };

// A (ratio, d) with kernels: (4, 128), (4, 512), (128, 128), (128, 512).
bool supported_shape(i128 m, i128 d) { return (m == 4 || m == 128) && (d == 128 || d == 512); }

// Bytes of one compressor state slot (append_model.hpp) of a supported (m, d): the 16-byte header,
// then the kv and gate rings [R, c*d] FP32, R = 2m (CSA) or m - 1 (HCA).
i128 state_slot_bytes(int m, std::int64_t d) {
  const i128 ring = m == 4 ? 2 * m : m - 1, c = m == 4 ? 2 : 1;
  return 16 + 2 * ring * c * d * 4;
}

// Variants: those of compress (whose start position, positions and FP32 output are unused here);
// B = 1..3 segments (bits 2-3, as T), FP8 scale mode pow2 (bit 3), no state_slots array (bit 5),
// no error flags (bit 2), two spare state slots (bit 6).
void append_baseline(fields& f, std::uint8_t variant) {
  compress_baseline(f, variant);
  const std::int64_t tokens = f.v[c_kv_rows], m = f.v[c_ratio], d = f.v[c_out_cols];
  const std::int64_t segments = 1 + (variant >> 2) % 3;
  f.set(c_start, "(unused)", 0);
  f.set(c_positions, "(unused)", 0, true);
  f.set(c_out, "(unused)", 0, true);
  f.set(c_out_rows, "(unused)", 0);
  f.set(c_out_cols, "(unused)", 0);
  f.set(c_out_stride, "(unused)", 0);
  f.set(a_segments, "segments", segments);
  f.set(a_cu_seqlens, "cu_seqlens", slot(6), true);
  f.set(a_positions, "positions", slot(12), true);
  f.set(a_state_slots, "state_slots", variant & 32 ? 0 : slot(13), true);
  f.set(a_slot_mapping, "slot_mapping", slot(14), true);
  f.set(a_state, "state.data", slot(11), true);
  f.set(a_state_count, "state.slots", segments + (variant & 64 ? 2 : 0));
  f.set(a_flags, "error_flags", variant & 4 ? 0 : slot(15), true);
  f.set(a_codes, "pool.codes", slot(8), true);
  f.set(a_scales, "pool.block_scales", slot(9), true);  // FP8: unused
  f.set(a_global, "pool.scales", slot(10), true);
  f.set(a_pool_rows, "pool.rows", tokens / m + 2);
  f.set(a_pool_d, "pool.d", d);
  f.set(a_scale_mode, "scale_mode", (variant >> 3) & 1);
  f.set(a_max_tokens, "max_segment_tokens", 0);
}

template <class IN, class BIAS>
append_params<IN, BIAS> append_args(const fields& f) {
  const compress_params<IN, BIAS> c = compress_args<IN, BIAS>(f);
  append_params<IN, BIAS> p;
  p.ratio = c.ratio;
  p.kv = c.kv;
  p.gate = c.gate;
  p.position_bias = c.position_bias;
  p.norm_weight = c.norm_weight;
  p.eps = c.eps;
  p.rope = c.rope;
  p.hadamard = c.hadamard;
  p.segments = f.v[a_segments];
  p.cu_seqlens = f.ptr<const std::int32_t>(a_cu_seqlens);
  p.positions = f.ptr<const std::int32_t>(a_positions);
  p.state_slots = f.ptr<const std::int32_t>(a_state_slots);
  p.slot_mapping = f.ptr<const std::int32_t>(a_slot_mapping);
  p.state = {f.ptr<std::uint8_t>(a_state), f.v[a_state_count]};
  p.error_flags = f.ptr<std::uint32_t>(a_flags);
  p.max_segment_tokens = f.v[a_max_tokens];
  return p;
}

// The documented rules of an append batch (append.hpp) into a pool of width d whose arrays are
// `pool` (the format's own rules already stated): the compress inputs', the host-visible metadata
// (counts, pointers, alignment, the arrays [B+1], [B], [B], [N], the states [slots, state bytes], the
// flags [1]), and that nothing the call writes (pool, states, flags) overlaps anything it reads or
// anything else it writes. The metadata values live on the device: not the host's to check.
template <class IN, class BIAS>
void append_rules(verdict& v, const append_params<IN, BIAS>& p, std::int64_t d, const range (&pool)[3]) {
  const compress_reads r = compress_input_rules(v, p, d);
  const std::int64_t b = p.segments, n = p.kv.rows, slots = p.state.slots;
  v.add_if(b < 0 || slots < 0 || p.max_segment_tokens < 0, status::invalid_argument);
  // Limits append.hpp leaves implicit: token indices (cu_seqlens, the slot mapping) are int32, so
  // N > 2^31 - 1 may be rejected; the grid has at least one CTA per segment plus one, so B + 1 >
  // 2^31 - 1 cannot launch, and at most one unit per row plus B + 1 fits surely.
  v.tolerate_if(n > int32_max, status::invalid_argument);
  v.add_if(b >= 0 && i128{b} + 1 > int32_max, status::invalid_argument);
  const bool supported = supported_shape(p.ratio, d);
  if (supported && n >= 0 && b >= 0) {
    v.tolerate_if(i128{n / p.ratio} + b + 1 > grid_units_surely_fitting, status::invalid_argument);
  }
  required(v, p.cu_seqlens, b > 0);
  required(v, p.positions, b > 0);
  required(v, p.slot_mapping, b > 0 && n > 0);
  required(v, p.state.data, slots > 0);
  v.add_if(!aligned(p.cu_seqlens, 4) || !aligned(p.positions, 4) || !aligned(p.state_slots, 4) ||
               !aligned(p.slot_mapping, 4) || !aligned(p.error_flags, 4) || !aligned(p.state.data, 16),
           status::misaligned);
  const i128 segs = b >= 0 ? b : 0, tokens = n >= 0 ? n : 0;
  const range cu = array_rules(v, p.cu_seqlens, b >= 0 ? mul(i128{b} + 1, 4) : 0);
  const range positions = array_rules(v, p.positions, mul(segs, 4));
  const range state_slots = array_rules(v, p.state_slots, p.state_slots ? mul(segs, 4) : 0);
  const range slot_mapping = array_rules(v, p.slot_mapping, mul(tokens, 4));
  const range state = supported && slots >= 0 ? array_rules(v, p.state.data, mul(slots, state_slot_bytes(p.ratio, d)))
                                              : range{address(p.state.data), -1};
  const range flags = array_rules(v, p.error_flags, p.error_flags ? 4 : 0);
  for (const range& out : {pool[0], pool[1], pool[2], state, flags}) {
    v.add_if(any_overlap(out, {r.kv, r.gate, r.bias, r.norm, r.cos, r.sin, cu, positions, state_slots, slot_mapping}),
             status::aliasing);
  }
  v.add_if(any_overlap(state, {pool[0], pool[1], pool[2], flags}) || any_overlap(flags, {pool[0], pool[1], pool[2]}),
           status::aliasing);
}

template <bool NVFP4, class IN, class BIAS>
void run_append(const fields& f, const char* entry) {
  const append_params<IN, BIAS> p = append_args<IN, BIAS>(f);
  const auto mode = static_cast<fp8_scale_mode>(f.i32(a_scale_mode));
  const nvfp4_rows pool4{f.ptr<std::uint8_t>(a_codes), f.ptr<std::uint8_t>(a_scales), f.ptr<float>(a_global),
                         f.v[a_pool_rows], f.v[a_pool_d]};
  const fp8_rows pool8{f.ptr<std::uint8_t>(a_codes), f.ptr<float>(a_global), f.v[a_pool_rows], f.v[a_pool_d]};
  verdict v;
  range pool[3];
  format_output_rules<NVFP4>(v, mode, pool4, pool8, pool);
  append_rules(v, p, f.v[a_pool_d], pool);
  if constexpr (NVFP4) {
    expect(entry, f, v, [&] { return can_implement_append_nvfp4(p, pool4); },
           [&] { return append_nvfp4(p, pool4, no_stream); });
  } else {
    expect(entry, f, v, [&] { return can_implement_append_fp8(p, mode, pool8); },
           [&] { return append_fp8(p, mode, pool8, no_stream); });
  }
}

// --- reset_append_state (append.hpp) -------------------------------------------------------------------

enum reset_field { z_state, z_state_count, z_ratio, z_d, z_slots, z_count, z_fields };

// Variants: (m, d) as compress's (bits 0-1), 1..8 state slots, count 0..7 (bits 5-7).
void reset_baseline(fields& f, std::uint8_t variant) {
  f.set(z_state, "state.data", slot(0), true);
  f.set(z_state_count, "state.slots", 1 + (variant >> 2) % 8);
  f.set(z_ratio, "ratio", variant & 2 ? 128 : 4);
  f.set(z_d, "d", variant & 1 ? 512 : 128);
  f.set(z_slots, "slots", slot(1), true);
  f.set(z_count, "count", variant >> 5);
}

// A valid call with count > 0 launches the reset kernel, so the entry is only called when the
// predicate finds a broken rule (it must then reject: nothing launches) or count == 0.
void run_reset(const fields& f, const char* entry) {
  const append_state state{f.ptr<std::uint8_t>(z_state), f.v[z_state_count]};
  const int m = f.i32(z_ratio);
  const std::int64_t d = f.v[z_d], count = f.v[z_count];
  const std::int32_t* slots = f.ptr<const std::int32_t>(z_slots);
  verdict v;
  const bool supported = supported_shape(m, d);
  v.add_if(!supported, status::unsupported_shape);
  v.add_if(count < 0 || state.slots < 0, status::invalid_argument);
  if (count >= 0 && state.slots >= 0) {
    // The rules of the arrays: slots [count] int32, 4-byte aligned; the states [state.slots, state
    // bytes], 16-byte aligned (append_state); disjoint. "count == 0: nothing launched" leaves open
    // whether they are checked then: for count == 0 they may be, need not be.
    verdict w;
    required(w, slots, count > 0);
    required(w, state.data, state.slots > 0);
    w.add_if(!aligned(slots, 4) || !aligned(state.data, 16), status::misaligned);
    const range s = supported ? array_rules(w, state.data, mul(state.slots, state_slot_bytes(m, d)))
                              : range{address(state.data), -1};
    const range idx = array_rules(w, slots, mul(count, 4));
    w.add_if(overlap(s, idx), status::aliasing);
    // The grid of ceil(count / 128) CTAs must fit int32: a limit append.hpp does not state.
    w.tolerate_if(i128{count} > 128 * int32_max, status::invalid_argument);
    if (count == 0) {
      v.lenient |= w.bits | w.lenient;
    } else {
      v.bits |= w.bits;
      v.lenient |= w.lenient;
    }
  }
  if (v.valid() && count > 0) return;
  const status s = reset_append_state(state, m, d, slots, count, no_stream);
  if (v.valid() && s != status::ok && !v.allows(s)) fail(entry, f, v, "a valid call was rejected", s);
  if (!v.valid() && s == status::ok) fail(entry, f, v, "an invalid call was accepted", s);
  if (!v.valid() && !v.allows(s)) fail(entry, f, v, "the rejection names no broken rule", s);
}

// --- validate_append_metadata (append_model.hpp): host copies of one batch's metadata -------------------

// Decoded from the input: ratio, B <= 8 segments of 0..12 (CSA) or 0..255 (HCA) tokens, cu_seqlens
// built from the lengths with an optional corruption, positions (0, near a block boundary, any, or
// a boundary value), state slots in [-2, slots + 1] or none, a slot mapping in [-2, pool rows + 1]
// with repeats, small slot / row counts (the validator allocates them), null arrays.
struct metadata_case {
  int ratio = 4;
  std::int64_t segments = 0, total_tokens = 0, state_slot_count = 0, pool_rows = 0;
  std::int64_t max_tokens = 0;  // append_metadata::max_segment_tokens
  std::vector<std::int32_t> cu, positions, state_slots, slot_mapping;
  bool no_cu = false, no_positions = false, no_state_slots = false, no_slot_mapping = false;
};

metadata_case decode_metadata(fuzz_input& in) {
  metadata_case c;
  const std::uint8_t shape = in.u8();
  c.ratio = shape & 1 ? 128 : 4;
  if ((shape & 0x1E) == 0x1E) {
    constexpr int bad_ratios[] = {0, 1, 8, -4, 127, 129, 2};
    c.ratio = bad_ratios[in.u8() % std::size(bad_ratios)];
  }
  const std::uint8_t counts = in.u8();
  c.segments = counts % 9 == 8 && (counts & 0x80) ? -1 : counts % 9;
  const std::uint8_t slots = in.u8(), rows = in.u8();
  c.state_slot_count = slots % 10 == 9 ? -1 : slots % 10;
  c.pool_rows = rows % 70 == 69 ? -1 : rows % 70;
  const std::uint8_t nulls = in.u8();
  c.no_cu = nulls == 0xF1;
  c.no_positions = nulls == 0xF2;
  c.no_slot_mapping = nulls == 0xF3;
  c.no_state_slots = nulls & 1;
  const std::int64_t b = c.segments > 0 ? c.segments : 0;
  const int m = c.ratio > 0 ? c.ratio : 4;
  c.cu.assign(static_cast<std::size_t>(b + 1), 0);
  for (std::int64_t s = 0; s < b; ++s) {
    const std::int64_t length = m == 128 ? in.u8() : in.u8() % 13;
    c.cu[s + 1] = static_cast<std::int32_t>(c.cu[s] + length);
  }
  c.total_tokens = c.cu[b] + in.u8() % 3;
  const std::uint8_t corrupt = in.u8();
  if (corrupt % 4 == 3) {  // break cu_seqlens: one entry, or the token count
    const std::size_t at = in.u8() % (b + 1);
    constexpr std::int32_t bad_cu[] = {-1, std::numeric_limits<std::int32_t>::min(), 5000,
                                       std::numeric_limits<std::int32_t>::max()};
    switch ((corrupt >> 2) % 4) {
      case 0: c.cu[at] = bad_cu[in.u8() % std::size(bad_cu)]; break;
      case 1: c.cu[at] = static_cast<std::int32_t>(c.cu[at] + in.i8()); break;
      case 2: c.total_tokens = c.cu[b] - 1 - in.u8() % 4; break;
      default: c.total_tokens = -1 - in.u8() % 2; break;
    }
  }
  c.positions.resize(static_cast<std::size_t>(b));
  for (std::int64_t s = 0; s < b; ++s) {
    const std::uint8_t kind = in.u8();
    const std::int64_t length = std::int64_t{c.cu[s + 1]} - c.cu[s];
    std::int64_t p = 0;
    switch (kind % 4) {
      case 0: p = 0; break;
      case 1: p = std::int64_t{in.u8() % 8} * m + in.i8() % 3; break;  // at or next to a block boundary
      case 2: p = in.u8(); break;
      default: {
        const std::int64_t top = 0x7FFFFFFF - (length > 0 ? length : 0);
        const std::int64_t edge[] = {-1, top, top + 1, top - m, std::numeric_limits<std::int32_t>::min()};
        p = edge[in.u8() % std::size(edge)];
      }
    }
    c.positions[s] = static_cast<std::int32_t>(p);
  }
  c.state_slots.resize(static_cast<std::size_t>(b));
  const std::int64_t slot_span = (c.state_slot_count > 0 ? c.state_slot_count : 0) + 3;
  for (std::int32_t& v : c.state_slots) v = static_cast<std::int32_t>(in.u8() % (slot_span + 1)) - 2;
  const std::int64_t total = c.total_tokens > 0 ? c.total_tokens : 0;
  c.slot_mapping.resize(static_cast<std::size_t>(total));
  const std::int64_t row_span = (c.pool_rows > 0 ? c.pool_rows : 0) + 3;
  for (std::int32_t& v : c.slot_mapping) v = static_cast<std::int32_t>(in.u8() % (row_span + 1)) - 2;
  // Last, so that inputs written before it existed decode as before (undeclared): a declared
  // bound on the segment length in half of the cases, sometimes negative.
  const std::uint8_t declared = in.u8();
  c.max_tokens = declared < 128 ? 0 : (declared == 255 ? -1 : (declared - 128) % 20);
  return c;
}

// The rules of append_model.hpp, evaluated on the case, and the assertions on what the validator
// returned. Per segment s: `need` the error bits it must raise, `may` those it may (rules the
// header leaves open: an empty segment's position or state slot; one of two duplicates may be
// named). A segment is live when its bounds are good, it is non-empty and its position is good:
// only a live segment has rows or keeps a state (kernels/append.cuh: the others write nothing).
void run_metadata(fuzz_input& in, const char* entry) {
  const metadata_case c = decode_metadata(in);
  append_metadata md;
  md.segments = c.segments;
  md.total_tokens = c.total_tokens;
  md.cu_seqlens = c.no_cu ? nullptr : c.cu.data();
  md.positions = c.no_positions ? nullptr : c.positions.data();
  md.state_slots = c.no_state_slots ? nullptr : c.state_slots.data();
  md.slot_mapping = c.no_slot_mapping ? nullptr : c.slot_mapping.data();
  md.max_segment_tokens = c.max_tokens;
  append_metadata_report report;
  report.segment = -7;  // must be overwritten
  report.errors = 0xDEAD0000u;
  const status got = validate_append_metadata(md, c.ratio, c.state_slot_count, c.pool_rows, &report);
  const status again = validate_append_metadata(md, c.ratio, c.state_slot_count, c.pool_rows);

  fields f;  // for the failure report
  f.set(0, "ratio", c.ratio);
  f.set(1, "segments", c.segments);
  f.set(2, "total_tokens", c.total_tokens);
  f.set(3, "state_slot_count", c.state_slot_count);
  f.set(4, "pool_rows", c.pool_rows);
  f.set(5, "cu_seqlens", reinterpret_cast<std::intptr_t>(md.cu_seqlens), true);
  f.set(6, "positions", reinterpret_cast<std::intptr_t>(md.positions), true);
  f.set(7, "state_slots", reinterpret_cast<std::intptr_t>(md.state_slots), true);
  f.set(8, "slot_mapping", reinterpret_cast<std::intptr_t>(md.slot_mapping), true);
  f.set(9, "report.segment", report.segment);
  f.set(10, "report.errors", report.errors);
  f.set(11, "max_segment_tokens", c.max_tokens);
  for (std::size_t s = 0; s < c.positions.size() && 12 + 3 * s + 2 < fields::capacity; ++s) {
    f.set(static_cast<int>(12 + 3 * s), "cu_seqlens[s]", c.cu[s]);
    f.set(static_cast<int>(13 + 3 * s), "positions[s]", c.positions[s]);
    f.set(static_cast<int>(14 + 3 * s), "state_slots[s]", c.state_slots[s]);
  }

  // Arguments: the ratio has kernels; counts >= 0; the arrays a non-empty batch reads are present.
  verdict v;
  v.add_if(c.ratio != 4 && c.ratio != 128, status::unsupported_shape);
  v.add_if(c.segments < 0 || c.total_tokens < 0 || c.state_slot_count < 0 || c.pool_rows < 0 || c.max_tokens < 0,
           status::invalid_argument);
  if (c.segments > 0) {
    required(v, md.cu_seqlens, true);
    required(v, md.positions, true);
    required(v, md.slot_mapping, c.total_tokens > 0);
  }
  if (again != got) fail(entry, f, v, "the status depends on whether a report is asked for", again);
  const bool no_report = report.segment == -1 && report.errors == 0;
  if (!v.valid() || c.segments == 0) {
    if (v.valid() && got != status::ok) fail(entry, f, v, "a valid call was rejected", got);
    if (!v.valid() && (got == status::ok || !v.allows(got))) fail(entry, f, v, "the status names no broken rule", got);
    if (!no_report) fail(entry, f, v, "the report names segment errors of a call without any", got);
    return;
  }

  // The segments.
  const std::int64_t b = c.segments, m = c.ratio;
  std::vector<std::uint32_t> need(static_cast<std::size_t>(b), 0), may(static_cast<std::size_t>(b), 0);
  std::vector<std::int64_t> state_owner(static_cast<std::size_t>(c.state_slot_count), -1);
  std::vector<std::int64_t> row_owner(static_cast<std::size_t>(c.pool_rows), -1);
  for (std::int64_t s = 0; s < b; ++s) {
    const std::int64_t begin = c.cu[s], end = c.cu[s + 1];
    if (begin < 0 || end < begin || end > c.total_tokens) {
      need[s] |= append_error_cu_seqlens;
      continue;
    }
    const std::int64_t length = end - begin, position = c.positions[s];
    const std::int64_t slot = md.state_slots ? c.state_slots[s] : -1;
    if (length == 0) {
      if (position < 0) may[s] |= append_error_position;
      if (slot < -1 || slot >= c.state_slot_count) may[s] |= append_error_state_slot;
      continue;
    }
    if (c.max_tokens > 0 && length > c.max_tokens) {  // longer than declared: nothing else is looked at
      need[s] |= append_error_segment_length;
      continue;
    }
    if (position < 0 || position + length > int32_max) {
      need[s] |= append_error_position;
      continue;
    }
    // Rows: the blocks that end inside [position, position + length). The first row reads from
    // (CSA) the previous block's first token (block 0: its own), (HCA) its own block's first.
    const std::int64_t first_block = position / m, end_block = (position + length) / m;
    const std::int64_t first_read = m == 4 ? (first_block > 0 ? (first_block - 1) * m : 0) : first_block * m;
    const bool needs_state = end_block > first_block && first_read < position;
    if (slot < -1 || slot >= c.state_slot_count || (slot == -1 && needs_state)) {
      need[s] |= append_error_state_slot;
    } else if (slot >= 0) {
      if (state_owner[slot] >= 0) {
        need[s] |= append_error_duplicate_state;
        may[state_owner[slot]] |= append_error_duplicate_state;
      }
      state_owner[slot] = s;
    }
    for (std::int64_t block = first_block; block < end_block; ++block) {
      const std::int64_t last_token = begin + (block + 1) * m - 1 - position;  // the token that ends the block
      const std::int64_t row = c.slot_mapping[static_cast<std::size_t>(last_token)];
      if (row == -1) continue;
      if (row < -1 || row >= c.pool_rows) {
        need[s] |= append_error_pool_slot;
        continue;
      }
      if (row_owner[row] >= 0) {
        need[s] |= append_error_duplicate_pool;
        may[row_owner[row]] |= append_error_duplicate_pool;
      }
      row_owner[row] = s;
    }
  }
  std::uint32_t all_need = 0, all_may = 0;
  for (std::int64_t s = 0; s < b; ++s) {
    all_need |= need[s];
    all_may |= need[s] | may[s];
  }
  v.tolerate_if(all_may != 0, status::invalid_argument);
  if (all_need != 0) v.add(status::invalid_argument);
  if (got == status::ok) {
    if (all_need != 0) fail(entry, f, v, "invalid metadata was accepted", got);
    if (!no_report) fail(entry, f, v, "an accepted batch has a report with errors", got);
    return;
  }
  if (got != status::invalid_argument) fail(entry, f, v, "metadata errors need invalid_argument", got);
  if (report.errors == 0 || (report.errors & ~all_may) != 0 || (all_need & ~report.errors) != 0) {
    fail(entry, f, v, "the report's error bits are not those of the batch", got);
  }
  const std::int64_t first = report.segment;
  if (first < 0 || first >= b || (need[first] | may[first]) == 0) {
    fail(entry, f, v, "the report names a segment without errors", got);
  }
  for (std::int64_t s = 0; s < first; ++s) {
    if (need[s] != 0) fail(entry, f, v, "the report does not name the first offending segment", got);
  }
}

// --- kv_cache_layout (kv_cache_layout.hpp) -----------------------------------------------------------

// The layout kv_cache_layout.hpp documents for a shape: the arrays main codes [capacity, main_d/2],
// block scales [capacity, main_d/16], global scales [capacity] FP32, indexer codes [capacity,
// indexer_d], indexer scales [capacity] FP32 (0 bytes without an indexer), in this order, each at
// a multiple of 256 bytes with less than 256 bytes of padding after the previous one; the total a
// multiple of 256. Valid shapes: capacity in [0, 2^31 - 1], main_d a positive multiple of 16 up to
// 65536, indexer_d 0 or a positive multiple of 16 up to 65536.
struct layout_model {
  bool valid = false;
  i128 offset[5] = {}, bytes[5] = {}, total = 0;
};
layout_model layout_of(std::int64_t capacity, std::int64_t main_d, std::int64_t indexer_d) {
  layout_model l;
  l.valid = capacity >= 0 && capacity <= int32_max && main_d > 0 && main_d % 16 == 0 && main_d <= 65536 &&
            (indexer_d == 0 || (indexer_d > 0 && indexer_d % 16 == 0 && indexer_d <= 65536));
  if (!l.valid) return l;
  const i128 n = capacity;
  const i128 bytes[5] = {n * main_d / 2, n * (main_d / 16), n * 4, indexer_d > 0 ? n * indexer_d : 0,
                         indexer_d > 0 ? n * 4 : 0};
  i128 at = 0;
  for (int k = 0; k < 5; ++k) {
    l.offset[k] = at;
    l.bytes[k] = bytes[k];
    at = (at + bytes[k] + 255) / 256 * 256;
  }
  l.total = at;
  return l;
}
const kv_cache_part& part(const kv_cache_layout& l, int k) {
  const kv_cache_part* parts[5] = {&l.main_codes, &l.main_block_scales, &l.main_global_scales, &l.indexer_codes,
                                   &l.indexer_scales};
  return *parts[k];
}
kv_cache_part& part(kv_cache_layout& l, int k) {
  return const_cast<kv_cache_part&>(part(static_cast<const kv_cache_layout&>(l), k));
}
bool layout_matches(const kv_cache_layout& l, const layout_model& e) {
  for (int k = 0; k < 5; ++k) {
    if (part(l, k).offset != e.offset[k] || part(l, k).bytes != e.bytes[k]) return false;
  }
  return l.total_bytes == e.total;
}
// Where array k of a layout lies in an allocation at `base`: null for an empty array or base.
std::uintptr_t part_address(const layout_model& e, int k, std::uintptr_t base) {
  return e.bytes[k] > 0 && base != 0 ? base + static_cast<std::uintptr_t>(e.offset[k]) : 0;
}
template <class T>
std::uintptr_t bits_of(T* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

enum layout_field { l_capacity, l_main_d, l_indexer_d, l_base, l_fields };

// Variants: capacity 0..63, main_d 512 or 128, indexer_d 128 or 0 (an HCA layer).
void layout_baseline(fields& f, std::uint8_t variant) {
  f.set(l_capacity, "shape.capacity", variant >> 2);
  f.set(l_main_d, "shape.main_d", variant & 1 ? 128 : 512);
  f.set(l_indexer_d, "shape.indexer_d", variant & 2 ? 0 : 128);
  f.set(l_base, "base", slot(0), true);
}

// check_kv_cache_shape, make_kv_cache_layout (out unchanged when invalid), kv_cache_bytes_per_row,
// kv_cache_views_at (for a base whose allocation exists: its precondition), same_layout.
void run_layout(const fields& f, const char* entry) {
  const kv_cache_shape shape{f.v[l_capacity], f.v[l_main_d], f.v[l_indexer_d]};
  const layout_model e = layout_of(shape.capacity, shape.main_d, shape.indexer_d);
  verdict v;
  v.add_if(!e.valid, status::invalid_argument);
  const status want = e.valid ? status::ok : status::invalid_argument;
  const status checked = check_kv_cache_shape(shape);
  if (checked != want) fail(entry, f, v, "check_kv_cache_shape disagrees with the documented ranges", checked);
  kv_cache_layout l;
  std::memset(static_cast<void*>(&l), 0x5A, sizeof l);
  const kv_cache_layout before = l;
  const status made = make_kv_cache_layout(shape, l);
  if (made != want) fail(entry, f, v, "make_kv_cache_layout disagrees with the documented ranges", made);
  if (!e.valid) {
    if (std::memcmp(&l, &before, sizeof l) != 0) fail(entry, f, v, "a rejected layout changed `out`", made);
    return;
  }
  if (l.shape.capacity != shape.capacity || l.shape.main_d != shape.main_d || l.shape.indexer_d != shape.indexer_d ||
      !layout_matches(l, e)) {
    fail(entry, f, v, "the layout is not the documented one", made);
  }
  const kv_cache_row_bytes rb = kv_cache_bytes_per_row(shape);
  const std::int64_t md = shape.main_d, xd = shape.indexer_d;
  if (rb.main != md / 2 + md / 16 + 4 || rb.main_bf16 != 2 * md || rb.indexer != (xd > 0 ? xd + 4 : 0) ||
      rb.indexer_bf16 != 2 * xd || rb.total() != rb.main + rb.indexer) {
    fail(entry, f, v, "kv_cache_bytes_per_row is not the documented one", made);
  }
  if (!same_layout(l, l)) fail(entry, f, v, "same_layout(l, l) is false", made);
  for (int k = 0; k < 5; ++k) {
    kv_cache_layout other = l;
    part(other, k).bytes += 1;
    if (same_layout(l, other)) fail(entry, f, v, "same_layout misses a part's size", made);
  }
  const std::uintptr_t base = static_cast<std::uintptr_t>(f.v[l_base]);
  if (address(f.ptr(l_base)) + e.total >= address_space) return;  // no such allocation
  const kv_cache_views views = kv_cache_views_at(l, f.ptr(l_base));
  const bool ok = bits_of(views.main.codes) == part_address(e, 0, base) &&
                  bits_of(views.main.block_scales) == part_address(e, 1, base) &&
                  bits_of(views.main.global_scales) == part_address(e, 2, base) && views.main.rows == shape.capacity &&
                  views.main.d == md && bits_of(views.indexer.codes) == part_address(e, 3, base) &&
                  bits_of(views.indexer.scales) == part_address(e, 4, base) &&
                  views.indexer.rows == (xd > 0 ? shape.capacity : 0) && views.indexer.d == xd;
  if (!ok) fail(entry, f, v, "kv_cache_views_at does not place the arrays of the layout", made);
}

// --- compressed_kv_cache::create (compressed_kv_cache.hpp) ---------------------------------------------

// A cache to hand to create() as `out`: it must come back unchanged when create() fails.
const compressed_kv_cache& sentinel_cache() {
  static const compressed_kv_cache c = [] {
    compressed_kv_cache s;
    const nvfp4_rows main{reinterpret_cast<std::uint8_t*>(slot(25)), reinterpret_cast<std::uint8_t*>(slot(26)),
                          reinterpret_cast<float*>(slot(27)), 7, 512};
    const fp8_rows indexer{reinterpret_cast<std::uint8_t*>(slot(28)), reinterpret_cast<float*>(slot(29)), 7, 128};
    if (compressed_kv_cache::create(main, indexer, s) != status::ok) {
      std::fprintf(stderr, "fuzz_validation: the sentinel cache cannot be created\n");
      std::abort();
    }
    return s;
  }();
  return c;
}
bool same_rows(const nvfp4_rows& a, const nvfp4_rows& b) {
  return a.codes == b.codes && a.block_scales == b.block_scales && a.global_scales == b.global_scales &&
         a.rows == b.rows && a.d == b.d;
}
bool same_rows(const fp8_rows& a, const fp8_rows& b) {
  return a.codes == b.codes && a.scales == b.scales && a.rows == b.rows && a.d == b.d;
}
bool same_cache(const compressed_kv_cache& a, const compressed_kv_cache& b) {
  return a.rows() == b.rows() && a.capacity() == b.capacity() && same_rows(a.main_storage(), b.main_storage()) &&
         same_rows(a.indexer_storage(), b.indexer_storage());
}
// The cache over `main` / `indexer` create() documents: 0 rows written, the storage as given (no
// indexer: empty).
bool is_cache_of(const compressed_kv_cache& c, const nvfp4_rows& main, const fp8_rows& indexer) {
  const bool with_indexer = indexer.d != 0;
  const nvfp4_rows written = c.main_storage();
  return c.rows() == 0 && c.capacity() == main.rows && c.free_rows() == main.rows && c.main_d() == main.d &&
         c.has_indexer() == with_indexer && c.indexer_d() == indexer.d && same_rows(written, main) &&
         same_rows(c.indexer_storage(), with_indexer ? indexer : fp8_rows{}) && c.main_rows().rows == 0 &&
         c.indexer_rows().rows == 0;
}
// Asserts create()'s outcome: `s` against the predicate; on success `c` is the cache over main /
// indexer, otherwise `c` is unchanged.
void expect_create(const char* entry, const fields& f, const verdict& v, status s, const compressed_kv_cache& c,
                   const nvfp4_rows& main, const fp8_rows& indexer) {
  if (v.valid() && s != status::ok && !v.allows(s)) fail(entry, f, v, "a valid call was rejected", s);
  if (!v.valid() && s == status::ok) fail(entry, f, v, "an invalid call was accepted", s);
  if (!v.valid() && !v.allows(s)) fail(entry, f, v, "the rejection names no broken rule", s);
  if (s == status::ok && !is_cache_of(c, main, indexer)) fail(entry, f, v, "the cache is not the one described", s);
  if (s != status::ok && !same_cache(c, sentinel_cache())) fail(entry, f, v, "a failed create changed `out`", s);
}

enum create_rows_field { e_codes, e_scales, e_global, e_rows, e_d, e_ix_codes, e_ix_scales, e_ix_rows, e_ix_d,
                         e_fields };

// Variants: capacity 0..63, main_d 512 or 128, indexer_d 128 or 0.
void create_rows_baseline(fields& f, std::uint8_t variant) {
  const std::int64_t rows = variant >> 2;
  f.set(e_codes, "main.codes", slot(0), true);
  f.set(e_scales, "main.block_scales", slot(1), true);
  f.set(e_global, "main.global_scales", slot(2), true);
  f.set(e_rows, "main.rows", rows);
  f.set(e_d, "main.d", variant & 1 ? 128 : 512);
  f.set(e_ix_codes, "indexer.codes", slot(3), true);
  f.set(e_ix_scales, "indexer.scales", slot(4), true);
  f.set(e_ix_rows, "indexer.rows", rows);
  f.set(e_ix_d, "indexer.d", variant & 2 ? 0 : 128);
}

// The rules of create(main, indexer): widths and capacity as kv_cache_shape (indexer.d == 0: no
// indexer, its other fields ignored), the indexer's rows == main's, arrays that exist, non-null
// when they hold rows, 16-byte aligned, pairwise disjoint.
void run_create_rows(const fields& f, const char* entry) {
  const nvfp4_rows main{f.ptr<std::uint8_t>(e_codes), f.ptr<std::uint8_t>(e_scales), f.ptr<float>(e_global),
                        f.v[e_rows], f.v[e_d]};
  const fp8_rows indexer{f.ptr<std::uint8_t>(e_ix_codes), f.ptr<float>(e_ix_scales), f.v[e_ix_rows], f.v[e_ix_d]};
  const bool with_indexer = indexer.d != 0;
  verdict v;
  const layout_model shape = layout_of(main.rows, main.d, indexer.d);
  v.add_if(!shape.valid, status::invalid_argument);
  v.add_if(with_indexer && indexer.rows != main.rows, status::invalid_argument);
  if (shape.valid) {
    const i128 n = main.rows;
    range r[5];
    r[0] = array_rules(v, main.codes, n * (main.d / 2));
    r[1] = array_rules(v, main.block_scales, n * (main.d / 16));
    r[2] = array_rules(v, main.global_scales, n * 4);
    required(v, main.codes, n > 0);
    required(v, main.block_scales, n > 0);
    required(v, main.global_scales, n > 0);
    v.add_if(!aligned(main.codes, 16) || !aligned(main.block_scales, 16) || !aligned(main.global_scales, 16),
             status::misaligned);
    if (with_indexer && indexer.rows == main.rows) {
      r[3] = array_rules(v, indexer.codes, n * indexer.d);
      r[4] = array_rules(v, indexer.scales, n * 4);
      required(v, indexer.codes, n > 0);
      required(v, indexer.scales, n > 0);
      v.add_if(!aligned(indexer.codes, 16) || !aligned(indexer.scales, 16), status::misaligned);
    }
    v.add_if(!all_disjoint({r[0], r[1], r[2], r[3], r[4]}), status::aliasing);
  }
  compressed_kv_cache c = sentinel_cache();
  const status s = compressed_kv_cache::create(main, indexer, c);
  expect_create(entry, f, v, s, c, main, indexer);
}

enum create_layout_field { g_capacity, g_main_d, g_indexer_d, g_parts, g_total = g_parts + 10, g_base, g_bytes,
                           g_fields };

const char* const part_names[10] = {"main_codes.offset",         "main_codes.bytes",
                                    "main_block_scales.offset",  "main_block_scales.bytes",
                                    "main_global_scales.offset", "main_global_scales.bytes",
                                    "indexer_codes.offset",      "indexer_codes.bytes",
                                    "indexer_scales.offset",     "indexer_scales.bytes"};

// Variants: capacity 0..31, main_d 512 or 128, indexer_d 128 or 0, 256 spare bytes (bit 7).
void create_layout_baseline(fields& f, std::uint8_t variant) {
  const std::int64_t capacity = (variant >> 2) & 31, main_d = variant & 1 ? 128 : 512, indexer_d = variant & 2 ? 0 : 128;
  const layout_model e = layout_of(capacity, main_d, indexer_d);
  f.set(g_capacity, "layout.shape.capacity", capacity);
  f.set(g_main_d, "layout.shape.main_d", main_d);
  f.set(g_indexer_d, "layout.shape.indexer_d", indexer_d);
  for (int k = 0; k < 5; ++k) {
    f.set(g_parts + 2 * k, part_names[2 * k], static_cast<std::int64_t>(e.offset[k]));
    f.set(g_parts + 2 * k + 1, part_names[2 * k + 1], static_cast<std::int64_t>(e.bytes[k]));
  }
  f.set(g_total, "layout.total_bytes", static_cast<std::int64_t>(e.total));
  f.set(g_base, "base", slot(0), true);
  f.set(g_bytes, "bytes", static_cast<std::int64_t>(e.total) + (variant & 128 ? 256 : 0));
}

// The rules of create(base, bytes, layout): layout.shape valid and the layout the documented one
// for it, bytes >= its total, base non-null when the total is > 0 and 256-byte aligned, the arrays
// [base, base + total) exist. (Whether all of [base, base + bytes) must exist is left open.)
void run_create_layout(const fields& f, const char* entry) {
  kv_cache_layout l;
  l.shape = {f.v[g_capacity], f.v[g_main_d], f.v[g_indexer_d]};
  for (int k = 0; k < 5; ++k) part(l, k) = {f.v[g_parts + 2 * k], f.v[g_parts + 2 * k + 1]};
  l.total_bytes = f.v[g_total];
  void* base = f.ptr(g_base);
  const std::int64_t bytes = f.v[g_bytes];
  const layout_model e = layout_of(l.shape.capacity, l.shape.main_d, l.shape.indexer_d);
  verdict v;
  v.add_if(!e.valid || !layout_matches(l, e), status::invalid_argument);
  v.add_if(bytes < l.total_bytes, status::invalid_argument);
  required(v, base, l.total_bytes > 0);
  v.add_if(!aligned(base, 256), status::misaligned);
  array_rules(v, base, l.total_bytes > 0 ? l.total_bytes : 0);
  v.tolerate_if(bytes > max_array_bytes || address(base) + bytes >= address_space, status::invalid_argument);
  compressed_kv_cache c = sentinel_cache();
  const status s = compressed_kv_cache::create(base, bytes, l, c);
  // The cache it describes: the layout's arrays at base.
  const auto at = [&](int k) { return part_address(e, k, reinterpret_cast<std::uintptr_t>(base)); };
  const nvfp4_rows main{reinterpret_cast<std::uint8_t*>(at(0)), reinterpret_cast<std::uint8_t*>(at(1)),
                        reinterpret_cast<float*>(at(2)), l.shape.capacity, l.shape.main_d};
  const fp8_rows indexer{reinterpret_cast<std::uint8_t*>(at(3)), reinterpret_cast<float*>(at(4)),
                         l.shape.indexer_d > 0 ? l.shape.capacity : 0, l.shape.indexer_d};
  expect_create(entry, f, v, s, c, main, indexer);
}

// --- compressed_kv_cache::can_implement_append_prefill (compressed_kv_cache.hpp) ----------------------

enum cache_field { k_main_codes = c_fields, k_main_scales, k_main_global, k_capacity, k_main_d, k_ix_codes, k_ix_scales,
                   k_ix_d, k_ws, k_ws_size, k_mode, k_scale_mode, k_ix };  // k_ix: the indexer's compress_params
static_assert(k_ix + c_fields <= fields::capacity);

// Bytes of the workspace of a two-kernel append of n rows (compressed_kv_cache.hpp): the main KV's
// write-path workspace, then (indexer_d > 0) the indexer's at the next multiple of 256 bytes.
i128 cache_workspace_bytes(i128 n, std::int64_t main_d, std::int64_t indexer_d) {
  if (n <= 0) return 0;
  const i128 main = workspace_bytes(static_cast<std::int64_t>(n), main_d);
  if (indexer_d == 0) return main;
  return (main + 255) / 256 * 256 + workspace_bytes(static_cast<std::int64_t>(n), indexer_d);
}

// Variants: HCA (m = 128, no indexer) or CSA (m = 4, indexer keys 128 or 512 wide (bit 3) with the
// Hadamard rotation) by the entry; the rest as compress's; capacity n + 0..3 (bits 5-6);
// two_kernel mode (bit 2); FP8 scale mode pow2 (bit 3).
template <bool CSA>
void cache_baseline(fields& f, std::uint8_t variant) {
  const std::uint8_t main_variant = CSA ? variant & ~2 : variant | 2;
  compress_baseline(f, main_variant);
  f.set(c_out, "(unused)", 0, true);
  f.set(c_out_rows, "(unused)", 0);
  f.set(c_out_cols, "(unused)", 0);
  f.set(c_out_stride, "(unused)", 0);
  const std::int64_t tokens = f.v[c_kv_rows], m = f.v[c_ratio], d = f.v[c_out_cols], n = tokens / m;
  const std::int64_t main_d = main_variant & 1 ? 512 : 128, indexer_d = CSA ? (variant & 8 ? 512 : 128) : 0;
  (void)d;
  const bool two_kernel = variant & 4;
  f.set(k_main_codes, "cache.main.codes", slot(12), true);
  f.set(k_main_scales, "cache.main.block_scales", slot(13), true);
  f.set(k_main_global, "cache.main.global_scales", slot(14), true);
  f.set(k_capacity, "cache.capacity", n + ((variant >> 5) & 3));
  f.set(k_main_d, "cache.main.d", main_d);
  f.set(k_ix_codes, "cache.indexer.codes", CSA ? slot(15) : 0, true);
  f.set(k_ix_scales, "cache.indexer.scales", CSA ? slot(16) : 0, true);
  f.set(k_ix_d, "cache.indexer.d", indexer_d);
  f.set(k_ws, "workspace", two_kernel ? slot(11) : 0, true);
  f.set(k_ws_size, "workspace.size", two_kernel ? static_cast<std::int64_t>(cache_workspace_bytes(n, main_d, indexer_d)) : 0);
  f.set(k_mode, "mode", two_kernel ? static_cast<int>(write_path_mode::two_kernel) : 0);
  f.set(k_scale_mode, "indexer_scale", (variant >> 3) & 1);
  if (CSA) {
    compress_baseline_at(f, static_cast<std::uint8_t>((main_variant & ~1) | (indexer_d == 512 ? 1 : 0)), k_ix, 17,
                         indexer_names);
    f.v[k_ix + c_hadamard] = 1;
  }
}

// The rules of append_prefill (compressed_kv_cache.hpp) on a cache made by create(): the overload
// matches the layer; a valid mode; m in {4, 128} and T >= 0 for each stream, the same m and T for
// both; n = floor(T / m) <= free_rows(); two_kernel: a workspace of at least workspace_bytes(n)
// bytes that exist, non-null when needed, 16-byte aligned; every rule of the write path(s) into the
// rows [rows(), rows() + n) of the storage with the workspace split as documented; no input in the
// storage (any row of either stream) or in the workspace, the workspace not in the storage.
template <bool CSA, class IN, class BIAS>
void run_cache_append(const fields& f, const char* entry) {
  const nvfp4_rows main_storage{f.ptr<std::uint8_t>(k_main_codes), f.ptr<std::uint8_t>(k_main_scales),
                                f.ptr<float>(k_main_global), f.v[k_capacity], f.v[k_main_d]};
  const fp8_rows ix_storage{f.ptr<std::uint8_t>(k_ix_codes), f.ptr<float>(k_ix_scales), f.v[k_capacity], f.v[k_ix_d]};
  compressed_kv_cache cache;
  if (compressed_kv_cache::create(main_storage, ix_storage, cache) != status::ok) return;  // no such cache
  const bool has_indexer = ix_storage.d != 0;
  const compress_params<IN, BIAS> main = compress_args<IN, BIAS>(f), ix = compress_args<IN, BIAS>(f, k_ix);
  const auto mode = static_cast<write_path_mode>(f.i32(k_mode));
  const auto scale_mode = static_cast<fp8_scale_mode>(f.i32(k_scale_mode));
  const span<std::uint8_t> ws{f.ptr<std::uint8_t>(k_ws), f.v[k_ws_size]};
  const std::int64_t capacity = main_storage.rows, main_d = main_storage.d, ix_d = ix_storage.d;

  verdict v;
  v.add_if(CSA != has_indexer, status::invalid_argument);
  v.add_if(mode != write_path_mode::fused && mode != write_path_mode::two_kernel, status::invalid_argument);
  const auto rows_of = [&v](const compress_params<IN, BIAS>& p) -> i128 {
    const bool ratio_ok = p.ratio == 4 || p.ratio == 128;
    v.add_if(!ratio_ok, status::unsupported_shape);
    v.add_if(p.kv.rows < 0, status::invalid_argument);
    return ratio_ok && p.kv.rows >= 0 ? p.kv.rows / p.ratio : -1;
  };
  const i128 n = rows_of(main);
  if (CSA) {
    rows_of(ix);
    v.add_if(ix.ratio != main.ratio || ix.kv.rows != main.kv.rows, status::invalid_argument);
  }
  if (CSA == has_indexer && n >= 0) {
    v.add_if(n > capacity - cache.rows(), status::capacity_exceeded);
    const bool two_kernel = mode == write_path_mode::two_kernel;
    const i128 need = two_kernel ? cache_workspace_bytes(n, main_d, CSA ? ix_d : 0) : 0;
    if (two_kernel) {
      v.add_if(ws.size < 0 || ws.size < need, status::invalid_argument);
      required(v, ws.data, need > 0);
      v.add_if(!aligned(ws.data, 16), status::misaligned);
      array_rules(v, ws.data, need);  // the bytes the write paths use
      // The rest of a larger span is not used: whether it must exist is left open.
      v.tolerate_if(ws.size > max_array_bytes || address(ws.data) + ws.size >= address_space,
                    status::invalid_argument);
    }
    if (n <= capacity - cache.rows()) {
      const std::int64_t rows = static_cast<std::int64_t>(n);
      const nvfp4_rows main_out{main_storage.codes, main_storage.block_scales, main_storage.global_scales, rows,
                                main_d};  // rows() == 0: the first n rows
      const i128 offset = (workspace_bytes(rows, main_d) + 255) / 256 * 256;  // the indexer's part
      const span<std::uint8_t> ws_main =
          !two_kernel ? span<std::uint8_t>{} : CSA ? span<std::uint8_t>{ws.data, static_cast<std::int64_t>(offset)} : ws;
      const compress_reads rm = write_path_rules<true>(v, main, fp8_scale_mode::fp32, main_out, fp8_rows{}, ws_main, mode);
      compress_reads rx;
      if (CSA) {
        const fp8_rows ix_out{ix_storage.codes, ix_storage.scales, rows, ix_d};
        const span<std::uint8_t> ws_ix =
            two_kernel ? span<std::uint8_t>{reinterpret_cast<std::uint8_t*>(reinterpret_cast<std::uintptr_t>(ws.data) +
                                                                             static_cast<std::uintptr_t>(offset)),
                                            static_cast<std::int64_t>(need - offset)}
                       : span<std::uint8_t>{};
        rx = write_path_rules<false>(v, ix, scale_mode, nvfp4_rows{}, ix_out, ws_ix, mode);
      }
      const i128 cap = capacity;
      const range storage[5] = {{address(main_storage.codes), cap * (main_d / 2)},
                                {address(main_storage.block_scales), cap * (main_d / 16)},
                                {address(main_storage.global_scales), cap * 4},
                                {address(ix_storage.codes), ix_d > 0 ? cap * ix_d : 0},
                                {address(ix_storage.scales), ix_d > 0 ? cap * 4 : 0}};
      const range workspace{address(ws.data), need};
      const auto in_cache = [&](const range& r) {
        return any_overlap(r, {storage[0], storage[1], storage[2], storage[3], storage[4]});
      };
      bool alias = in_cache(workspace);
      for (const compress_reads* r : {&rm, static_cast<const compress_reads*>(&rx)}) {
        for (const range& in : {r->kv, r->gate, r->bias, r->norm, r->cos, r->sin, r->positions}) {
          alias = alias || in_cache(in) || overlap(in, workspace);
        }
      }
      v.add_if(alias, status::aliasing);
    }
  }
  if constexpr (CSA) {
    expect(entry, f, v, [&] { return cache.can_implement_append_prefill(main, ix, scale_mode, ws, mode); },
           [&] { return cache.append_prefill(main, ix, scale_mode, ws, no_stream, mode); });
  } else {
    expect(entry, f, v, [&] { return cache.can_implement_append_prefill(main, ws, mode); },
           [&] { return cache.append_prefill(main, ws, no_stream, mode); });
  }
  if (cache.rows() != 0) fail(entry, f, v, "a rejected append changed the row count", status::ok);
}

// --- the entry points -------------------------------------------------------------------------------

// An entry: a baseline and a run over mutated fields, or (custom) a run that decodes the rest of
// the input itself.
struct entry_point {
  const char* name;
  void (*baseline)(fields&, std::uint8_t variant);
  void (*run)(const fields&, const char* name);
  void (*custom)(fuzz_input&, const char* name) = nullptr;
};

template <class ROWS, class OUT, dequant_kind KIND>
void run_dequant_entry(const fields& f, const char* name) {
  run_dequant<ROWS, OUT>(f, name, KIND);
}
template <dequant_kind KIND>
void dequant_baseline_of(fields& f, std::uint8_t variant) {
  dequant_baseline(f, variant, KIND);
}
template <class ROWS, class OUT, dequant_kind KIND>
constexpr entry_point dequant_entry(const char* name) {
  return {name, dequant_baseline_of<KIND>, run_dequant_entry<ROWS, OUT, KIND>};
}

using bf16 = std::uint16_t;
const entry_point entry_points[] = {
    {"compress<float, float>", compress_baseline, run_compress<float, float>},
    {"compress<float, bf16>", compress_baseline, run_compress<float, bf16>},
    {"compress<bf16, float>", compress_baseline, run_compress<bf16, float>},
    {"compress<bf16, bf16>", compress_baseline, run_compress<bf16, bf16>},
    {"rope", rope_baseline, run_rope},
    {"hadamard_rotate", hadamard_baseline, run_hadamard},
    {"quantize_nvfp4", quantize_baseline, run_quantize_nvfp4},
    {"quantize_fp8", quantize_baseline, run_quantize_fp8},
    dequant_entry<const_nvfp4_rows, bf16, dequant_kind::all>("dequant_nvfp4 -> bf16"),
    dequant_entry<const_nvfp4_rows, float, dequant_kind::all>("dequant_nvfp4 -> float"),
    dequant_entry<const_fp8_rows, bf16, dequant_kind::all>("dequant_fp8 -> bf16"),
    dequant_entry<const_fp8_rows, float, dequant_kind::all>("dequant_fp8 -> float"),
    dequant_entry<const_nvfp4_rows, bf16, dequant_kind::selected>("dequant_nvfp4_selected -> bf16"),
    dequant_entry<const_nvfp4_rows, float, dequant_kind::selected>("dequant_nvfp4_selected -> float"),
    dequant_entry<const_fp8_rows, bf16, dequant_kind::selected>("dequant_fp8_selected -> bf16"),
    dequant_entry<const_fp8_rows, float, dequant_kind::selected>("dequant_fp8_selected -> float"),
    dequant_entry<const_nvfp4_rows, bf16, dequant_kind::batched>("dequant_nvfp4_selected_batched -> bf16"),
    dequant_entry<const_nvfp4_rows, float, dequant_kind::batched>("dequant_nvfp4_selected_batched -> float"),
    dequant_entry<const_fp8_rows, bf16, dequant_kind::batched>("dequant_fp8_selected_batched -> bf16"),
    dequant_entry<const_fp8_rows, float, dequant_kind::batched>("dequant_fp8_selected_batched -> float"),
    {"write_path_nvfp4<float, float>", write_path_baseline, run_write_path<true, float, float>},
    {"write_path_nvfp4<float, bf16>", write_path_baseline, run_write_path<true, float, bf16>},
    {"write_path_nvfp4<bf16, float>", write_path_baseline, run_write_path<true, bf16, float>},
    {"write_path_nvfp4<bf16, bf16>", write_path_baseline, run_write_path<true, bf16, bf16>},
    {"write_path_fp8<float, float>", write_path_baseline, run_write_path<false, float, float>},
    {"write_path_fp8<float, bf16>", write_path_baseline, run_write_path<false, float, bf16>},
    {"write_path_fp8<bf16, float>", write_path_baseline, run_write_path<false, bf16, float>},
    {"write_path_fp8<bf16, bf16>", write_path_baseline, run_write_path<false, bf16, bf16>},
    // New entries go last. byte 0 % entry_count picks the entry, so adding entries moves the inputs
    // whose byte 0 >= the old count: first rewrite the corpus's byte 0 to byte 0 % old count (and
    // rename each file to its SHA-1), as was done when the entries below were added to the 28 above.
    {"append_nvfp4<float, float>", append_baseline, run_append<true, float, float>},
    {"append_nvfp4<float, bf16>", append_baseline, run_append<true, float, bf16>},
    {"append_nvfp4<bf16, float>", append_baseline, run_append<true, bf16, float>},
    {"append_nvfp4<bf16, bf16>", append_baseline, run_append<true, bf16, bf16>},
    {"append_fp8<float, float>", append_baseline, run_append<false, float, float>},
    {"append_fp8<float, bf16>", append_baseline, run_append<false, float, bf16>},
    {"append_fp8<bf16, float>", append_baseline, run_append<false, bf16, float>},
    {"append_fp8<bf16, bf16>", append_baseline, run_append<false, bf16, bf16>},
    {"reset_append_state", reset_baseline, run_reset},
    {"validate_append_metadata", nullptr, nullptr, run_metadata},
    {"kv_cache_layout", layout_baseline, run_layout},
    {"compressed_kv_cache::create(rows)", create_rows_baseline, run_create_rows},
    {"compressed_kv_cache::create(layout)", create_layout_baseline, run_create_layout},
    {"compressed_kv_cache::append_prefill<float, float> (HCA)", cache_baseline<false>, run_cache_append<false, float, float>},
    {"compressed_kv_cache::append_prefill<float, bf16> (HCA)", cache_baseline<false>, run_cache_append<false, float, bf16>},
    {"compressed_kv_cache::append_prefill<bf16, float> (HCA)", cache_baseline<false>, run_cache_append<false, bf16, float>},
    {"compressed_kv_cache::append_prefill<bf16, bf16> (HCA)", cache_baseline<false>, run_cache_append<false, bf16, bf16>},
    {"compressed_kv_cache::append_prefill<float, float> (CSA)", cache_baseline<true>, run_cache_append<true, float, float>},
    {"compressed_kv_cache::append_prefill<float, bf16> (CSA)", cache_baseline<true>, run_cache_append<true, float, bf16>},
    {"compressed_kv_cache::append_prefill<bf16, float> (CSA)", cache_baseline<true>, run_cache_append<true, bf16, float>},
    {"compressed_kv_cache::append_prefill<bf16, bf16> (CSA)", cache_baseline<true>, run_cache_append<true, bf16, bf16>},
};
constexpr int entry_count = static_cast<int>(std::size(entry_points));

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz_input in(data, size);
  const entry_point& e = entry_points[in.u8() % entry_count];
  if (e.custom != nullptr) {
    e.custom(in, e.name);
    return 0;
  }
  fields f;
  e.baseline(f, in.u8());
  for (int mutations = 0; mutations < 16 && !in.empty(); ++mutations) mutate(f, in);
  // DSV4KV_FUZZ_PRINT=1: print every call before it runs (triage of a reproducer that crashes
  // inside the library, before the target could print it).
  static const bool print = std::getenv("DSV4KV_FUZZ_PRINT") != nullptr;
  if (print) {
    std::fprintf(stderr, "fuzz_validation: %s\n", e.name);
    print_fields(f);
  }
  e.run(f, e.name);
  return 0;
}
