"""Benchmark: C2F attention vs full attention through the fused kernel vs fastreid's non-local block.

    python -m reid_ext.benchmarks.c2f [--device cpu|cuda] [--batch 1] [--backbone-batch 2]
                                      [--repeats 3] [--skip-materialized-above 0] [--out FILE.md]
                                      [--maps 96x96x256 48x48x512] [--kinds ...] [--json PATH]

Every case runs in a fresh subprocess: forward + backward of one attention block
(norm scale set to 1 so the attention path is live) on a (B, C, H, W) map, at the layer-1
(96x96x256) and layer-2 (48x48x512) maps of a 384x384 input to a ResNet-50, and one
training step (forward + backward) of the whole ResNet-50 backbone at 384x384 with
attention blocks at fastreid's non-local placement [0, 2, 3, 0].

Measured:
- time: median wall time of ``--repeats`` fwd+bwd passes after one warm-up pass;
- peak memory (the goal's figure): the most tensor memory allocated during one fwd+bwd
  above what was allocated before it. On CUDA ``torch.cuda.max_memory_allocated`` over
  the timed passes; on CPU the same quantity from the allocator events of the torch
  profiler, over one extra pass (so the profiler costs no timed pass);
- RSS growth (CPU, secondary): growth of the process's peak resident set size from
  just before the first pass, after one pass of the same block on an 8x8 map has paged
  in the code of its kernels. It also counts allocator caches and fragmentation and
  moves by about +-10 MB from run to run at these sizes;
- kernel: which ``scaled_dot_product_attention`` implementation ran, from the same
  profiled pass (aten op names: ``..._flash_attention_for_cpu``, ``..._flash_attention``,
  ``..._efficient_attention``, ``..._cudnn_attention`` are fused, ``..._attention_math``
  is the fallback that stores the attention map). The ``full`` case runs under
  ``torch.nn.attention.sdpa_kernel`` restricted to the fused backends, so a fallback to the
  math path makes it fail (and the script exit non-zero) instead of measuring the wrong
  baseline.

Kinds: ``c2f`` (ours), ``full`` (exact attention through the fused
``scaled_dot_product_attention`` on contiguous (B, heads, HW, d) q/k/v), ``full-materialized``
(the same attention computing the (HW)^2 map explicitly: what classic self-attention code,
and the paper, compare against), ``nonlocal`` (``fastreid.layers.Non_local``: inner width 1,
1/N-normalised, materialises the (HW)^2 map), ``none`` (backbone only).
``--maps`` replaces the two block maps and ``--kinds`` the four block kinds (c2f is
always run: it is the reference of the ratios), e.g. for a quick run; ``main``
returns the results as a dict (also written to ``--json``).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from reid_ext.benchmarks import save_json

BLOCK_MAPS = [(96, 96, 256), (48, 48, 512)]
BLOCK_KINDS = ["c2f", "full", "full-materialized", "nonlocal"]
BACKBONE_KINDS = ["none", "c2f", "full", "nonlocal"]


def _build_block(kind, channels, heads, patch):
    from fastreid.layers import Non_local
    from reid_ext.modeling.backbones.c2f import C2FAttention, FullSelfAttention
    if kind == "c2f":
        m = C2FAttention(channels, heads, patch)
    elif kind == "full":
        m = FullSelfAttention(channels, heads)
    elif kind == "full-materialized":
        m = FullSelfAttention(channels, heads, materialize=True)
    elif kind == "nonlocal":
        m = Non_local(channels, "BN")
    else:
        raise ValueError(f"unknown block kind {kind!r}")
    norm = m.W[1] if kind == "nonlocal" else m.norm
    import torch
    torch.nn.init.ones_(norm.weight)  # make the attention path live
    return m


def _build_backbone(kind, device):
    from fastreid.modeling.backbones import build_backbone
    from reid_ext.config import get_cfg
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_resnet_c2f_backbone"
    cfg.MODEL.BACKBONE.DEPTH = "50x"
    cfg.MODEL.BACKBONE.WITH_IBN = True
    cfg.MODEL.BACKBONE.LAST_STRIDE = 1
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.BACKBONE.ATTENTION.TYPE = kind
    cfg.MODEL.BACKBONE.ATTENTION.LAYERS = [0, 2, 3, 0]
    return build_backbone(cfg).to(device)


FUSED_BACKENDS = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION")


def sdpa_kernels(names):
    """The forward ``scaled_dot_product_attention`` implementations among profiler op names,
    shortened (``flash_attention_for_cpu``, ``efficient_attention``, ``attention_math``, ...)."""
    pre = "aten::_scaled_dot_product_"
    return sorted({n[len(pre):] for n in names if n.startswith(pre) and not n.endswith("_backward")})


def is_math(kernel):
    return kernel.startswith("attention_math")


def _profiled_pass(step, dev):
    """One fwd+bwd under the torch profiler: (SDPA kernels, CPU peak allocated bytes above
    the start, from the allocator events)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=dev.type == "cpu") as prof:
        step()
    kernels = sdpa_kernels({e.key for e in prof.key_averages()})
    live = peak = 0
    if dev.type == "cpu":
        events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                        if e.name() == "[memory]" and e.device_type().name == "CPU")
        for _, nbytes in events:
            live += nbytes
            peak = max(peak, live)
    return kernels, peak


