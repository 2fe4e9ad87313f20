// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the host reference's NVFP4 and FP8-E4M3 row codecs (ref/nvfp4_codec.hpp,
// ref/fp8_codec.hpp) against a slow oracle written from SPEC §5-6 alone.
//
// Each input is one case: byte 0 picks the codec (NVFP4, FP8 fp32 scale, FP8 pow2 scale), byte 1
// the shape ([rows, d], NVFP4 d a multiple of 16, FP8 any d >= 0), then either float rows for the
// encoder (arbitrary bits, special values, or values on a fine grid of a per-row binade so that
// rounding ties occur) or arbitrary stored bytes for the decoders (codes, scales, FP32 scales with
// any bits: NaN, Inf, negative, subnormal) and an index list with -1 and out-of-range entries.
//
// Asserted for every input (a failure prints the case and aborts):
//   encode: every code byte, block scale byte and row scale equals the oracle's (a NaN row scale
//           only has to be a NaN: SPEC §5-6 name no payload);
//   decode: every FP32 value (bits, or NaN for NaN), every BF16 value (bits, or a BF16 NaN) of
//           decode_*, decode_*_bf16 and decode_*_selected_bf16 equals the oracle's, and selected
//           rows of -1 or out of range are +0.
// The oracle shares no code with the library (formats/*_encoding.hpp, numerics/*.hpp): element
// formats are enumerated from their definitions and rounded by exact comparison, and each FP32
// operation of the SPEC is computed exactly in long double and rounded once to float.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <vector>

#include "dsv4kv/ref/fp8_codec.hpp"
#include "dsv4kv/ref/nvfp4_codec.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace dsv4kv;

using dsv4kv::fuzz::fuzz_input;

float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
std::uint32_t to_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// --- the oracle: element formats from their definitions ----------------------------------------------

using real = long double;  // 64-bit significand: products of two floats are exact
static_assert(std::numeric_limits<real>::digits >= 50, "the oracle needs at least 2*24+2 significand bits");

// FP32 operations of the SPEC: exact (product) or correctly rounded to 64 bits (quotient), then
// rounded once to float. 64 >= 2*24 + 2, so the double rounding of a quotient is innocuous.
float mul(float a, float b) { return static_cast<float>(static_cast<real>(a) * static_cast<real>(b)); }
float div(float a, float b) { return static_cast<float>(static_cast<real>(a) / static_cast<real>(b)); }
float min_flt_max(float a) { return a < FLT_MAX ? a : FLT_MAX; }

// OCP E4M3FN: sign (bit 7), 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 is subnormal
// (m/8 * 2^-6); S.1111.111 is NaN; no infinities. Largest finite magnitude 448 (code 0x7E).
real e4m3_value(std::uint8_t code) {
  const int e = (code >> 3) & 0xF, m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<real>::quiet_NaN();
  const real mag = e == 0 ? std::ldexp(static_cast<real>(m), -9) : std::ldexp(static_cast<real>(8 + m), e - 10);
  return (code & 0x80) ? -mag : mag;
}
// E2M1: sign (bit 3), 2 exponent bits (bias 1), 1 mantissa bit: {0, 0.5, 1, 1.5, 2, 3, 4, 6}.
real e2m1_value(std::uint8_t code) {
  const int e = (code >> 1) & 3, m = code & 1;
  const real mag = e == 0 ? m * 0.5L : std::ldexp(static_cast<real>(2 + m), e - 2);
  return (code & 8) ? -mag : mag;
}

// Round-to-nearest-even onto the non-negative codes 0..top (values increasing with the code),
// saturating at top; the sign bit `sign_bit` is kept (also for results that round to zero).
template <class VALUE>
std::uint8_t round_to_code(real x, int top, std::uint8_t sign_bit, VALUE value) {
  const std::uint8_t sign = std::signbit(x) ? sign_bit : 0;
  const real a = std::fabs(x);
  if (a >= value(top)) return static_cast<std::uint8_t>(sign | top);  // satfinite (Inf included)
  int lo = 0;
  while (lo + 1 <= top && value(lo + 1) <= a) ++lo;  // largest code with value <= a
  const real below = a - value(lo), above = value(lo + 1) - a;
  const int code = below < above ? lo : (above < below ? lo + 1 : (lo % 2 == 0 ? lo : lo + 1));
  return static_cast<std::uint8_t>(sign | code);
}
std::uint8_t e4m3_rn_satfinite(float x) {
  return round_to_code(x, 0x7E, 0x80, [](int c) { return e4m3_value(static_cast<std::uint8_t>(c)); });
}
std::uint8_t e2m1_rn_satfinite(float x) {
  return round_to_code(x, 7, 8, [](int c) { return e2m1_value(static_cast<std::uint8_t>(c)); });
}

