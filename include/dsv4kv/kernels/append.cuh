// SPDX-License-Identifier: Apache-2.0
#pragma once
//! append_kernel<M, HEAD_DIM, InT, BiasT, WRITER>: the fused write path. One pass over the new
//! tokens' projections does compress -> RMSNorm -> RoPE -> (Hadamard) -> quantize, each row's amax
//! inside its CTA (no cross-CTA synchronisation), over a batch of segments (several sequences at
//! any positions, SPEC §7) with a per-sequence FP32 state carrying the tokens later rows need
//! (append_model.hpp). A one-shot prefill is the same kernel with one segment at position 0 and
//! no state: one code path for prefill, chunked prefill and decode.
//!
//! Rows. Every row is compress_row (kernels/compress.cuh, the code the two-kernel path runs) over
//! a token source that reads token q of the sequence from the projections when q >= p (the
//! segment's position) and from the state's ring otherwise; the quantizer is the two-kernel
//! chain's per-lane step (nvfp4_encode_quad / fp8_encode_quad) with the row amax merged inside the
//! row group. So the bytes equal the two-kernel chain's, and do not depend on the chunking.
//!
//! Variants (append_variant, chosen on the host from N and B), each in its compress_work layout:
//! prefill (CSA: one row per CTA); single, one segment of at least a block (a prefill chunk; HCA
//! in the prefill's clusters, CSA two rows per CTA for the state's readers); batch, anything else
//! (decode steps), in the unclustered layout with room for the segment scan.
//!
//! Grid. Counted in units of a CTA, or of a cluster of compress_layout::cluster CTAs for HCA
//! prefills and single segments (every CTA of a cluster works on the same row; "CTA" below means
//! the unit). Segment s
//! owns a run of consecutive units, enough for its rows, ROWS rows per unit, starting at a unit
//! boundary. Two mappings, both read from device memory, so a captured launch serves any metadata
//! with cu[B] <= total_tokens:
//!   - 1 < B <= append_scan_items * THREADS (decode batches): a prefix sum over the
//!     units each segment needs, max(1, ceil(rows / ROWS)) for a valid non-empty segment
//!     (scan_segments: one round trip); grid append_scan_units(N, B, M*ROWS) + 1 units, the
//!     tight bound (B + 1 for a decode step of B sequences);
//!   - B = 1 (chunked prefill, single-sequence decode): units from floor(cu[0] / (M*ROWS)), in
//!     the same grid (append_scan_units(N, 1, q) = floor(N / q) + 1 for N >= q); the single
//!     variant's grid is append_single_units(N, q) = ceil(N / q) units, no extra unit;
//!   - larger B: units [base(s), base(s+1)) with base(s) = floor(cu[s] / (M*ROWS)) + s, found by
//!     a THREADS-ary search over base(); grid floor(N / (M*ROWS)) + B + 1 units;
//!   - any B with a declared max_segment_tokens small enough that every segment's rows fit one
//!     unit (append_direct_units; decode steps): unit s is segment s, grid B + 1 units. Each unit
//!     reads only its own segment's metadata (the scan has every unit read the whole batch's).
//! The last unit (batches) checks cu_seqlens as a whole. A prefill is the append_variant::prefill instantiation:
//! one segment at position 0, no state, cu_seqlens / positions / state unread (compiled out,
//! which frees the registers for more CSA warps per SM); its grid is ceil(rows / ROWS) units.
//!
//! State. Only a segment's first CTA reads the state (only its first row, and for CSA its second,
//! read tokens before p: both are in that CTA), and that same CTA writes the new state after a
//! barrier (CTA and cluster): the new tokens the next append needs, into their ring rows, then
//! the header. No other CTA touches the state, so there is no race; two segments must not share
//! a state slot. Latency (a decode step is a chain of dependent round trips): after the metadata,
//! everything is loaded at once — the header, the ring, the new tokens of the rows and of the
//! state copy; the ring rows are computed speculatively and written only if the header says the
//! state continues at p.
//!
//! Device-side metadata errors (the host cannot see device metadata without a sync), raised into
//! error_flags (append_model.hpp bits) when it is non-null:
//!   - cu_seqlens not non-decreasing in [0, total_tokens]: always raised (a batch's extra CTA scans
//!     it; a single segment's bounds are checked by its units, reported by unit 0);
//!     a segment whose own bounds are bad writes nothing; with a broken cu_seqlens which rows of
//!     other segments are written is unspecified (never out of bounds);
//!   - negative position, position + length > 2^31 - 1: the segment writes nothing;
//!   - a segment longer than a declared max_segment_tokens (any mapping): it writes nothing, its
//!     state is left as it was (append_error_segment_length);
//!   - state slot outside [-1, slots), or a state that does not continue at p (header), or -1
//!     where a row needs the state: the rows that read the state are not written and the state is
//!     left as it was; rows made only of new tokens are written;
//!   - a row's pool slot outside [-1, pool rows): that row is not written (-1: skipped silently).

#include <cstdint>