def run_case(case):
    """Run one case in this process; returns a dict (time_s, peak_mb, rss_mb, kernels)."""
    import contextlib
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    torch.manual_seed(0)
    dev = torch.device(case["device"])
    if case["what"] == "block":
        model = _build_block(case["kind"], case["c"], case["heads"], case["patch"]).to(dev)
        x = torch.randn(case["batch"], case["c"], case["h"], case["w"], device=dev, requires_grad=True)
    else:
        model = _build_backbone(case["kind"], dev)
        x = torch.randn(case["batch"], 3, 384, 384, device=dev)
    model.train()
    # the fused baseline must not silently fall back to the math path: restrict SDPA to
    # the fused backends, so a fallback raises "No available kernel" in this case
    fused = [getattr(SDPBackend, b) for b in FUSED_BACKENDS]

    def attention_ctx():
        return sdpa_kernel(fused) if case["kind"] == "full" else contextlib.nullcontext()

    def fwd_bwd():
        with attention_ctx():
            y = model(x)
        y.float().square().mean().backward()

    def step():
        model.zero_grad(set_to_none=True)
        fwd_bwd()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if case["what"] == "block" and dev.type == "cpu":
        # one pass of the same block on an 8x8 map first: the code of its kernels is then
        # paged in, so the RSS growth below is (mostly) memory the big map needs
        small = _build_block(case["kind"], case["c"], case["heads"], case["patch"])
        with attention_ctx():
            out = small(torch.randn(1, case["c"], 8, 8, requires_grad=True))
        out.square().mean().backward()
        del small, out
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    step()
    sync()
    times = []
    for _ in range(case["repeats"]):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    model.zero_grad(set_to_none=True)
    kernels, cpu_peak = _profiled_pass(fwd_bwd, dev)
    sync()
    if dev.type == "cpu":
        peak = cpu_peak
    return {"time_s": statistics.median(times), "peak_mb": peak / 2 ** 20,
            "rss_mb": rss_mb if dev.type == "cpu" else None, "kernels": kernels}