// BF16 round to nearest even (8 significand bits, float's exponent range): the quantum of x's
// binade (2^-133 at the bottom, the BF16 subnormal step), exact division and rint in long double.
std::uint16_t bf16_rn(float x) {
  if (std::isnan(x)) return 0x7FC0;
  if (std::isinf(x)) return std::signbit(x) ? 0xFF80 : 0x7F80;
  int e = 0;
  std::frexp(static_cast<real>(x), &e);  // |x| = f * 2^e, f in [0.5, 1)
  const real quantum = std::ldexp(1.0L, e - 8 > -133 ? e - 8 : -133);
  const real r = std::nearbyint(static_cast<real>(x) / quantum) * quantum;  // ties to even
  const real bf16_max = std::ldexp(static_cast<real>(0xFF), 120);           // (2 - 2^-7) * 2^127
  const float rounded = std::fabs(r) > bf16_max ? std::copysign(std::numeric_limits<float>::infinity(), x)
                                                : static_cast<float>(r);  // exact: r has 8 bits
  return static_cast<std::uint16_t>(to_bits(rounded) >> 16);
}
bool bf16_is_nan(std::uint16_t b) { return (b & 0x7F80) == 0x7F80 && (b & 0x7F) != 0; }

// --- the oracle: SPEC §5 (NVFP4) and §6 (FP8) ---------------------------------------------------------

struct nvfp4_row {
  std::vector<std::uint8_t> codes, scales;  // [d/2], [d/16]
  float g = 0;
};

nvfp4_row nvfp4_encode_oracle(const float* x, int d) {
  nvfp4_row r;
  r.codes.assign(d / 2, 0);
  r.scales.assign(d / 16, 0);
  real amax = 0;
  bool finite = true;
  for (int k = 0; k < d; ++k) {
    finite = finite && std::isfinite(x[k]);
    amax = std::fmax(amax, std::fabs(static_cast<real>(x[k])));
  }
  if (!finite) {  // step 2
    r.g = std::numeric_limits<float>::quiet_NaN();
    return r;
  }
  const float amax_f = static_cast<float>(amax);  // exact: a float's magnitude
  const float s_enc = amax_f == 0 ? 1.0f : min_flt_max(div(448.0f * 6.0f, amax_f));  // step 3
  r.g = div(1.0f, s_enc);
  const float one_sixth = static_cast<float>(1.0L / 6.0L);  // nearest float to 1/6 (1/6 is no tie)
  for (int b = 0; b < d / 16; ++b) {
    real vmax = 0;
    for (int k = 0; k < 16; ++k) vmax = std::fmax(vmax, std::fabs(static_cast<real>(x[16 * b + k])));
    const std::uint8_t sf = e4m3_rn_satfinite(mul(static_cast<float>(vmax), mul(s_enc, one_sixth)));  // step 4
    r.scales[b] = sf;
    const float m = sf == 0 ? 0.0f : min_flt_max(div(1.0f, mul(static_cast<float>(e4m3_value(sf)), r.g)));  // 5
    for (int k = 0; k < 16; k += 2) {  // step 6, element 2k in the low nibble
      const std::uint8_t lo = e2m1_rn_satfinite(mul(x[16 * b + k], m));
      const std::uint8_t hi = e2m1_rn_satfinite(mul(x[16 * b + k + 1], m));
      r.codes[(16 * b + k) / 2] = static_cast<std::uint8_t>(lo | (hi << 4));
    }
  }
  return r;
}

float nvfp4_decode_oracle(std::uint8_t code, std::uint8_t sf, float g) {
  return mul(mul(static_cast<float>(e2m1_value(code)), static_cast<float>(e4m3_value(sf))), g);
}

