#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The dsv4kv pipeline written in PyTorch: the kind of code dsv4kv replaced, as a peer benchmark.

Write path (SPEC §2-6), all in float32 torch ops, no fast paths:
  compress  softmax over the block's token slots of (gate + position bias) with torch.softmax,
            weighted sum of kv over the slots (CSA: the previous block's first-half channels and
            the current block's second half, 2m slots; HCA: m slots)
  RMSNorm   y * rsqrt(mean(y^2) + eps) * w
  RoPE      GPT-J interleaved on the last 64 channels, cos/sin rows gathered from a YaRN table
  Hadamard  (indexer) y @ H_d * d^-1/2, float32 matmul at 'highest' precision (no TF32)
  quantize  NVFP4 rows (SPEC §5) or FP8-E4M3 rows (SPEC §6), the recipes step by step
Read path: NVFP4 / FP8 rows -> BF16, all rows or gathered rows.

Every division is tensor / tensor: PyTorch turns `scalar / tensor` into reciprocal * scalar and
`tensor / python_scalar` into a multiply by the reciprocal, which would not be the spec's IEEE
division.

Timing: CUDA events around each run, warm-up, median; the L2 is flushed (a 4x L2 read) before
each run, except decode rows (back-to-back calls, like the suite). Eager and torch.compile
(dynamic shapes; a failure is reported as "compile failed: reason" and the run goes on; a time
budget bounds compilation). Keys are those of benchmarks/bench_dsv4kv.cu so results pair up.

Correctness (independent of our code): the same inputs, generated here, are written to files and
run through our library by benchmarks/dsv4kv_run_write_path (--check-bin); we then report
  rows      max relative error of our FP32 rows and of torch's vs a float64 torch pipeline,
  bytes     agreement of the stored bytes (codes, block scales, global scales) end to end,
  quantizer torch's quantizer run on OUR FP32 rows vs our bytes (must be 100 %),
  dequant   torch's dequant of OUR stored rows vs our BF16 dequant (must be 100 %),
  rope      our YaRN table vs torch's (max abs difference).
A failure of the "must" checks, or our rows above 1e-5 against float64, exits with status 1.

  python3 torch_peer.py [--json FILE] [--check-bin PATH] [--only GROUPS] [--sizes ...] ...
  python3 torch_peer.py compare OURS.json TORCH.json     # the table our time / theirs
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback

# --------------------------------------------------------------------------------------------------
# configuration (the same streams and keys as benchmarks/bench_dsv4kv.cu)

STREAMS = {
    # name: ratio m, head dim d, NVFP4 (else FP8), Hadamard, compress key
    "csa512-nvfp4": dict(m=4, d=512, nvfp4=True, hadamard=False, compress="csa512"),
    "hca512-nvfp4": dict(m=128, d=512, nvfp4=True, hadamard=False, compress="hca512"),
    "csa128-fp8": dict(m=4, d=128, nvfp4=False, hadamard=True, compress="csa128"),
}
ROPE_DIM = 64
EPS = 1e-6
GROUPS = ["write", "stages", "dequant", "selected", "decode"]
SEL_TOKENS, SEL_K = 64, 2048
DECODE_CALLS = 20


def parse_counts(s):
    out = []
    for item in s.split(","):
        item = item.strip()
        if item:
            out.append(int(item[:-1]) * 1024 if item[-1] in "kK" else int(item))
    return out


# --------------------------------------------------------------------------------------------------
# the pipeline in torch

def build_ops(torch):
    """The pipeline's functions, closed over the torch module (imported lazily)."""
    f32 = torch.float32
    FLT_MAX = torch.finfo(f32).max

    def yarn_table(max_pos, rope_dim=ROPE_DIM, theta=160000.0, factor=16.0, original=65536.0,
                   beta_fast=32.0, beta_slow=1.0):
        """DeepSeek's precompute_freqs_cis (YaRN), in float64 on the CPU: cos, sin [max_pos, rope_dim/2] float32."""
        f64 = torch.float64
        half = rope_dim // 2
        freqs = 1.0 / (theta ** (torch.arange(0, rope_dim, 2, dtype=f64) / rope_dim))

        def correction_dim(rotations):
            return rope_dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(theta))

        low = max(math.floor(correction_dim(beta_fast)), 0)
        high = min(math.ceil(correction_dim(beta_slow)), rope_dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(half, dtype=f64) - low) / (high - low), 0, 1)
        smooth = 1 - ramp
        freqs = freqs / factor * (1 - smooth) + freqs * smooth
        angles = torch.outer(torch.arange(max_pos, dtype=f64), freqs)
        return torch.cos(angles).to(f32), torch.sin(angles).to(f32)

    def hadamard_matrix(d, device, dtype):
        h = torch.ones(1, 1, dtype=dtype)
        while h.shape[0] < d:
            h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
        return h.to(device)

    def compress(kv, gate, bias, m, d, dtype=f32):
        """Softmax-gated block compression (SPEC §3): kv, gate [T, c*d], bias [m, c*d] -> [T//m, d]."""
        n = kv.shape[0] // m
        c = kv.shape[1] // d
        v = kv[: n * m].to(dtype).reshape(n, m, c * d)
        z = gate[: n * m].to(dtype).reshape(n, m, c * d) + bias.to(dtype)
        if c == 2:  # CSA: previous block's first half (absent for row 0), current block's second half
            prev_v = torch.cat([torch.zeros_like(v[:1, :, :d]), v[:-1, :, :d]], 0)
            prev_z = torch.cat([torch.full_like(z[:1, :, :d], -math.inf), z[:-1, :, :d]], 0)
            v = torch.cat([prev_v, v[:, :, d:]], 1)
            z = torch.cat([prev_z, z[:, :, d:]], 1)
        w = torch.softmax(z, dim=1)
        return (w * v).sum(dim=1)

    def rmsnorm(y, weight, eps=EPS):
        return y * torch.rsqrt(y.pow(2).mean(dim=-1, keepdim=True) + eps) * weight.to(y.dtype)

    def rope(y, cos, sin):
        """GPT-J interleaved rotation of the last 2*cos.shape[1] channels; cos, sin [n, r/2]."""
        n, d = y.shape
        r = 2 * cos.shape[1]
        pairs = y[:, d - r:].reshape(n, r // 2, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        rotated = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).reshape(n, r)
        return torch.cat([y[:, : d - r], rotated], dim=1)

    def hadamard(y):
        d = y.shape[1]
        h = hadamard_matrix(d, y.device, y.dtype)
        return (y @ h) * (1.0 / math.sqrt(d))

    def rows(kv, gate, bias, norm, cos_t, sin_t, positions, m, d, use_hadamard, dtype=f32):
        """compress -> RMSNorm -> RoPE -> (Hadamard): the FP32 (or dtype) rows before quantization."""
        y = compress(kv, gate, bias, m, d, dtype)
        y = rmsnorm(y, norm)
        y = rope(y, cos_t[positions].to(dtype), sin_t[positions].to(dtype))
        return hadamard(y) if use_hadamard else y

    def e4m3(v):
        """float32 -> float8_e4m3fn, round to nearest even, saturating at +-448 (satfinite)."""
        return v.clamp(-448.0, 448.0).to(torch.float8_e4m3fn)

    def e2m1_codes(v):
        """float32 -> E2M1 codes 0..15 (uint8): nearest of {0, .5, 1, 1.5, 2, 3, 4, 6}, ties to the
        even code, saturating at 6, sign bit 3 kept (also for values that round to 0)."""
        a = v.abs()
        u8 = torch.uint8
        code = ((a > 0.25).to(u8) + (a >= 0.75).to(u8) + (a > 1.25).to(u8) + (a >= 1.75).to(u8)
                + (a > 2.5).to(u8) + (a >= 3.5).to(u8) + (a > 5.0).to(u8))
        return code + torch.signbit(v).to(u8) * 8

    def quantize_nvfp4(x):
        """SPEC §5: x [n, d] float32 -> codes uint8 [n, d/2], block scales float8_e4m3fn [n, d/16], g float32 [n]."""
        n, d = x.shape
        finite = torch.isfinite(x).all(dim=1)
        amax = torch.where(finite, x.abs().amax(dim=1), torch.zeros_like(x[:, 0]))
        s_enc = torch.clamp(torch.full_like(amax, 448.0 * 6.0) / amax, max=FLT_MAX)
        s_enc = torch.where(amax == 0, torch.ones_like(amax), s_enc)
        g = torch.ones_like(s_enc) / s_enc
        sixth = torch.ones_like(s_enc) / torch.full_like(s_enc, 6.0)  # float32(1/6)
        blocks = x.reshape(n, d // 16, 16)
        vmax = blocks.abs().amax(dim=2)
        sf = e4m3(torch.where(finite[:, None], vmax * (s_enc * sixth)[:, None], torch.zeros_like(vmax)))
        sf_value = sf.to(f32)
        mul = torch.clamp(torch.ones_like(sf_value) / (sf_value * g[:, None]), max=FLT_MAX)
        mul = torch.where(sf_value == 0, torch.zeros_like(mul), mul)
        codes = e2m1_codes(blocks * mul[:, :, None]).reshape(n, d // 2, 2)
        packed = codes[..., 0] + codes[..., 1] * 16
        packed = torch.where(finite[:, None], packed, torch.zeros_like(packed))
        g = torch.where(finite, g, torch.full_like(g, math.nan))
        return packed, sf, g

    def quantize_fp8(x, mode="fp32"):
        """SPEC §6: x [n, d] float32 -> codes float8_e4m3fn [n, d], scale float32 [n]."""
        finite = torch.isfinite(x).all(dim=1)
        amax = torch.where(finite, x.abs().amax(dim=1), torch.zeros_like(x[:, 0]))
        ok = finite & (amax != 0)
        if mode == "fp32":
            inv = torch.clamp(torch.full_like(amax, 448.0) / amax, max=FLT_MAX)
            s = amax / torch.full_like(amax, 448.0)
            scaled = x * inv[:, None]
        else:  # pow2: s = 2^ceil(log2(amax / 448)), at least 2^-149
            q = amax.double() / torch.full_like(amax, 448.0, dtype=torch.float64)
            e = torch.ceil(torch.log2(torch.where(ok, q, torch.ones_like(q)))).clamp(min=-149).to(torch.int32)
            bits = torch.where(e >= -126, (e + 127) * (1 << 23), torch.bitwise_left_shift(torch.ones_like(e),
                                                                                        (e + 149).clamp(0, 22)))
            s = bits.view(f32)  # exactly 2^e (subnormal below 2^-126)
            scaled = x / s[:, None]
        codes = e4m3(torch.where(ok[:, None], scaled, torch.zeros_like(scaled)))
        s = torch.where(finite, torch.where(amax == 0, torch.zeros_like(s), s), torch.full_like(s, math.nan))
        return codes, s

    def e2m1_table(device):
        return torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                             -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], dtype=f32, device=device)

    def dequant_nvfp4(codes, sf, g):
        """codes uint8 [..., d/2], sf float8_e4m3fn [..., d/16], g float32 [...] -> bf16 [..., d]:
        e2m1(code) * float(sf) * g, left to right, then rounded to BF16."""
        lut = e2m1_table(codes.device)
        lo = lut[(codes & 15).long()]
        hi = lut[(codes >> 4).long()]
        shape = codes.shape[:-1]
        d = codes.shape[-1] * 2
        v = torch.stack([lo, hi], dim=-1).reshape(*shape, d // 16, 16)
        v = v * sf.to(f32)[..., None] * g[..., None, None]
        return v.reshape(*shape, d).to(torch.bfloat16)

    def dequant_fp8(codes, s):
        return (codes.to(f32) * s[..., None]).to(torch.bfloat16)

    def selected_nvfp4(codes, sf, g, idx):
        """Rows idx [tokens, k] of a pool -> bf16 [tokens, k, d]; -1 or out of range -> zero row."""
        valid = (idx >= 0) & (idx < codes.shape[0])
        safe = torch.where(valid, idx, torch.zeros_like(idx)).long()
        out = dequant_nvfp4(codes[safe], sf[safe], g[safe])
        return torch.where(valid[..., None], out, torch.zeros_like(out))

    def selected_fp8(codes, s, idx):
        valid = (idx >= 0) & (idx < codes.shape[0])
        safe = torch.where(valid, idx, torch.zeros_like(idx)).long()
        out = dequant_fp8(codes[safe], s[safe])
        return torch.where(valid[..., None], out, torch.zeros_like(out))

    return dict(yarn_table=yarn_table, compress=compress, rmsnorm=rmsnorm, rope=rope, hadamard=hadamard,
                rows=rows, quantize_nvfp4=quantize_nvfp4, quantize_fp8=quantize_fp8,
                dequant_nvfp4=dequant_nvfp4, dequant_fp8=dequant_fp8,
                selected_nvfp4=selected_nvfp4, selected_fp8=selected_fp8)


def make_stream_fns(ops, cfg):
    """The write path, compress stage and quantize stage of one stream as plain functions."""
    m, d, nvfp4, had = cfg["m"], cfg["d"], cfg["nvfp4"], cfg["hadamard"]
    quantize = ops["quantize_nvfp4"] if nvfp4 else ops["quantize_fp8"]

    def stage_rows(kv, gate, bias, norm, cos_t, sin_t, positions):
        return ops["rows"](kv, gate, bias, norm, cos_t, sin_t, positions, m, d, had)

    def write(kv, gate, bias, norm, cos_t, sin_t, positions):
        return quantize(stage_rows(kv, gate, bias, norm, cos_t, sin_t, positions))

    return dict(write=write, compress=stage_rows, quantize=quantize)


# --------------------------------------------------------------------------------------------------
# inputs

def make_inputs(torch, cfg, tokens, dtype, seed, device):
    """Projections of realistic scale (the suite's distributions): kv ~ N(0,1) x per-channel scale in
    [1/4, 4); gate ~ N(0,1) x spread in [0.05, 8) + offset ~ N(0, 2); bias ~ N(0, 1/4); norm in [0.5, 1.5)."""
    m, d = cfg["m"], cfg["d"]
    width = (2 if m == 4 else 1) * d
    g = torch.Generator(device="cpu").manual_seed(seed)
    f32 = torch.float32

    def log_uniform(lo, hi, n):
        return lo * (hi / lo) ** torch.rand(n, generator=g, dtype=torch.float64)

    scale = log_uniform(0.25, 4.0, width).to(f32)
    spread = log_uniform(0.05, 8.0, width).to(f32)
    offset = 2.0 * torch.randn(width, generator=g, dtype=f32)
    kv = torch.randn(tokens, width, generator=g, dtype=f32) * scale
    gate = torch.randn(tokens, width, generator=g, dtype=f32) * spread + offset
    bias = 0.5 * torch.randn(m, width, generator=g, dtype=f32)
    norm = (0.5 + torch.rand(d, generator=g, dtype=torch.float64)).to(f32)
    if dtype == "bf16":
        kv, gate, bias = kv.to(torch.bfloat16), gate.to(torch.bfloat16), bias.to(torch.bfloat16)
    return [t.to(device) for t in (kv, gate, bias, norm)]


def tile_rows(torch, base, rows):
    """base [b, ...] repeated to [rows, ...] (row r = base row r % b), like the suite's upload_tiled."""
    reps = -(-rows // base.shape[0])
    return base.repeat(reps, *([1] * (base.dim() - 1)))[:rows].contiguous()


# --------------------------------------------------------------------------------------------------
# timing

class Timer:
    def __init__(self, torch, device, reps, warmup):
        self.torch, self.device, self.reps, self.warmup = torch, device, reps, warmup
        self.flush_buf = None
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            l2 = getattr(props, "L2_cache_size", 50 << 20) or (50 << 20)
            self.flush_buf = torch.ones(4 * l2 // 4, dtype=torch.float32, device=device)

    def flush(self):
        if self.flush_buf is not None:
            self.flush_buf.sum()

    def time(self, fn, flush=True, calls=1):
        """Median microseconds per call of fn(): CUDA events around each run (`calls` back-to-back
        calls per run, no flush, when flush is False)."""
        torch = self.torch
        for _ in range(self.warmup):
            if flush:
                self.flush()
            for _ in range(calls):
                fn()
        us = []
        if self.device.type == "cuda":
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(self.reps)]
            for start, stop in events:
                if flush:
                    self.flush()
                start.record()
                for _ in range(calls):
                    fn()
                stop.record()
            torch.cuda.synchronize()
            us = [start.elapsed_time(stop) * 1000.0 / calls for start, stop in events]
        else:
            for _ in range(self.reps):
                t0 = time.perf_counter()
                for _ in range(calls):
                    fn()
                us.append((time.perf_counter() - t0) * 1e6 / calls)
        us.sort()
        n = len(us)
        return dict(median_us=(us[n // 2] if n % 2 else 0.5 * (us[n // 2 - 1] + us[n // 2])),
                    min_us=us[0], max_us=us[-1], reps=n)


class Compiler:
    """torch.compile with a time budget; failures are recorded, never raised."""

    def __init__(self, torch, enabled, budget_s):
        self.torch, self.enabled, self.budget_s = torch, enabled, budget_s
        self.spent_s = 0.0
        self.failures = 0
        self.cache = {}
        if enabled:
            try:
                import torch._dynamo as dynamo
                for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                             "accumulated_recompile_limit"):
                    if hasattr(dynamo.config, name):
                        setattr(dynamo.config, name, 256)
            except Exception:  # noqa: BLE001 - config names move between versions
                pass

    def get(self, name, fn):
        """The compiled fn, or (None, reason)."""
        if not self.enabled:
            return None, "compile disabled"
        if self.failures >= 2:
            return None, "compile skipped: it failed twice already"
        if self.spent_s > self.budget_s:
            return None, f"compile skipped: budget of {self.budget_s:.0f} s spent"
        if name not in self.cache:
            self.cache[name] = self.torch.compile(fn, dynamic=True)
        return self.cache[name], None

    def first_call(self, compiled, args):
        """Runs the first (compiling) call; returns (output, None) or (None, reason)."""
        t0 = time.perf_counter()
        try:
            out = compiled(*args)
            if self.torch.cuda.is_available():
                self.torch.cuda.synchronize()
            return out, None
        except Exception as e:  # noqa: BLE001 - any compiler error is a result to report
            self.failures += 1
            lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
            return None, "compile failed: " + (type(e).__name__ + ": " + (lines[0] if lines else ""))[:300]
        finally:
            self.spent_s += time.perf_counter() - t0


# --------------------------------------------------------------------------------------------------
# benchmarks

def run_benchmarks(torch, ops, args, device, comp):
    timer = Timer(torch, device, args.reps, args.warmup)
    compile_groups = set(args.compile_groups.split(","))
    results = []
    groups = set(args.only.split(","))
    max_pos = max([131072] + args.sizes)
    cos_t, sin_t = [t.to(device) for t in ops["yarn_table"](max_pos)]

    def record(key, variant, fn, fn_args, group, flush=True, calls=1, compile_fn=None, compile_name=None):
        """Times fn(*fn_args) eager, then compiled (when the group is compiled)."""
        t = timer.time(lambda: fn(*fn_args), flush=flush, calls=calls)
        results.append(dict(key=key, variant="eager" + variant, status="ok", **t))
        print(f"  {key:<44} eager{variant:<8} {t['median_us']:12.1f} us", flush=True)
        if group not in compile_groups or not args.compile:
            return
        compiled, reason = comp.get(compile_name or key, compile_fn or fn)
        if compiled is not None:
            _, reason = comp.first_call(compiled, fn_args)
        if reason is None:
            try:
                t = timer.time(lambda: compiled(*fn_args), flush=flush, calls=calls)
            except Exception as e:  # noqa: BLE001
                reason = f"compiled run failed: {type(e).__name__}: {str(e).strip()[:200]}"
        if reason is None:
            results.append(dict(key=key, variant="compile" + variant, status="ok", **t))
            print(f"  {key:<44} compile{variant:<6} {t['median_us']:12.1f} us", flush=True)
        else:
            results.append(dict(key=key, variant="compile" + variant, status=reason))
            print(f"  {key:<44} compile{variant:<6} {reason}", flush=True)

    seed = 700
    for name, cfg in STREAMS.items():
        fns = make_stream_fns(ops, cfg)
        m, d = cfg["m"], cfg["d"]
        if groups & {"write", "stages"}:
            for tokens in args.sizes:
                for dtype in (["f32", "bf16"] if tokens == 32768 else ["f32"]):
                    seed += 1
                    base = make_inputs(torch, cfg, min(tokens, 8192), dtype, seed, device)
                    kv, gate = tile_rows(torch, base[0], tokens), tile_rows(torch, base[1], tokens)
                    bias, norm = base[2], base[3]
                    n = tokens // m
                    pos = torch.arange(n, device=device) * m
                    wargs = (kv, gate, bias, norm, cos_t, sin_t, pos)
                    tag = f"{name} T={tokens} {dtype}"
                    if "write" in groups:
                        record(f"write {tag}", "", fns["write"], wargs, "write", compile_name=f"write {name}")
                    if "stages" in groups:
                        record(f"compress {cfg['compress']} T={tokens} {dtype}", "", fns["compress"], wargs, "stages",
                               compile_name=f"compress {name}")
                        if dtype == "f32":
                            rows = fns["compress"](*wargs)
                            record(f"quantize {name} T={tokens}", "", fns["quantize"], (rows,), "stages",
                                   compile_name=f"quantize {name}")
                    del kv, gate, base
        if "decode" in groups:
            max_b = max(args.batches)
            seed += 1
            kv, gate, bias, norm = make_inputs(torch, cfg, max_b * m, "f32", seed, device)
            gen = torch.Generator(device="cpu").manual_seed(seed)
            pos_all = (m * (1 + torch.randint(0, max_pos // m - 1, (max_b,), generator=gen))).to(device)
            for b in args.batches:
                wargs = (kv[: b * m], gate[: b * m], bias, norm, cos_t, sin_t, pos_all[:b])
                record(f"decode {name} B={b}", "", fns["write"], wargs, "decode", flush=False, calls=DECODE_CALLS,
                       compile_name=f"write {name}")

    if groups & {"dequant", "selected"}:
        for fmt in ("nvfp4-512", "fp8-128"):
            nvfp4 = fmt.startswith("nvfp4")
            d = 512 if nvfp4 else 128
            gen = torch.Generator(device="cpu").manual_seed(3)
            base = torch.randn(1 << 14, d, generator=gen) * torch.exp2(torch.rand(1 << 14, 1, generator=gen) * 16 - 8)
            base = base.to(device)
            if nvfp4:
                b_codes, b_sf, b_g = ops["quantize_nvfp4"](base)
            else:
                b_codes, b_s = ops["quantize_fp8"](base)
            for rows in (1 << 16, 1 << 20):
                want_all = "dequant" in groups
                want_sel = "selected" in groups and rows == 1 << 20
                if not (want_all or want_sel):
                    continue
                if nvfp4:
                    pool = (tile_rows(torch, b_codes, rows), tile_rows(torch, b_sf.view(torch.uint8), rows).view(
                        torch.float8_e4m3fn), tile_rows(torch, b_g, rows))
                    full_fn, sel_fn = ops["dequant_nvfp4"], ops["selected_nvfp4"]
                else:
                    pool = (tile_rows(torch, b_codes.view(torch.uint8), rows).view(torch.float8_e4m3fn),
                            tile_rows(torch, b_s, rows))
                    full_fn, sel_fn = ops["dequant_fp8"], ops["selected_fp8"]
                if want_all:
                    record(f"dequant {fmt} rows={rows}", "", full_fn, pool, "dequant", compile_name=f"dequant {fmt}")
                if want_sel:
                    gen = torch.Generator(device="cpu").manual_seed(4)
                    idx = torch.randint(0, rows, (SEL_TOKENS, SEL_K), generator=gen, dtype=torch.int32).to(device)
                    record(f"selected {fmt} 64x2048 of {rows}", "", sel_fn, pool + (idx,), "selected",
                           compile_name=f"selected {fmt}")
                del pool
    return results


# --------------------------------------------------------------------------------------------------
# correctness against our library

def rel_error(torch, got, want):
    """max |got - want| / max(|want|, rms(want row)) over all entries (the suite's metric), in float64."""
    got, want = got.double(), want.double()
    rms = want.pow(2).mean(dim=1, keepdim=True).sqrt()
    den = torch.maximum(want.abs(), rms).clamp(min=torch.finfo(torch.float64).tiny)
    err = (got - want).abs() / den
    err = torch.where(torch.isnan(err), torch.full_like(err, math.inf), err)
    return err.max().item() if err.numel() else 0.0


def agreement(a, b):
    """Percent of equal elements of two integer arrays (numpy): bytes, or float32 bit patterns."""
    if a.size == 0:
        return 100.0
    return 100.0 * float((a == b).sum()) / a.size


def run_check(torch, ops, args, device, comp):
    import numpy as np

    report = dict(cases=[], passed=True)
    engines = args.check_engines.split(",")
    cases = [(name, t, "f32") for name in STREAMS for t in args.check_sizes]
    cases.append(("csa512-nvfp4", args.check_sizes[-1], "bf16"))
    with tempfile.TemporaryDirectory(prefix="dsv4kv_peer_") as tmp:
        for name, tokens, dtype in cases:
            cfg = STREAMS[name]
            m, d, nvfp4 = cfg["m"], cfg["d"], cfg["nvfp4"]
            n = tokens // m
            kv, gate, bias, norm = make_inputs(torch, cfg, tokens, dtype, 900 + tokens + m, torch.device("cpu"))
            for tensor, fname in ((kv, "kv"), (gate, "gate"), (bias, "bias"), (norm, "norm")):
                raw = tensor.contiguous().view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor.contiguous()
                raw.numpy().tofile(os.path.join(tmp, fname + ".bin"))
            cos_t, sin_t = ops["yarn_table"](max(tokens, 1))
            pos = torch.arange(n) * m
            fns = make_stream_fns(ops, cfg)
            dev_args = [t.to(device) for t in (kv, gate, bias, norm, cos_t, sin_t, pos)]
            # torch: float32 pipeline (eager) and the float64 reference rows (same float32 table)
            t_rows = fns["compress"](*dev_args).cpu()
            t_out = [t.cpu() for t in fns["write"](*dev_args)]
            ref64 = ops["rows"](*dev_args, m, d, cfg["hadamard"], dtype=torch.float64).cpu()
            compiled_out, compiled_reason = None, None
            if args.compile:
                compiled, compiled_reason = comp.get("write " + name, fns["write"])
                if compiled is not None:
                    out, compiled_reason = comp.first_call(compiled, dev_args)
                    compiled_out = None if out is None else [t.cpu() for t in out]
            case = dict(stream=name, tokens=tokens, dtype=dtype, rows=n, engines={})
            case["torch_rows_vs_f64"] = rel_error(torch, t_rows, ref64)
            for engine in engines:
                cmd = [args.check_bin, "--stream", name, "--tokens", str(tokens), "--dtype", dtype, "--dir", tmp,
                       "--engine", engine]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")

                def load(suffix, dt, shape):
                    return np.fromfile(os.path.join(tmp, f"{engine}_{suffix}"), dtype=dt).reshape(shape)

                o_rows = torch.from_numpy(load("rows.f32", np.float32, (n, d)).copy())
                o_codes = load("codes.u8", np.uint8, (n, d // 2 if nvfp4 else d))
                o_scale = load("global.f32", np.float32, (n,))
                o_sf = load("block_scales.u8", np.uint8, (n, d // 16)) if nvfp4 else None
                o_dq = load("dequant.bf16", np.uint16, (n, d))
                o_cos = load("rope_cos.f32", np.float32, (-1,))
                o_sin = load("rope_sin.f32", np.float32, (-1,))
                e = dict()
                e["rows_vs_f64"] = rel_error(torch, o_rows, ref64)
                e["rows_vs_torch"] = rel_error(torch, o_rows, t_rows)

                def stored_bytes(out):
                    """(codes, block scales, scales) of a torch quantizer result as numpy uint8."""
                    if nvfp4:
                        c, sf, g = out
                        return (c.numpy(), sf.view(torch.uint8).numpy(), g.numpy().view(np.uint32))
                    c, s = out
                    return (c.view(torch.uint8).numpy(), None, s.numpy().view(np.uint32))

                ours = (o_codes, o_sf, o_scale.view(np.uint32))  # scales compared as whole float32 bit patterns
                names = ("codes", "block_scales", "scales")

                def compare(theirs):
                    return {k: agreement(a.reshape(-1), b.reshape(-1)) for k, a, b in zip(names, ours, theirs)
                            if a is not None}

                e["bytes_end_to_end_pct"] = compare(stored_bytes(t_out))
                quant = ops["quantize_nvfp4"] if nvfp4 else ops["quantize_fp8"]
                q_on_ours = [t.cpu() for t in quant(o_rows.to(device))]
                e["quantizer_on_our_rows_pct"] = compare(stored_bytes(q_on_ours))
                if compiled_out is not None:
                    e["bytes_end_to_end_compiled_pct"] = compare(stored_bytes(compiled_out))
                else:
                    e["bytes_end_to_end_compiled_pct"] = compiled_reason or "compile disabled"
                if nvfp4:
                    dq = ops["dequant_nvfp4"](torch.from_numpy(o_codes.copy()).to(device),
                                              torch.from_numpy(o_sf.copy()).view(torch.float8_e4m3fn).to(device),
                                              torch.from_numpy(o_scale.copy()).to(device))
                else:
                    dq = ops["dequant_fp8"](torch.from_numpy(o_codes.copy()).view(torch.float8_e4m3fn).to(device),
                                            torch.from_numpy(o_scale.copy()).to(device))
                t_dq = dq.cpu().view(torch.int16).numpy().view(np.uint16)
                e["dequant_pct"] = agreement(t_dq.reshape(-1), o_dq.reshape(-1))  # BF16 values
                # end to end: torch's stored rows decoded by torch vs ours decoded by us
                if nvfp4:
                    t_e2e = ops["dequant_nvfp4"](*[t.to(device) for t in t_out])
                else:
                    t_e2e = ops["dequant_fp8"](*[t.to(device) for t in t_out])
                t_e2e = t_e2e.cpu().view(torch.int16).numpy().view(np.uint16)
                e["dequant_end_to_end_pct"] = agreement(t_e2e.reshape(-1), o_dq.reshape(-1))
                e["rope_table_max_abs_diff"] = max(float(np.abs(o_cos - cos_t.numpy().reshape(-1)).max()),
                                                   float(np.abs(o_sin - sin_t.numpy().reshape(-1)).max()))
                ok = (e["rows_vs_f64"] <= 1e-5 and all(v == 100.0 for v in e["quantizer_on_our_rows_pct"].values())
                      and e["dequant_pct"] == 100.0)
                e["passed"] = ok
                report["passed"] = report["passed"] and ok
                case["engines"][engine] = e
                bee = " ".join(f"{k} {v:.4f}%" for k, v in e["bytes_end_to_end_pct"].items())
                qor = " ".join(f"{k} {v:.2f}%" for k, v in e["quantizer_on_our_rows_pct"].items())
                print(f"check {name} T={tokens} {dtype} vs {engine}: {'ok' if ok else 'FAIL'}\n"
                      f"    rows: ours vs f64 {e['rows_vs_f64']:.2e}, torch vs f64 {case['torch_rows_vs_f64']:.2e}, "
                      f"ours vs torch {e['rows_vs_torch']:.2e}\n"
                      f"    stored bytes equal end to end: {bee}; decoded BF16 values equal end to end: "
                      f"{e['dequant_end_to_end_pct']:.4f}%\n"
                      f"    torch quantizer on our rows: {qor}; torch dequant of our rows: {e['dequant_pct']:.2f}%; "
                      f"rope table max |diff| {e['rope_table_max_abs_diff']:.2e}", flush=True)
                cb = e["bytes_end_to_end_compiled_pct"]
                if isinstance(cb, dict):
                    print("    torch.compile bytes equal end to end: " +
                          " ".join(f"{k} {v:.4f}%" for k, v in cb.items()), flush=True)
                else:
                    print(f"    torch.compile: {cb}", flush=True)
            report["cases"].append(case)
    return report


# --------------------------------------------------------------------------------------------------
# our time / theirs

def compare(ours_path, torch_path):
    """Prints, per operation key, our median time and torch's (eager, compiled) and their ratio."""
    with open(ours_path) as f:
        ours = json.load(f)
    with open(torch_path) as f:
        theirs = json.load(f)
    torch_by_key, ours_by_key = {}, {}
    for r in theirs.get("results", []):
        torch_by_key.setdefault(r["key"], {})[r["variant"]] = r
    for r in ours.get("results", []):
        ours_by_key.setdefault(r["key"], {})[r["variant"]] = r
    print(f"\nours on {ours['device']['name']} vs torch {theirs.get('torch_version', '?')} on "
          f"{theirs.get('device', {}).get('name', '?')}: median us per call; x = torch time / our time "
          f"(> 1: ours is faster).\nours = the default call (fused write path, direct decode call); "
          f"alt = our two-kernel chain / CUDA-graph replay")
    hdr = f"{'op':<40} {'ours':>9} {'alt':>9} {'torch eager':>11} {'x':>7} {'compiled':>10} {'x':>7}"
    print(hdr)
    print("-" * len(hdr))
    for key, variants in ours_by_key.items():
        pick = next((v for v in ("fused", "call", "") if v in variants), next(iter(variants)))
        alt = {"fused": "two-kernel", "call": "graph"}.get(pick)
        alt = alt if alt in variants else None
        mine = variants[pick]["median_us"]
        alt_cell = f"{variants[alt]['median_us']:9.1f}" if alt else f"{'-':>9}"
        t = torch_by_key.get(key, {})

        def cell(variant, width):
            r = t.get(variant)
            if r is None:
                return f"{'-':>{width}} {'':>7}"
            if r.get("status") != "ok":
                return f"{'n/a':>{width}} {'':>7}"
            return f"{r['median_us']:{width}.1f} {r['median_us'] / mine:6.1f}x"

        print(f"{key:<40} {mine:9.1f} {alt_cell} {cell('eager', 11)} {cell('compile', 10)}")
    reasons = sorted({r["status"] for rs in torch_by_key.values() for r in rs.values() if r.get("status", "ok") != "ok"})
    for reason in reasons:
        print(f"n/a: {reason}")
    check = theirs.get("check")
    if check:
        print(f"torch cross-check: {'passed' if check.get('passed') else 'FAILED'} (details in the torch peer log)")


# --------------------------------------------------------------------------------------------------

def main(argv):
    if argv and argv[0] == "compare":
        if len(argv) != 3:
            print("usage: torch_peer.py compare OURS.json TORCH.json", file=sys.stderr)
            return 2
        compare(argv[1], argv[2])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="write results (and the cross-check) as JSON")
    p.add_argument("--only", default=",".join(GROUPS), help="comma list of " + ", ".join(GROUPS))
    p.add_argument("--sizes", type=parse_counts, default=[4096, 32768, 131072])
    p.add_argument("--batches", type=parse_counts, default=[1, 4, 16, 64, 256])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--compile-groups", default="write,dequant,selected,decode",
                   help="groups also timed under torch.compile (default: all but stages)")
    p.add_argument("--compile-budget-s", type=float, default=240.0,
                   help="stop compiling new functions after this many seconds of compilation")
    p.add_argument("--check-bin", help="benchmarks/dsv4kv_run_write_path: cross-check torch against it")
    p.add_argument("--check-engines", default=None, help="gpu,host (default: gpu on CUDA, host on CPU)")
    p.add_argument("--check-sizes", type=parse_counts, default=[32768])
    p.add_argument("--check-only", action="store_true", help="the cross-check only, no timings")
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    args = p.parse_args(argv)

    import torch

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    if args.check_engines is None:
        args.check_engines = "gpu" if device.type == "cuda" else "host"
    if device.type != "cuda" and args.compile:
        args.compile = False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {name}; torch.compile {'on' if args.compile else 'off'}", flush=True)
    ops = build_ops(torch)
    out = dict(benchmark="torch_peer", torch_version=torch.__version__, date=time.strftime("%Y-%m-%dT%H:%M:%SZ",
               time.gmtime()), device=dict(name=name, cuda=getattr(torch.version, "cuda", None)), results=[])
    passed = True
    comp = Compiler(torch, args.compile, args.compile_budget_s)  # one cache and budget for the whole run
    if args.check_bin:
        try:
            out["check"] = run_check(torch, ops, args, device, comp)
            passed = out["check"]["passed"]
        except Exception as e:  # noqa: BLE001 - report, keep the timings
            traceback.print_exc()
            out["check"] = dict(passed=False, error=str(e)[:500])
            passed = False
    if not args.check_only:
        out["results"] = run_benchmarks(torch, ops, args, device, comp)
    out["compile_seconds"] = round(comp.spent_s, 1)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")
    if args.check_bin:
        print(f"cross-check against dsv4kv: {'passed' if passed else 'FAILED'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