#include "dsv4kv/append_model.hpp"
#include "dsv4kv/formats/fp8_encoding.hpp"
#include "dsv4kv/formats/fp8_rows.hpp"
#include "dsv4kv/formats/nvfp4_encoding.hpp"
#include "dsv4kv/formats/nvfp4_rows.hpp"
#include "dsv4kv/kernels/compress.cuh"
#include "dsv4kv/kernels/grid_dependency.cuh"
#include "dsv4kv/kernels/quantize_fp8.cuh"
#include "dsv4kv/kernels/quantize_nvfp4.cuh"
#include "dsv4kv/kernels/row_amax.cuh"
#include "dsv4kv/kernels/row_group.cuh"
#include "dsv4kv/kernels/vector_io.cuh"

namespace dsv4kv {

//! Row writer of append_kernel into an NVFP4 pool (SPEC §5).
struct nvfp4_pool_writer {
  std::uint8_t* codes = nullptr;         // [rows, d/2], 2-byte aligned
  std::uint8_t* block_scales = nullptr;  // [rows, d/16]
  float* global_scales = nullptr;        // [rows]
  std::int64_t rows = 0;                 // pool rows

  //! Writes this thread's 4 channels (quad) of a row into pool row `slot`, given the row's amax.
  //! Called by whole warps (shuffles).
  template <int HEAD_DIM>
  __device__ __forceinline__ void write(std::int64_t slot, float4 y, const row_amax& amax, int quad) const {
    const nvfp4_row_scale scale = nvfp4_row_scale_from_amax(amax);
    const detail::nvfp4_quad e = detail::nvfp4_encode_quad(y, amax, scale);
    detail::nvfp4_store_quad(codes + slot * nvfp4_code_bytes_per_row(HEAD_DIM),
                             block_scales + slot * nvfp4_scale_bytes_per_row(HEAD_DIM), quad, e);
    if (quad == 0) global_scales[slot] = scale.decode;
  }
};

//! Row writer of append_kernel into an FP8-E4M3 pool (SPEC §6).
struct fp8_pool_writer {
  std::uint8_t* codes = nullptr;  // [rows, d], 4-byte aligned
  float* scales = nullptr;        // [rows]
  std::int64_t rows = 0;          // pool rows
  fp8_scale_mode mode = fp8_scale_mode::fp32;