struct fp8_row {
  std::vector<std::uint8_t> codes;  // [d]
  float s = 0;
};

// s = 2^ceil(log2(amax / 448)), the smallest power of two with 448 * s >= amax (exact real
// comparison), at least 2^-149 so that s is a non-zero float (fp8_encoding.hpp documents the floor).
float pow2_scale_oracle(float amax) {
  int k = -160;
  while (std::ldexp(448.0L, k) < static_cast<real>(amax)) ++k;
  return static_cast<float>(std::ldexp(1.0L, k > -149 ? k : -149));
}

fp8_row fp8_encode_oracle(const float* x, int d, fp8_scale_mode mode) {
  fp8_row r;
  r.codes.assign(d, 0);
  real amax = 0;
  bool finite = true;
  for (int k = 0; k < d; ++k) {
    finite = finite && std::isfinite(x[k]);
    amax = std::fmax(amax, std::fabs(static_cast<real>(x[k])));
  }
  if (!finite) {
    r.s = std::numeric_limits<float>::quiet_NaN();
    return r;
  }
  const float amax_f = static_cast<float>(amax);
  if (amax_f == 0) return r;  // s = 0, codes 0
  if (mode == fp8_scale_mode::fp32) {
    // s = amax / 448; q = e4m3(x * (448 / amax)), the factor clamped to FLT_MAX as in SPEC §5 step
    // 3 (it only acts for amax < 448 / FLT_MAX, where it would be +Inf).
    r.s = div(amax_f, 448.0f);
    const float enc = min_flt_max(div(448.0f, amax_f));
    for (int k = 0; k < d; ++k) r.codes[k] = e4m3_rn_satfinite(mul(x[k], enc));
  } else {
    r.s = pow2_scale_oracle(amax_f);
    for (int k = 0; k < d; ++k) r.codes[k] = e4m3_rn_satfinite(div(x[k], r.s));
  }
  return r;
}

float fp8_decode_oracle(std::uint8_t q, float s) { return mul(static_cast<float>(e4m3_value(q)), s); }

// --- comparisons --------------------------------------------------------------------------------------

[[noreturn]] void fail(const char* what, std::int64_t row, std::int64_t k, double got, double want,
                       std::uint32_t got_bits, std::uint32_t want_bits) {
  std::fprintf(stderr, "fuzz_codecs: %s: row %lld, element %lld: got %.9g (0x%08x), oracle %.9g (0x%08x)\n", what,
               static_cast<long long>(row), static_cast<long long>(k), got, got_bits, want, want_bits);
  std::abort();
}
void same_float(const char* what, std::int64_t row, std::int64_t k, float got, float want) {
  if (std::isnan(want) ? std::isnan(got) : to_bits(got) == to_bits(want)) return;
  fail(what, row, k, got, want, to_bits(got), to_bits(want));
}
void same_bf16(const char* what, std::int64_t row, std::int64_t k, std::uint16_t got, std::uint16_t want) {
  if (bf16_is_nan(want) ? bf16_is_nan(got) : got == want) return;
  fail(what, row, k, from_bits(std::uint32_t{got} << 16), from_bits(std::uint32_t{want} << 16), got, want);
}
void same_byte(const char* what, std::int64_t row, std::int64_t k, std::uint8_t got, std::uint8_t want) {
  if (got != want) fail(what, row, k, got, want, got, want);
}
void ok(const char* what, status s) {
  if (s != status::ok) {
    std::fprintf(stderr, "fuzz_codecs: %s returned %s\n", what, status_string(s));
    std::abort();
  }
}

// --- input -> rows ------------------------------------------------------------------------------------

const float special_floats[] = {0.0f, -0.0f, 1.0f, -1.0f, 6.0f, 448.0f, 2688.0f, 0.25f, 0.75f, 1.25f, 5.0f,
                                FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN(), 1e-40f, 3.0e-39f, 1e30f};

// One element of an encoder row: raw bits, a special value, or k/8 * 2^binade for a small integer k
// (values on a fine grid of the row's binade, where E2M1 / E4M3 rounding ties happen).
float element(fuzz_input& in, int binade) {
  const std::uint8_t sel = in.u8();
  switch (sel % 4) {
    case 0: return from_bits(in.u32());
    case 1: return special_floats[in.u8() % std::size(special_floats)];
    default: return static_cast<float>(std::ldexp(static_cast<real>(static_cast<std::int8_t>(in.u8())), binade - 3));
  }
}