def _spawn(case, timeout):
    cmd = [sys.executable, "-m", "reid_ext.benchmarks.c2f", "--case", json.dumps(case)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout {timeout}s"}
    if res.returncode != 0:
        tail = (res.stderr or "").strip().splitlines()[-1:] or [f"exit {res.returncode}"]
        return {"error": tail[0][:120]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _fmt(r):
    if "error" in r:
        return "—", "—", "—", "—"
    kernel = ", ".join(r["kernels"]) or "— (no SDPA)"
    rss = "—" if r.get("rss_mb") is None else f"{r['rss_mb']:.0f}"
    return kernel, f"{r['time_s'] * 1000:.0f}", f"{r['peak_mb']:.1f}", rss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=1, help="batch of the block cases")
    ap.add_argument("--backbone-batch", type=int, default=2, help="batch of the 384x384 backbone step")
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads in each case (0 = default)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per case")
    ap.add_argument("--skip-materialized-above", type=int, default=0,
                    help="skip full-materialized blocks with H*W above this (0 = never skip)")
    ap.add_argument("--no-backbone", action="store_true")
    ap.add_argument("--out", help="also write the markdown table to this file")
    ap.add_argument("--maps", nargs="+", default=[f"{h}x{w}x{c}" for h, w, c in BLOCK_MAPS],
                    help="block maps as HxWxC")
    ap.add_argument("--kinds", nargs="+", default=BLOCK_KINDS, choices=BLOCK_KINDS,
                    help="block kinds to run (c2f is always run)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    kinds = [k for k in BLOCK_KINDS if k == "c2f" or k in args.kinds]

    if args.case:
        case = json.loads(args.case)
        import torch
        if case.get("threads"):
            torch.set_num_threads(case["threads"])
        import reid_ext  # noqa: F401
        print(json.dumps(run_case(case)))
        return

    common = {"device": args.device, "repeats": args.repeats, "heads": args.heads,
              "patch": args.patch, "threads": args.threads}
    lines = []
    out = {"device": args.device, "batch": args.batch, "heads": args.heads, "patch": args.patch,
           "repeats": args.repeats, "blocks": [], "backbone": {}}

    def emit(s=""):
        print(s, flush=True)
        lines.append(s)

    import torch
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else None
    out["device_name"] = device_name
    emit(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
         f"torch {torch.__version__}, device {args.device}" + (f" ({device_name})" if device_name else ""))
    emit(f"block cases: batch {args.batch}, heads {args.heads}, patch {args.patch}; "
         f"backbone: ResNet-50-IBN, last stride 1, 384x384, batch {args.backbone_batch}, "
         f"attention layers [0, 2, 3, 0]; median of {args.repeats} fwd+bwd after 1 warm-up; "
         f"peak = most tensor memory allocated in one fwd+bwd")
    emit()
    emit("| map (H×W×C) | block | SDPA kernel | fwd+bwd ms | peak MB | RSS growth MB | time vs c2f "
         "| memory vs c2f |")
    emit("|---|---|---|---|---|---|---|---|")
    for h, w, c in [tuple(int(v) for v in m.lower().split("x")) for m in args.maps]:
        results = {}
        for kind in kinds:
            if kind == "full-materialized" and args.skip_materialized_above and h * w > args.skip_materialized_above:
                results[kind] = {"error": "skipped"}
                continue
            results[kind] = _spawn(dict(common, what="block", kind=kind, batch=args.batch, h=h, w=w, c=c),
                                   args.timeout)
        ref = results["c2f"]
        out["blocks"].append({"h": h, "w": w, "c": c, "results": results})
        for kind in kinds:
            r = results[kind]
            if "error" in r or "error" in ref:
                rt = rm = r.get("error", "—")
            else:
                rt = f"{r['time_s'] / ref['time_s']:.1f}×"
                rm = f"{r['peak_mb'] / max(ref['peak_mb'], 1e-9):.2f}×"
            emit(f"| {h}×{w}×{c} | {kind} | {' | '.join(_fmt(r))} | {rt} | {rm} |")
    if not args.no_backbone:
        emit()
        emit("| backbone 384×384 | SDPA kernel | fwd+bwd ms | peak MB | RSS growth MB | time vs none |")
        emit("|---|---|---|---|---|---|")
        results = {k: _spawn(dict(common, what="backbone", kind=k, batch=args.backbone_batch), args.timeout)
                   for k in BACKBONE_KINDS}
        out["backbone"] = results
        for kind in BACKBONE_KINDS:
            r, ref = results[kind], results["none"]
            rel = (f"{r['time_s'] / ref['time_s']:.2f}×" if "error" not in r and "error" not in ref
                   else r.get("error", "—"))
            emit(f"| {kind} | {' | '.join(_fmt(r))} | {rel} |")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    save_json(args.json, out)
    # the reference must be the fused kernel: a fallback (or a failed fused case) is an error
    bad = [f"{b['h']}x{b['w']}x{b['c']}: {r.get('error') or ', '.join(r['kernels'])}"
           for b in out["blocks"] for kind, r in b["results"].items()
           if kind == "full" and ("error" in r or not r["kernels"] or any(map(is_math, r["kernels"])))]
    if bad:
        raise SystemExit("error: the fused full attention did not run a fused SDPA kernel ("
                         + "; ".join(bad) + ")")
    return out


if __name__ == "__main__":
    main()