  template <int HEAD_DIM>
  __device__ __forceinline__ void write(std::int64_t slot, float4 y, const row_amax& amax, int quad) const {
    const fp8_row_scale scale = fp8_row_scale_from_amax(amax, mode);
    *reinterpret_cast<std::uint32_t*>(codes + slot * fp8_code_bytes_per_row(HEAD_DIM) + detail::vec_elems * quad) =
        detail::fp8_encode_quad(y, amax, scale, mode);
    if (quad == 0) scales[slot] = scale.decode;
  }
};

//! Arguments of append_kernel (device pointers; c = 1 + (M == 4), W = c*d).
template <class InT, class BiasT, class WRITER>
struct append_kernel_params {
  prefill_tokens<InT> input;                  // the new tokens' kv / gate [total_tokens, W], by global index
  std::int64_t total_tokens = 0;
  compress_row_params<BiasT> row;             // bias, norm, RoPE table, Hadamard
  std::int64_t segments = 1;                  // B
  const std::int32_t* cu_seqlens = nullptr;   // [B+1] (not read by a prefill: one segment, all tokens at position 0)
  const std::int32_t* positions = nullptr;    // [B] position of each segment's first token
  const std::int32_t* state_slots = nullptr;  // [B] state slot of each segment or -1; nullptr: none
  const std::int32_t* slot_mapping = nullptr; // [total_tokens] pool row per block-ending token, -1 skips;
                                              //   nullptr: the row of block i goes to pool row i (prefill)
  std::int64_t rope_start = 0;                // the row of block i rotates at rope_start + i*M ...
  const std::int32_t* rope_positions = nullptr;  // ... or at rope_positions[i] when non-null (prefill)
  std::uint8_t* state = nullptr;              // [state_count, append_state_bytes(M, d)]
  std::int64_t state_count = 0;
  WRITER out;                                 // the pool
  std::uint32_t* error_flags = nullptr;       // [1] OR of append_error_* bits, or nullptr
  std::int64_t max_segment_tokens = 0;        // declared bound on a segment's new tokens, 0: none
};

namespace detail {

//! The instantiations of append_kernel; the host picks one per launch (append_variant_for).
enum class append_variant {
  prefill,  //!< one segment at position 0, no state, no metadata read (the fused write path)
  single,   //!< one segment (B = 1) of >= M tokens at any position, with state (a prefill chunk)
  batch,    //!< any batch (decode steps, mixed batches)
};

//! The instantiation of an append launch of n tokens in b >= 1 segments at ratio m: one segment
//! of at least a block takes the segment layout (HCA: a cluster per row, CSA: 24 warps per SM);
//! anything else the batch layout (HCA: one 256-thread CTA per row, CSA: 16 warps per SM, room
//! for the segment search).
constexpr append_variant append_variant_for(std::int64_t m, std::int64_t n, std::int64_t b) {
  return b == 1 && n >= m ? append_variant::single : append_variant::batch;
}

//! The compress_work of variant V (its layout's).
template <append_variant V>
inline constexpr compress_work append_work = V == append_variant::prefill ? compress_work::prefill
                                             : V == append_variant::single ? compress_work::segment
                                                                           : compress_work::batch;

//! Thread layout of append_kernel<M, HEAD_DIM, InT, ..., V>: compress_layout of append_work<V>
//! (every layout computes the same bits). The input type sets only the channels per thread of
//! clustered HCA rows: grid units, rows per unit and the batch layout do not depend on it.
template <int M, int HEAD_DIM, append_variant V, class InT = float>
using append_layout = compress_layout<M, HEAD_DIM, append_work<V>, sizeof(InT)>;

//! Resident CTAs per SM append_kernel<M, HEAD_DIM, ..., V> is compiled for (it caps the
//! registers at 65536 / (threads * this)). Prefill and single: compress_min_ctas of their layout
//! (CSA: 24 warps per SM, <= 80 registers, 32 for prefills of BF16 projections; at 16 warps the kernel is latency-bound at ~2/3 of compress_kernel's
//! bandwidth; the prefill has no spills, the single variant 130-240 B per thread, in the path of
//! its segment's first, stateful CTA only). CSA batches: DSV4KV_APPEND_SEGMENTS_CSA_WARPS (16) warps per SM,
//! 128 registers: the segment scan and search do not fit 80 registers (24 warps: ~150 B of spills
//! per thread; the macro is for A/B benchmarks). HCA: compress_min_ctas of its layout.
#ifndef DSV4KV_APPEND_SEGMENTS_CSA_WARPS
#define DSV4KV_APPEND_SEGMENTS_CSA_WARPS 16
#endif
template <int M, int HEAD_DIM, append_variant V, class InT>
inline constexpr int append_min_ctas =
    compress_overlaps(M) && V == append_variant::batch
        ? DSV4KV_APPEND_SEGMENTS_CSA_WARPS * 32 / append_layout<M, HEAD_DIM, V, InT>::threads
        : compress_min_ctas<append_layout<M, HEAD_DIM, V, InT>>;

//! Shared memory of append_kernel.
template <int M, int HEAD_DIM, append_variant V, class InT>
struct append_storage {
  using L = append_layout<M, HEAD_DIM, V, InT>;
  compress_storage<M, HEAD_DIM, append_work<V>> compress;
  typename row_group<HEAD_DIM, L::rows_per_cta>::sum_storage amax;
  struct {                                 // the segment scan (resolve_segment)
    std::int64_t warp_total[L::threads / 32];
    std::int64_t found[6];  // s, begin, end, position, state slot, the segment's first unit
  } scan;
};

//! Segments per thread of the segment scan: batches of up to this many * threads segments find
//! their CTAs by a prefix sum over the segments' row counts (one round trip; the grid is the
//! tight bound append_scan_units); larger batches by the search over base(s) = floor(cu[s] /
//! (M*ROWS)) + s (a grid of floor(N / (M*ROWS)) + B units).
inline constexpr int append_scan_items = 4;

//! True when a batch launch of layout L (ratio m) maps unit s to segment s: the caller declared
//! at most max_segment_tokens new tokens per segment, few enough that any segment's rows fit one
//! unit (decode steps, speculative-decoding steps).
template <class L>
DSV4KV_HOST_DEVICE constexpr bool append_direct_units(std::int64_t m, std::int64_t max_segment_tokens) {
  return max_segment_tokens > 0 && append_max_segment_rows(static_cast<int>(m), max_segment_tokens) <= L::rows_per_cta;
}

//! Units (CTAs, or HCA clusters) of an append launch of variant V over N tokens in B segments with
//! layout L (ratio m, declared max_segment_tokens): a batch's segments' units (B when each fits
//! one, append_direct_units) plus the one that checks cu_seqlens; a single segment's units alone
//! (append_single_units: a 4K HCA chunk is 32 clusters, like its prefill).
template <append_variant V, class L>
constexpr std::int64_t append_grid_units(std::int64_t n, std::int64_t b, std::int64_t m,
                                         std::int64_t max_segment_tokens) {
  if (V == append_variant::single) return append_single_units(n, m * L::rows_per_cta);
  if (append_direct_units<L>(m, max_segment_tokens)) return b + 1;
  return (b <= append_scan_items * L::threads ? append_scan_units(n, b, m * L::rows_per_cta)
                                              : n / (m * L::rows_per_cta) + b) +
         1;
}

//! Token source of one segment: token q of the sequence is input row tok0 + (q - position) when
//! q >= position, else (RING) ring row append_state_ring_row(M, q) of the state (FP32, written by
//! an earlier launch: ordinary loads). Without RING every token it is asked for is a new one (the
//! CTA reads no state): no per-token branch on the load path.
template <int M, class InT, bool RING>
struct segment_tokens {
  static constexpr int element_bytes = prefill_tokens<InT>::element_bytes;  // of the new tokens (sets the layout)
  prefill_tokens<InT> input;
  std::int64_t tok0 = 0;            // global index of the segment's first token
  std::int64_t position = 0;        // its position in the sequence
  const float* ring_kv = nullptr;   // [R, W] (RING)
  const float* ring_gate = nullptr; // [R, W] (RING)
  std::int64_t width = 0;           // W