std::vector<float> encoder_rows(fuzz_input& in, std::int64_t rows, std::int64_t d) {
  std::vector<float> x(static_cast<std::size_t>(rows * d));
  for (std::int64_t r = 0; r < rows; ++r) {
    const int binade = static_cast<std::int8_t>(in.u8()) / 2;  // 2^-64 .. 2^63
    for (std::int64_t k = 0; k < d; ++k) x[r * d + k] = element(in, binade);
  }
  return x;
}

std::vector<std::int32_t> index_list(fuzz_input& in, std::int64_t rows) {
  std::vector<std::int32_t> idx(in.u8() % 9);
  for (std::int32_t& i : idx) {
    const std::uint8_t b = in.u8();
    i = b % 8 == 7 ? static_cast<std::int32_t>(in.u32()) : static_cast<std::int32_t>(b % (rows + 2)) - 1;  // -1..rows
  }
  return idx;
}

// --- NVFP4 ---------------------------------------------------------------------------------------------

void check_nvfp4_encode(fuzz_input& in, std::int64_t rows, std::int64_t d) {
  const std::vector<float> x = encoder_rows(in, rows, d);  // [rows, d]
  std::vector<std::uint8_t> codes(rows * d / 2, 0xAA), scales(rows * d / 16, 0xAA);
  std::vector<float> g(rows, -1.0f);
  ok("ref::encode_nvfp4", ref::encode_nvfp4(make_tensor_view(x.data(), rows, d),
                                             nvfp4_rows{codes.data(), scales.data(), g.data(), rows, d}));
  for (std::int64_t r = 0; r < rows; ++r) {
    const nvfp4_row want = nvfp4_encode_oracle(x.data() + r * d, static_cast<int>(d));
    same_float("NVFP4 global scale g", r, -1, g[r], want.g);
    for (std::int64_t b = 0; b < d / 16; ++b) {
      same_byte("NVFP4 block scale", r, b, scales[r * d / 16 + b], want.scales[b]);
    }
    for (std::int64_t k = 0; k < d / 2; ++k) same_byte("NVFP4 code byte", r, k, codes[r * d / 2 + k], want.codes[k]);
  }
}

void check_nvfp4_decode(fuzz_input& in, std::int64_t rows, std::int64_t d) {
  std::vector<std::uint8_t> codes(rows * d / 2), scales(rows * d / 16);
  std::vector<float> g(rows);
  for (std::uint8_t& c : codes) c = in.u8();
  for (std::uint8_t& s : scales) s = in.u8();
  for (float& v : g) v = from_bits(in.u32());
  const const_nvfp4_rows stored{codes.data(), scales.data(), g.data(), rows, d};
  auto want = [&](std::int64_t r, std::int64_t k) {
    const std::uint8_t byte = codes[r * d / 2 + k / 2];
    return nvfp4_decode_oracle(k % 2 == 0 ? byte & 0xF : byte >> 4, scales[r * d / 16 + k / 16], g[r]);
  };
  std::vector<float> f32(rows * d);
  std::vector<std::uint16_t> b16(rows * d);
  ok("ref::decode_nvfp4", ref::decode_nvfp4(stored, make_tensor_view(f32.data(), rows, d)));
  ok("ref::decode_nvfp4_bf16", ref::decode_nvfp4_bf16(stored, make_tensor_view(b16.data(), rows, d)));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t k = 0; k < d; ++k) {
      same_float("NVFP4 decode (FP32)", r, k, f32[r * d + k], want(r, k));
      same_bf16("NVFP4 decode (BF16)", r, k, b16[r * d + k], bf16_rn(want(r, k)));
    }
  }
  const std::vector<std::int32_t> idx = index_list(in, rows);
  const auto k_rows = static_cast<std::int64_t>(idx.size());
  std::vector<std::uint16_t> sel(k_rows * d, 0xAAAA);
  ok("ref::decode_nvfp4_selected_bf16",
     ref::decode_nvfp4_selected_bf16(stored, {idx.data(), k_rows}, make_tensor_view(sel.data(), k_rows, d)));
  for (std::int64_t i = 0; i < k_rows; ++i) {
    const bool in_range = idx[i] >= 0 && idx[i] < rows;
    for (std::int64_t k = 0; k < d; ++k) {
      same_bf16("NVFP4 selected decode (BF16)", i, k, sel[i * d + k], in_range ? bf16_rn(want(idx[i], k)) : 0);
    }
  }
}

