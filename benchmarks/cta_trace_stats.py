#!/usr/bin/env python3
"""Summarizes the per-CTA trace records of benchmarks/run_cta_trace.sh (4 x u64 per CTA: entry, after
the row, exit in ns, smid | blockIdx << 16 | gridDim << 40): per launch the span, CTA lifetimes
(row phase, quantization tail), the first wave, and live CTAs per SM. Usage: DIR [--timeline]."""
import sys, glob, os
import numpy as np
for path in sorted(glob.glob(sys.argv[1] + '/*.bin')):
    r = np.fromfile(path, dtype=np.uint64).reshape(-1, 4)
    if len(r) == 0: continue
    t0 = r[:, 0].astype(np.int64); tm = r[:, 1].astype(np.int64); te = r[:, 2].astype(np.int64)
    sm = (r[:, 3] & 0xFFFF).astype(int); bid = ((r[:, 3] >> 16) & 0xFFFFFF).astype(int)
    base = t0.min(); t0 -= base; tm -= base; te -= base
    span = te.max() / 1000
    life = (te - t0) / 1000; row = (tm - t0) / 1000; tail = (te - tm) / 1000
    # live CTAs over time (per 0.5 us bins), averaged per SM
    nb = int(span / 0.5) + 1
    live = np.zeros(nb)
    for a, b in zip(t0, te):
        live[int(a / 500):int(b / 500) + 1] += 1
    nsm = len(set(sm))
    first = t0 < 300  # CTAs launched at the start
    name = os.path.basename(path)[:-4]
    print(f"{name:28s} CTAs {len(r):6d} SMs {nsm:3d} span {span:6.1f} us | life med {np.median(life):5.2f} p10 {np.percentile(life,10):5.2f} p90 {np.percentile(life,90):5.2f} | row {np.median(row):5.2f} tail {np.median(tail):5.2f} | wave1 {first.sum():4d} life {np.median(life[first]):5.2f} | last start {t0.max()/1000:6.1f} | ctas/SM live med {np.median(live[:-2])/nsm:4.2f}")
    if len(sys.argv) > 2:
        print('   live/SM per us:', ' '.join(f"{x/nsm:.1f}" for x in live[::2]))
