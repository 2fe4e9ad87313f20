// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the validation of every host API entry of the GPU library, on the CPU.
//
// Each input is one call: byte 0 picks the entry point, byte 1 a valid baseline call of it (shape,
// optional arguments), and every further pair (field, mutation bytes) changes one argument: a size
// or stride to a boundary value, a delta or raw bits; a pointer to null, a misaligned, shifted or
// wrapping address, or next to / inside another argument's array. Pointers are fake addresses in
// an arena that is never mapped (ASan's shadow gap): validation must decide without reading them.
//
// Asserted for every input (a failure prints the call and aborts):
//   1. no crash and no sanitizer finding (ASan; UBSan: no overflow in any size computation);
//   2. can_implement_<entry> returns ok exactly when the predicate below finds no broken rule;
//   3. a rejection names a rule the call breaks: its status is in the predicate's set;
//   4. when can_implement_<entry> rejects, the entry itself returns the same status (one
//      validation per entry; it is only called then, so nothing is ever launched).
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

#include "dsv4kv/compress.hpp"
#include "dsv4kv/dequant.hpp"
#include "dsv4kv/hadamard.hpp"
#include "dsv4kv/quantize_fp8.hpp"
#include "dsv4kv/quantize_nvfp4.hpp"
#include "dsv4kv/rope.hpp"
#include "dsv4kv/status.hpp"
#include "dsv4kv/write_path.hpp"