// --- FP8 ------------------------------------------------------------------------------------------------

void check_fp8_encode(fuzz_input& in, std::int64_t rows, std::int64_t d, fp8_scale_mode mode) {
  const std::vector<float> x = encoder_rows(in, rows, d);  // [rows, d]
  std::vector<std::uint8_t> codes(rows * d, 0xAA);
  std::vector<float> s(rows, -1.0f);
  ok("ref::encode_fp8", ref::encode_fp8(make_tensor_view(x.data(), rows, d), mode,
                                         fp8_rows{codes.data(), s.data(), rows, d}));
  for (std::int64_t r = 0; r < rows; ++r) {
    const fp8_row want = fp8_encode_oracle(x.data() + r * d, static_cast<int>(d), mode);
    same_float(mode == fp8_scale_mode::pow2 ? "FP8 pow2 scale" : "FP8 fp32 scale", r, -1, s[r], want.s);
    for (std::int64_t k = 0; k < d; ++k) same_byte("FP8 code", r, k, codes[r * d + k], want.codes[k]);
  }
}

void check_fp8_decode(fuzz_input& in, std::int64_t rows, std::int64_t d) {
  std::vector<std::uint8_t> codes(rows * d);
  std::vector<float> s(rows);
  for (std::uint8_t& c : codes) c = in.u8();
  for (float& v : s) v = from_bits(in.u32());
  const const_fp8_rows stored{codes.data(), s.data(), rows, d};
  auto want = [&](std::int64_t r, std::int64_t k) { return fp8_decode_oracle(codes[r * d + k], s[r]); };
  std::vector<float> f32(rows * d);
  std::vector<std::uint16_t> b16(rows * d);
  ok("ref::decode_fp8", ref::decode_fp8(stored, make_tensor_view(f32.data(), rows, d)));
  ok("ref::decode_fp8_bf16", ref::decode_fp8_bf16(stored, make_tensor_view(b16.data(), rows, d)));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t k = 0; k < d; ++k) {
      same_float("FP8 decode (FP32)", r, k, f32[r * d + k], want(r, k));
      same_bf16("FP8 decode (BF16)", r, k, b16[r * d + k], bf16_rn(want(r, k)));
    }
  }
  const std::vector<std::int32_t> idx = index_list(in, rows);
  const auto k_rows = static_cast<std::int64_t>(idx.size());
  std::vector<std::uint16_t> sel(k_rows * d, 0xAAAA);
  ok("ref::decode_fp8_selected_bf16",
     ref::decode_fp8_selected_bf16(stored, {idx.data(), k_rows}, make_tensor_view(sel.data(), k_rows, d)));
  for (std::int64_t i = 0; i < k_rows; ++i) {
    const bool in_range = idx[i] >= 0 && idx[i] < rows;
    for (std::int64_t k = 0; k < d; ++k) {
      same_bf16("FP8 selected decode (BF16)", i, k, sel[i * d + k], in_range ? bf16_rn(want(idx[i], k)) : 0);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz_input in(data, size);
  const std::uint8_t codec = in.u8() % 6;
  const std::uint8_t shape = in.u8();
  const std::int64_t rows = 1 + shape % 4;
  if (codec < 2) {  // NVFP4: d = 16, 32, ..., 128
    const std::int64_t d = 16 * (1 + (shape >> 2) % 8);
    codec == 0 ? check_nvfp4_encode(in, rows, d) : check_nvfp4_decode(in, rows, d);
  } else {  // FP8: d = 0 .. 63
    const std::int64_t d = (shape >> 2) % 64;
    if (codec == 2) check_fp8_encode(in, rows, d, fp8_scale_mode::fp32);
    if (codec == 3) check_fp8_encode(in, rows, d, fp8_scale_mode::pow2);
    if (codec >= 4) check_fp8_decode(in, rows, d);
  }
  return 0;
}