  //! kv (v) and gate (z) channels [col, col + N) of token q (N = 4 or 2).
  template <int N = vec_elems>
  __device__ __forceinline__ void load(std::int64_t q, int col, vecf<N>& v, vecf<N>& z) const {
    if (!RING || q >= position) {
      input.template load<N>(tok0 + (q - position), col, v, z);
    } else {
      const std::int64_t r = append_state_ring_row(M, q) * width + col;
      v = loadn<N>(ring_kv + r);
      z = loadn<N>(ring_gate + r);
    }
  }
};

//! Where a CTA works: its segment's tokens, position and state, and its index among the segment's CTAs.
struct segment_work {
  bool active = false;         // false: nothing to do (past the last segment, empty segment, error)
  std::int64_t index = 0;      // segment s
  std::int64_t tok0 = 0;       // global index of its first token
  std::int64_t position = 0;   // p
  std::int64_t length = 0;     // L
  std::int64_t cta = 0;        // this CTA's index among the segment's
  std::int64_t state_slot = -1;
};

//! Loads in flight per thread in the state copy of append_kernel (the first batch is hinted into L2 early).
inline constexpr int state_copy_batch = 4;

__device__ __forceinline__ std::int64_t max_i64(std::int64_t a, std::int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ std::int64_t min_i64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ void raise_append_error(std::uint32_t* flags, std::uint32_t bits) {
  if (flags != nullptr) atomicOr(flags, bits);
}

//! First CTA of segment s: floor(cu[s] / (M*ROWS)) + s (cu[s] >= 0 assumed; a negative one is an
//! error the caller reports, and only has to keep the search in bounds).
template <int M, int ROWS>
__device__ __forceinline__ std::int64_t segment_cta_base(const std::int32_t* cu, std::int64_t s) {
  const std::int64_t c = __ldg(cu + s);
  return (c >= 0 ? c / (M * ROWS) : 0) + s;
}

//! The segment of CTA `cta`: the largest s in [0, B) with base(s) <= cta, -1 if none, by a
//! THREADS-ary search (each round one probe per thread and one __syncthreads_count). All threads
//! of the CTA call it and get the same answer.
template <int M, int ROWS, int THREADS>
__device__ __forceinline__ std::int64_t find_segment(const std::int32_t* cu, std::int64_t segments, std::int64_t cta) {
  std::int64_t lo = 0, hi = segments - 1;  // the answer is in [lo - 1, hi]
  while (true) {
    const std::int64_t span = hi - lo + 1;
    const std::int64_t stride = span > THREADS ? (span + THREADS - 1) / THREADS : 1;
    const std::int64_t probe = lo + static_cast<std::int64_t>(threadIdx.x) * stride;
    const bool below = probe <= hi && segment_cta_base<M, ROWS>(cu, probe) <= cta;
    const std::int64_t count = __syncthreads_count(below);
    if (count == 0) return lo - 1;
    if (stride == 1) return lo + count - 1;
    lo += (count - 1) * stride;
    hi = lo + stride - 1 < hi ? lo + stride - 1 : hi;
  }
}

//! Scans cu_seqlens [B+1] for the rule "non-decreasing within [0, total_tokens]" (the extra CTA).
template <int THREADS>
__device__ __forceinline__ void check_cu_seqlens(const std::int32_t* cu, std::int64_t segments, std::int64_t total,
                                                 std::uint32_t* flags) {
  bool bad = false;
  for (std::int64_t s = threadIdx.x; s <= segments; s += THREADS) {
    const std::int64_t c = __ldg(cu + s);
    bad = bad || c < 0 || c > total || (s > 0 && __ldg(cu + s - 1) > c);
  }
  if (bad) raise_append_error(flags, append_error_cu_seqlens);
}

//! The segment of unit `cta` by a prefix sum over the units each segment needs (B <=
//! append_scan_items * threads): thread t holds segments [t*K, t*K + K), K = ceil(B / threads);
//! all of their metadata (bounds, position, state slot) is loaded in one round trip, and the
//! thread holding the unit's segment hands it to the CTA through shared memory. Segment s needs
//! max(1, ceil(rows(s) / ROWS)) units when its metadata is valid and it is not empty (a segment
//! without a row still writes its state), none otherwise; unit 0 raises the invalid segments' error bits.
template <int M, class L, class P, class SCAN>
__device__ __forceinline__ segment_work scan_segments(const P& p, std::int64_t cta, SCAN& smem) {
  constexpr int ROWS = L::rows_per_cta;
  constexpr int THREADS = L::threads;
  const std::int64_t k = (p.segments + THREADS - 1) / THREADS;  // segments per thread, <= append_scan_items
  const std::int64_t first = static_cast<std::int64_t>(threadIdx.x) * k;
  std::int32_t begin[append_scan_items], end[append_scan_items];   // per held segment: cu[s], cu[s+1]
  std::int32_t position[append_scan_items], slot[append_scan_items];  // positions[s], state_slots[s]
#pragma unroll
  for (int j = 0; j < append_scan_items; ++j) {  // every load first: one round trip
    const std::int64_t s = first + j;
    const bool held = j < k && s < p.segments;
    begin[j] = held ? __ldg(p.cu_seqlens + s) : 0;
    end[j] = held ? __ldg(p.cu_seqlens + s + 1) : 0;
    position[j] = held ? __ldg(p.positions + s) : 0;
    slot[j] = held && p.state_slots != nullptr ? __ldg(p.state_slots + s) : -1;
  }
  std::int64_t units[append_scan_items];  // per held segment
  std::int64_t total = 0;                 // this thread's units
  std::uint32_t errors = 0;
#pragma unroll
  for (int j = 0; j < append_scan_items; ++j) {
    units[j] = 0;
    if (j >= k || first + j >= p.segments) continue;
    const std::int64_t b = begin[j], e = end[j], q = position[j];
    if (!append_segment_bounds_ok(b, e, p.total_tokens)) {
      errors |= append_error_cu_seqlens;
    } else if (e > b) {
      if (!append_segment_length_ok(e - b, p.max_segment_tokens)) {
        errors |= append_error_segment_length;  // longer than declared: no unit, no row, state kept
      } else if (!append_segment_position_ok(q, e - b)) {
        errors |= append_error_position;
      } else {
        const std::int64_t rows = append_row_count(M, q, e - b);
        units[j] = rows > ROWS ? (rows + ROWS - 1) / ROWS : 1;
      }
    }
    total += units[j];
  }
  if (errors != 0 && cta == 0 && cluster_rank<L>() == 0) raise_append_error(p.error_flags, errors);
  // Exclusive prefix of the threads' totals: warp scan, then the warps' totals in warp order.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  std::int64_t inclusive = total;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const std::int64_t v = __shfl_up_sync(0xFFFFFFFFu, inclusive, offset);
    if (lane >= offset) inclusive += v;
  }
  if (lane == 31) smem.warp_total[warp] = inclusive;
  if (threadIdx.x == 0) smem.found[0] = -1;
  __syncthreads();
  std::int64_t start = inclusive - total;  // this thread's first unit
  for (int w = 0; w < warp; ++w) start += smem.warp_total[w];
#pragma unroll
  for (int j = 0; j < append_scan_items; ++j) {
    if (units[j] > 0 && cta >= start && cta < start + units[j]) {  // one thread, one segment at most
      smem.found[0] = first + j;
      smem.found[1] = begin[j];
      smem.found[2] = end[j];
      smem.found[3] = position[j];
      smem.found[4] = slot[j];
      smem.found[5] = start;
    }
    start += units[j];
  }
  __syncthreads();
  segment_work w;
  const std::int64_t s = smem.found[0];
  if (s < 0) return w;
  w.index = s;
  w.tok0 = smem.found[1];
  w.length = smem.found[2] - w.tok0;
  w.position = smem.found[3];
  w.state_slot = smem.found[4];
  w.cta = cta - smem.found[5];
  w.active = true;
  return w;
}

//! Resolves the segment the CTA (cluster, with HCA's clusters) cluster_index<L>() works on,
//! raising segment-level metadata errors. Uniform per cluster: every CTA of a cluster gets the same answer.
template <int M, class L, append_variant V, class P, class SCAN>
__device__ __forceinline__ segment_work resolve_segment(const P& p, SCAN& smem) {
  constexpr int ROWS = L::rows_per_cta;
  constexpr int THREADS = L::threads;
  segment_work w;
  const std::int64_t cta = cluster_index<L>();
  if constexpr (V == append_variant::prefill) {  // one segment: a prefill from position 0, no state
    w.active = true;
    w.length = p.total_tokens;
    w.cta = cta;
    return w;
  }
  // One segment (chunked prefill, B = 1 decode): its units start at floor(cu[0] / (M*ROWS)), no
  // search and no scan (a barrier pair less than scan_segments; the grid covers them). The single
  // variant only ever has one, and no extra unit: its segment's bounds are the whole check.
  // Direct units (a declared max_segment_tokens that fits every segment in one unit): unit s is
  // segment s, which it checks against the bound; no scan, no search.
  std::int64_t s = 0;
  const bool direct = V == append_variant::batch && append_direct_units<L>(M, p.max_segment_tokens);
  if constexpr (V == append_variant::batch) {
    if (cta == static_cast<std::int64_t>(gridDim.x / L::cluster) - 1) {  // the extra CTA (cluster)
      check_cu_seqlens<THREADS>(p.cu_seqlens, p.segments, p.total_tokens, p.error_flags);
      return w;
    }
    if (direct) {
      s = cta;  // < B: the grid is B + 1 units
    } else if (p.segments > 1 && p.segments <= append_scan_items * THREADS) {
      return scan_segments<M, L>(p, cta, smem);
    }
  }
  if (V == append_variant::batch && !direct && p.segments > 1) {
    // Warm L1 with the lines of positions / state_slots the search's probes cover (all of them
    // when B <= THREADS): the segment's metadata loads below then hit instead of adding a round trip.
    if (threadIdx.x < p.segments) {
      const std::int64_t i = threadIdx.x * ((p.segments + THREADS - 1) / THREADS);  // [0, B)
      prefetch_l1(p.positions + i);
      if (p.state_slots != nullptr) prefetch_l1(p.state_slots + i);
    }
    s = find_segment<M, ROWS, THREADS>(p.cu_seqlens, p.segments, cta);
    if (s < 0) return w;
  }
  // All of the segment's metadata in one round trip (s < B: every load is in bounds).
  const std::int64_t begin = __ldg(p.cu_seqlens + s), end = __ldg(p.cu_seqlens + s + 1);
  const std::int64_t position = __ldg(p.positions + s);
  const std::int64_t state_slot = p.state_slots != nullptr ? __ldg(p.state_slots + s) : -1;
  if (!append_segment_bounds_ok(begin, end, p.total_tokens)) {  // the whole segment is skipped
    // Raised by the segment's first unit; the single variant's by unit 0 (without the extra unit,
    // a bad cu[0] may put the segment's first unit past the grid).
    const std::int64_t raiser =
        V == append_variant::single ? 0 : (direct ? s : segment_cta_base<M, ROWS>(p.cu_seqlens, s));
    if (threadIdx.x == 0 && cluster_rank<L>() == 0 && cta == raiser) {
      raise_append_error(p.error_flags, append_error_cu_seqlens);
    }
    return w;
  }
  w.cta = direct ? 0 : cta - (begin / (M * ROWS) + s);
  // Before the segment's CTAs (B = 1 only), past them, or an empty segment.
  if (w.cta < 0 || (!direct && cta >= end / (M * ROWS) + s + 1) || end == begin) return w;
  if (!append_segment_length_ok(end - begin, p.max_segment_tokens)) {  // longer than declared (direct units:
    // it may not fit the unit): nothing written, the state kept, raised by the segment's first unit
    if (threadIdx.x == 0 && cluster_rank<L>() == 0 && w.cta == 0) {
      raise_append_error(p.error_flags, append_error_segment_length);
    }
    return w;
  }
  w.index = s;
  w.tok0 = begin;
  w.length = end - begin;
  w.position = position;
  if (!append_segment_position_ok(w.position, w.length)) {
    if (threadIdx.x == 0 && w.cta == 0) raise_append_error(p.error_flags, append_error_position);
    return w;
  }
  w.state_slot = state_slot;
  w.active = true;
  return w;
}

}  // namespace detail

namespace detail {

//! The work of one CTA (cluster) of append_kernel on segment w: its row(s), and with STATEFUL (the
//! segment's first CTA, with a state slot: `state`) the rows' ring reads and the new state. The two
//! cases are separate code paths, so the state's bookkeeping adds no register pressure to the
//! CTAs that only read new tokens (every CTA of a prefill chunk but the first).
template <int M, int HEAD_DIM, class InT, class BiasT, class WRITER, append_variant V, bool STATEFUL>
__device__ __forceinline__ void append_cta(const append_kernel_params<InT, BiasT, WRITER>& p, const segment_work& w,
                                           std::uint8_t* state, const compress_thread& t, int rank,
                                           append_storage<M, HEAD_DIM, V, InT>& smem) {
  using L = append_layout<M, HEAD_DIM, V, InT>;
  constexpr compress_work W = append_work<V>;
  constexpr int ROWS = L::rows_per_cta;
  constexpr int THREADS = L::threads;
  constexpr int COPIERS = THREADS * L::cluster;                       // threads sharing the state copy
  constexpr std::int64_t width = compress_input_width(M, HEAD_DIM);  // W
  constexpr std::int64_t quads = width / vec_elems;                   // 4-channel groups per token
  constexpr std::int64_t ring_floats = append_state_ring_tokens(M) * width;
  const int copier = rank * THREADS + static_cast<int>(threadIdx.x);  // this thread's index in the copy
  const std::int64_t end = w.position + w.length;

  // Everything after the metadata is loaded in one round trip (a decode step is a chain of
  // dependent round trips): the state header is looked at only after the rows, whose ring reads
  // are speculative until then (a row that needs a state that does not continue at p is
  // computed, not written), and in batches (PRELOAD) the first new tokens the state keeps are
  // loaded now, stored after the rows. A single segment (a prefill chunk) only hints them into L2:
  // its stateful CTA runs at the prefill's register cap, where 8 more live registers spill.
  constexpr bool PRELOAD = V == append_variant::batch;
  std::int64_t header_next = 0;  // the state's header
  std::uint32_t header_tag = 0;
  std::int64_t copy_from = 0, copy_count = 0;  // first new token the state keeps; quads to copy
  float4 copy_v = make_float4(0.0f, 0.0f, 0.0f, 0.0f), copy_z = copy_v;  // the copy's quad `copier`
  const auto copy_token = [&](std::int64_t i) { return w.tok0 + (copy_from + i / quads - w.position); };  // input row of quad i
  const auto copy_col = [](std::int64_t i) { return static_cast<int>(i % quads) * vec_elems; };            // its first channel
  if constexpr (STATEFUL) {
    const append_state_header* h = reinterpret_cast<const append_state_header*>(state);
    header_next = h->next_position;
    header_tag = h->tag;
    copy_from = max_i64(append_state_first_kept(M, end), w.position);
    copy_count = (end - copy_from) * quads;
    if (PRELOAD && copier < copy_count) {
      p.input.load(copy_token(copier), copy_col(copier), copy_v, copy_z);
    }
    // L2 hint for the copy's next batches (a chunk's tail): they then hit L2 after the rows.
    const std::int64_t hinted = min_i64(copy_count, ((PRELOAD ? 1 : 0) + state_copy_batch) * COPIERS);
    for (std::int64_t i = (PRELOAD ? COPIERS : 0) + copier; i < hinted; i += COPIERS) {
      p.input.prefetch(copy_token(i), copy_col(i));
    }
  }

  // This row group's row: block `block` of the sequence, its pool row and RoPE position (in
  // bounds: block < end_block).
  const std::int64_t first_block = w.position / M, end_block = end / M;
  const std::int64_t block = first_block + w.cta * ROWS + t.local_row;
  const bool in_segment = block < end_block;
  std::int64_t slot = -1;  // pool row
  std::int64_t rope_pos = 0;
  if (in_segment) {
    const std::int64_t last = w.tok0 + ((block + 1) * M - 1 - w.position);  // global index of its last token
    slot = p.slot_mapping != nullptr ? static_cast<std::int64_t>(__ldg(p.slot_mapping + last)) : block;
    if (p.row.rope.rope_dim != 0) {
      rope_pos = p.rope_positions != nullptr ? static_cast<std::int64_t>(__ldg(p.rope_positions + block))
                                             : p.rope_start + block * M;
    }
  }
  // A row that reads tokens before p reads them from the ring: only with a state.
  const bool new_tokens_only = append_row_first_token(M, block) >= w.position;
  const bool computed = in_segment && (STATEFUL || new_tokens_only);  // uniform per row group

  // The row: the ring token source when one of the CTA's rows reads a token before p, the
  // branch-free one (new tokens only) otherwise; both run the same compress_row. The ring source's
  // per-token branch, 64-bit ring arithmetic and two load flavours make a path about twice as long
  // with little to overlap it: a stateful cluster that took it at a block-aligned chunk start (no
  // ring token read) ran 3x longer than the chunk's other clusters.
  const bool reads_ring = STATEFUL && append_row_first_token(M, first_block) < w.position;  // uniform per CTA
  // A CTA none of whose row groups has a block in the segment (a decode step that finishes no
  // block) skips the row and its quantization: no epilogue loads and no barriers on its path to
  // the state copy. Not a cluster's stateful CTAs: their copy relies on compress_row's cluster barrier.
  const bool skip_rows = first_block + w.cta * ROWS >= end_block && (L::cluster == 1 || !STATEFUL);  // uniform per CTA
  float4 y = make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // this thread's 4 channels of its row
  if (skip_rows) {
    // nothing to compute
  } else if (reads_ring) {
    const float* ring_kv = reinterpret_cast<const float*>(state + append_state_header_bytes);  // [R, W]
    const segment_tokens<M, InT, true> tokens{p.input, w.tok0, w.position, ring_kv, ring_kv + ring_floats, width};
    y = compress_row<M, HEAD_DIM, W>(tokens, p.row, block, rope_pos, computed, t, smem.compress);
  } else {
    const segment_tokens<M, InT, false> tokens{p.input, w.tok0, w.position, nullptr, nullptr, width};
    y = compress_row<M, HEAD_DIM, W>(tokens, p.row, block, rope_pos, computed, t, smem.compress);
  }

  // The state continues at p: its ring was valid for the rows, and the new state may be written.
  const bool state_ok =
      STATEFUL && (w.position == 0 || (header_next == w.position && header_tag == append_state_tag(M, HEAD_DIM)));
  if (STATEFUL && !state_ok && threadIdx.x == 0 && rank == 0) {
    raise_append_error(p.error_flags, append_error_state_mismatch);
  }
  const bool has_row = in_segment && (new_tokens_only || state_ok);  // uniform per row group

  // Quantize: the row's amax over the row group, then each thread's 4 channels.
  if (!skip_rows) {
    row_amax a;
    if (t.holder && has_row) {
      a.add(y.x);
      a.add(y.y);
      a.add(y.z);
      a.add(y.w);
    }
    a = row_merge_amax<HEAD_DIM, ROWS>(a, t.local_row, t.quad, t.holder, smem.amax);
    if (t.holder && has_row) {
      if (slot >= 0 && slot < p.out.rows) {
        p.out.template write<HEAD_DIM>(slot, y, a, t.quad);
      } else if (slot != -1 && t.quad == 0) {
        raise_append_error(p.error_flags, append_error_pool_slot);
      }
    }
  }
  if constexpr (STATEFUL) {
    // The new state, after every read of the old one (the CTA barrier, and with a cluster the
    // cluster barrier inside compress_row, which every rank passed after its token loads): the new
    // tokens the next append needs into their ring rows, then the header. A cluster's CTAs share the copy.
    static_assert(L::cluster == 1 || L::slot_groups > 1, "the cluster barrier orders the state's reads and writes");
    if (!state_ok) return;  // uniform per cluster
    __syncthreads();
    float* kv_out = reinterpret_cast<float*>(state + append_state_header_bytes);  // [R, W]
    float* gate_out = kv_out + ring_floats;                                         // [R, W]
    const auto store_quad = [&](std::int64_t i, float4 v, float4 z) {  // quad i of the copy
      const std::int64_t r = append_state_ring_row(M, copy_from + i / quads) * width + (i % quads) * vec_elems;
      store4(kv_out + r, v);
      store4(gate_out + r, z);
    };
    if (PRELOAD && copier < copy_count) store_quad(copier, copy_v, copy_z);  // loaded before the rows
    // The rest (a chunk's tail; HCA keeps up to 127 tokens): BATCH loads in flight per thread
    // before their stores (8 round trips instead of 32 for HCA's longest copy).
    constexpr int BATCH = state_copy_batch;
    for (std::int64_t base = (PRELOAD ? COPIERS : 0) + copier; base < copy_count; base += BATCH * COPIERS) {
      float4 v[BATCH], z[BATCH];  // kv / gate channels of quad base + b*COPIERS
#pragma unroll
      for (int b = 0; b < BATCH; ++b) {
        const std::int64_t i = base + b * COPIERS;
        const int col = copy_col(i);
        if (i < copy_count) p.input.load(copy_token(i), col, v[b], z[b]);
      }
#pragma unroll
      for (int b = 0; b < BATCH; ++b) {
        const std::int64_t i = base + b * COPIERS;
        if (i < copy_count) store_quad(i, v[b], z[b]);
      }
    }
    if (threadIdx.x == 0 && rank == 0) {
      append_state_header* h = reinterpret_cast<append_state_header*>(state);
      *h = append_state_header{end, append_state_tag(M, HEAD_DIM), 0u};
    }
  }
}

}  // namespace detail

//! The fused write path over segments. Grid: see the file comment; append_layout<M, HEAD_DIM, V, InT>
//! threads per CTA. WRITER: nvfp4_pool_writer or fp8_pool_writer. V: append_variant (prefill: one
//! segment at position 0, no state; the metadata arguments are not read).
template <int M, int HEAD_DIM, class InT, class BiasT, class WRITER, detail::append_variant V>
__global__ void __launch_bounds__(detail::append_layout<M, HEAD_DIM, V, InT>::threads,
                                  detail::append_min_ctas<M, HEAD_DIM, V, InT>)
    append_kernel(const append_kernel_params<InT, BiasT, WRITER> p) {
  using L = detail::append_layout<M, HEAD_DIM, V, InT>;
  constexpr bool SEGMENTS = V != detail::append_variant::prefill;
  __shared__ detail::append_storage<M, HEAD_DIM, V, InT> smem;
  const int rank = detail::cluster_rank<L>();
  const detail::compress_thread t =
      detail::compress_thread_of<M, HEAD_DIM, detail::append_work<V>, sizeof(InT)>(threadIdx.x, rank);

  // Launched with PDL (append_params::pdl), the kernel starts while the previous kernel of the
  // stream still runs: the next one may launch now (it waits for this one in turn), and nothing
  // here touches global memory before the previous one is complete.
  detail::grid_dependents_launch();
  detail::grid_dependency_wait();

  const detail::segment_work w = detail::resolve_segment<M, L, V>(p, smem.scan);
  if (!w.active) return;  // uniform per cluster

  // The state: read (by rows before p) and written only by the segment's first CTA (cluster).
  if (SEGMENTS && w.cta == 0) {
    if (w.state_slot >= 0 && w.state_slot < p.state_count) {  // uniform per cluster
      std::uint8_t* state = p.state + w.state_slot * append_state_bytes(M, HEAD_DIM);  // [append_state_bytes(M, d)]
      detail::append_cta<M, HEAD_DIM, InT, BiasT, WRITER, V, true>(p, w, state, t, rank, smem);
      return;
    }
    const bool missing = w.state_slot == -1 && append_segment_needs_state(M, w.position, w.length);
    if ((w.state_slot != -1 || missing) && threadIdx.x == 0 && rank == 0) {
      detail::raise_append_error(p.error_flags, append_error_state_slot);
    }
  }
  detail::append_cta<M, HEAD_DIM, InT, BiasT, WRITER, V, false>(p, w, nullptr, t, rank, smem);
}

//! Zeroes the header of each state slot named in slots[count] (out-of-range names are skipped).
//! Grid: ceil(count / THREADS) CTAs of THREADS threads.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    append_state_reset_kernel(std::uint8_t* state, std::int64_t state_count, std::int64_t slot_bytes,
                              const std::int32_t* slots, std::int64_t count) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * THREADS + threadIdx.x;
  if (i >= count) return;
  const std::int64_t s = __ldg(slots + i);
  if (s < 0 || s >= state_count) return;
  *reinterpret_cast<append_state_header*>(state + s * slot_bytes) = append_state_header{0, 0u, 0u};
}

}  // namespace dsv4kv