namespace {

using namespace dsv4kv;
using i128 = __int128;
using u128 = unsigned __int128;

// --- input bytes --------------------------------------------------------------------------------

class fuzz_input {
 public:
  fuzz_input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint64_t bytes(int n) {  // n little-endian bytes
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(u8()) << (8 * i);
    return v;
  }
  std::int64_t i8() { return static_cast<std::int8_t>(u8()); }
  std::int64_t i16() { return static_cast<std::int16_t>(bytes(2)); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// --- the fake address space ---------------------------------------------------------------------

// Arrays of a baseline call live in 16 MiB slots from 2^40 (inside ASan's never-mapped shadow gap
// on x86-64, and unmapped in any ordinary process), far apart, so baselines do not alias.
constexpr std::uint64_t arena = std::uint64_t{1} << 40;
constexpr std::uint64_t slot_bytes = std::uint64_t{1} << 24;
constexpr std::int64_t slot(int k) { return static_cast<std::int64_t>(arena + k * slot_bytes); }

// --- the arguments of one call, as mutable 64-bit fields ------------------------------------------

struct fields {
  static constexpr int capacity = 40;
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
  unsigned bits = 0;
  void add(status s) { bits |= 1u << static_cast<int>(s); }
  void add_if(bool broken, status s) {
    if (broken) add(s);
  }
  bool valid() const { return bits == 0; }
  bool allows(status s) const { return (bits >> static_cast<int>(s)) & 1u; }
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

[[noreturn]] void fail(const char* entry, const fields& f, const verdict& v, const char* what, status got) {
  std::fprintf(stderr, "fuzz_validation: %s: %s (got %s; the predicate allows:", entry, what, status_name(got));
  if (v.valid()) std::fprintf(stderr, " ok");
  for (int s = 1; s < status_count; ++s) {
    if (v.allows(static_cast<status>(s))) std::fprintf(stderr, " %s", status_name(static_cast<status>(s)));
  }
  std::fprintf(stderr, ")\n");
  for (int i = 0; i < f.count; ++i) {
    std::fprintf(stderr, "  %-16s = %lld (0x%llx)\n", f.names[i], static_cast<long long>(f.v[i]),
                 static_cast<unsigned long long>(f.v[i]));
  }
  std::abort();
}

// Asserts 2-4 for one call: `check` is can_implement_<entry>, `call` the entry (run only when
// `check` rejects).
template <class CHECK, class CALL>
void expect(const char* entry, const fields& f, const verdict& v, CHECK&& check, CALL&& call) {
  const status s = check();
  if (v.valid() && s != status::ok) fail(entry, f, v, "a valid call was rejected", s);
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

// Variants: (m, d) in {(4,128), (4,512), (128,128), (128,512)}, T = 3m + 0..2 tokens, with or
// without RoPE / positions / norm weight / position bias.
void compress_baseline(fields& f, std::uint8_t variant) {
  const int m = variant & 2 ? 128 : 4;
  const std::int64_t d = variant & 1 ? 512 : 128;
  const std::int64_t width = (m == 4 ? 2 : 1) * d;
  const std::int64_t tokens = 3 * m + (variant >> 2) % 3;
  const bool rope = !(variant & 16), positions = variant & 32, norm = !(variant & 64), bias = !(variant & 128);
  f.set(c_ratio, "ratio", m);
  f.set(c_kv, "kv", slot(0), true);
  f.set(c_kv_rows, "kv.rows", tokens);
  f.set(c_kv_cols, "kv.cols", width);
  f.set(c_kv_stride, "kv.row_stride", width + (variant & 8 ? 4 : 0));
  f.set(c_gate, "gate", slot(1), true);
  f.set(c_gate_rows, "gate.rows", tokens);
  f.set(c_gate_cols, "gate.cols", width);
  f.set(c_gate_stride, "gate.row_stride", width);
  f.set(c_bias, "position_bias", bias ? slot(2) : 0, true);
  f.set(c_norm, "norm_weight", norm ? slot(3) : 0, true);
  f.set(c_eps, "eps", float_field(1e-6f));
  f.set(c_cos, "rope.cos", rope ? slot(4) : 0, true);
  f.set(c_sin, "rope.sin", rope ? slot(5) : 0, true);
  f.set(c_max_pos, "rope.max_pos", rope ? 4 * tokens : 0);
  f.set(c_rope_dim, "rope.rope_dim", rope ? 64 : 0);
  f.set(c_start, "start_position", 0);
  f.set(c_positions, "positions", positions ? slot(6) : 0, true);
  f.set(c_hadamard, "hadamard", variant & 4);
  f.set(c_out, "out", slot(7), true);
  f.set(c_out_rows, "out.rows", tokens / m);
  f.set(c_out_cols, "out.cols", d);
  f.set(c_out_stride, "out.row_stride", d);
}

template <class IN, class BIAS>
compress_params<IN, BIAS> compress_args(const fields& f) {
  compress_params<IN, BIAS> p;
  p.ratio = f.i32(c_ratio);
  p.kv = {f.ptr<const IN>(c_kv), f.v[c_kv_rows], f.v[c_kv_cols], f.v[c_kv_stride]};
  p.gate = {f.ptr<const IN>(c_gate), f.v[c_gate_rows], f.v[c_gate_cols], f.v[c_gate_stride]};
  p.position_bias = f.ptr<const BIAS>(c_bias);
  p.norm_weight = f.ptr<const float>(c_norm);
  p.eps = f.f32(c_eps);
  p.rope = {f.ptr<const float>(c_cos), f.ptr<const float>(c_sin), f.v[c_max_pos], f.i32(c_rope_dim)};
  p.start_position = f.v[c_start];
  p.positions = f.ptr<const std::int32_t>(c_positions);
  p.hadamard = f.v[c_hadamard] & 1;
  return p;
}

// The documented rules of compress (compress.hpp); `out_rules` false when the caller (the write
// path) states the output's own rules. Returns the ranges compress reads.
struct compress_reads {
  range kv, gate, bias, norm, cos, sin, positions;
};
template <class IN, class BIAS>
compress_reads compress_rules(verdict& v, const compress_params<IN, BIAS>& p, const tensor_view<float>& out) {
  compress_reads r;
  r.kv = view_rules(v, p.kv);
  r.gate = view_rules(v, p.gate);
  const std::int64_t d = out.cols;
  const int m = p.ratio;
  const bool supported = (m == 4 || m == 128) && (d == 128 || d == 512);
  v.add_if(!supported, status::unsupported_shape);
  const i128 width = i128{m == 4 ? 2 : 1} * d;
  const std::int64_t tokens = p.kv.rows;
  const i128 n = tokens >= 0 && m > 0 ? tokens / m : -1;
  if (supported) {
    v.add_if(p.kv.cols != width || p.gate.rows != tokens || p.gate.cols != width || out.rows != n,
             status::invalid_argument);
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
    if (p.positions == nullptr) {
      v.add_if(p.start_position < 0, status::invalid_argument);
      v.add_if(n > 0 && i128{p.start_position} + (n - 1) * m >= p.rope.max_pos, status::invalid_argument);
    }
  }
  if (supported) {
    r.bias = array_rules(v, p.position_bias, p.position_bias ? i128{m} * width * sizeof(BIAS) : 0);
    r.norm = array_rules(v, p.norm_weight, p.norm_weight ? i128{d} * 4 : 0);
    r.positions = array_rules(v, p.positions, rope && p.positions && n > 0 ? n * 4 : 0);
  }
  r.cos = array_rules(v, p.rope.cos, table_bytes);
  r.sin = array_rules(v, p.rope.sin, table_bytes);
  // Alignment: kv / gate 4 elements and row stride % 4, bias 4 elements, norm weight 16 bytes, out
  // 16 bytes and row stride % 4, RoPE tables 8 bytes, positions 4 bytes.
  v.add_if(!aligned(p.kv.data, 4 * sizeof(IN)) || p.kv.row_stride % 4 != 0 || !aligned(p.gate.data, 4 * sizeof(IN)) ||
               p.gate.row_stride % 4 != 0 || !aligned(p.position_bias, 4 * sizeof(BIAS)) ||
               !aligned(p.norm_weight, 16) || !aligned(out.data, 16) || out.row_stride % 4 != 0,
           status::misaligned);
  if (rope) {
    v.add_if(!aligned(p.rope.cos, 8) || !aligned(p.rope.sin, 8) || !aligned(p.positions, 4), status::misaligned);
  }
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

template <bool NVFP4, class IN, class BIAS>
void run_write_path(const fields& f, const char* entry) {
  const compress_params<IN, BIAS> p = compress_args<IN, BIAS>(f);
  const auto mode = static_cast<write_path_mode>(f.i32(w_mode));
  const auto scale_mode = static_cast<fp8_scale_mode>(f.i32(w_scale_mode));
  const span<std::uint8_t> ws{f.ptr<std::uint8_t>(w_workspace), f.v[w_workspace_size]};
  const nvfp4_rows out4{f.ptr<std::uint8_t>(w_codes), f.ptr<std::uint8_t>(w_scales), f.ptr<float>(w_global),
                        f.v[w_rows], f.v[w_d]};
  const fp8_rows out8{f.ptr<std::uint8_t>(w_codes), f.ptr<float>(w_global), f.v[w_rows], f.v[w_d]};
  const std::int64_t n = f.v[w_rows], d = f.v[w_d];
  verdict v;
  range o[3];  // the output arrays
  if constexpr (NVFP4) {
    const nvfp4_writes w = nvfp4_output_rules(v, out4);
    o[0] = w.codes, o[1] = w.block_scales, o[2] = w.global_scales;
  } else {
    const fp8_writes w = fp8_output_rules(v, scale_mode, out8);
    o[0] = w.codes, o[1] = w.scales;
  }
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
  if constexpr (NVFP4) {
    expect(entry, f, v, [&] { return can_implement_write_path_nvfp4(p, out4, ws, mode); },
           [&] { return write_path_nvfp4(p, out4, ws, no_stream, mode); });
  } else {
    expect(entry, f, v, [&] { return can_implement_write_path_fp8(p, scale_mode, out8, ws, mode); },
           [&] { return write_path_fp8(p, scale_mode, out8, ws, no_stream, mode); });
  }
}

// --- the entry points -------------------------------------------------------------------------------

struct entry_point {
  const char* name;
  void (*baseline)(fields&, std::uint8_t variant);
  void (*run)(const fields&, const char* name);
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
};
constexpr int entry_count = static_cast<int>(std::size(entry_points));

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz_input in(data, size);
  const entry_point& e = entry_points[in.u8() % entry_count];
  fields f;
  e.baseline(f, in.u8());
  for (int mutations = 0; mutations < 16 && !in.empty(); ++mutations) mutate(f, in);
  e.run(f, e.name);
  return 0;
}
