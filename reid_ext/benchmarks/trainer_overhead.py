"""Trainer overhead: ``reid_ext.engine.Trainer`` vs fastreid's own ``DefaultTrainer``.

    python -m reid_ext.benchmarks.trainer_overhead [--config-file configs/quickstart.yml]
        [--iters 16 | --epochs E] [--warmup 6] [--alternations 2] [--device cpu|cuda]
        [--threads N] [--json PATH] [--in-process] [KEY VALUE ...]

The same config (default: the quickstart, ResNet-18 from scratch on SynthPerson, 128x64,
batch 64) is trained for ``--iters`` iterations (or, with ``--iters 0``, ``--epochs``
whole epochs: SOLVER.MAX_EPOCH) by (a) ``fastreid.engine.DefaultTrainer``
("plain") and (b) ``reid_ext.engine.Trainer`` ("ours"), each in a fresh subprocess,
alternating a, b, a, b ... ``--alternations`` times. Same config, data, batch, seed
(set before the trainer is built), torch threads; trailing KEY VALUE pairs override the
config for both. Evaluation is disabled in both (fastreid's ``EvalHook`` is taken out of
the hook list and the loop is ``TrainerBase.train``, which ``DefaultTrainer.train`` calls,
without its check that an evaluation ran; with ``--iters N`` the loop runs one "epoch"
of N iterations); checkpoints, schedulers and writers are left as built.

Timed: every iteration from the ``before_step`` of a hook placed first to the
``after_step`` of a hook placed last, i.e. data loading, forward, backward, optimizer
and every hook (writers, LR schedulers); the first ``--warmup`` iterations are
dropped; s/iteration = the mean of the rest (CUDA: synchronised at both ends). Also
reported: fastreid's ``IterationTimer`` "time" (the step without most hooks),
``optimizer.step`` time and whether the weights moved. Overhead = ours / plain - 1, from
the median over the runs of each trainer; goal <= 5 %, judged like for like (without
``optimizer.step``, see below). On CUDA the training throughput (images/s) of both is
reported as well.

What the plain side needs from us (fastreid's files are not touched):
- ``import reid_ext`` first (its shims make ``fastreid.data``/``fastreid.engine``
  import on Python 3.11 / torch 2) and reid_ext's config (a superset of fastreid's);
- ``MODEL.DEVICE`` cpu|cuda (fastreid has no "auto"); ``SOLVER.AMP.ENABLED`` off for both:
  fastreid's AMPTrainer asserts CUDA, and on torch 2 its ``GradScaler.step`` finds no
  gradient on the optimizer's parameters (see below) and raises "No inf checks were
  recorded for this optimizer", so fastreid can only train in float32 here;
- on CPU only, its train loader: fastreid's ``DataLoaderX`` creates a CUDA stream, so
  the subclass builds fastreid's own dataset (``CommDataset``), transforms, sampler and
  collator into a plain ``torch.utils.data.DataLoader``; on CUDA it is ``DataLoaderX``.
  Synthetic datasets get their ``DATASETS.SYNTH`` sizes, as reid_ext's loader does.
fastreid's trainer calls ``optimizer.zero_grad()``: on torch 2 that sets the gradients
to None, its ``ContiguousParams`` buffer never receives one, the optimizer step updates
nothing and no weight moves. Its iterations still do the same data loading, forward,
loss and backward; only the optimizer update (an Adam step over every weight: several %
of a CPU iteration) is missing. The overhead is therefore given both ways: raw
(ours / plain - 1) and like for like (each side's ``optimizer.step`` time taken out),
and the goal is judged on the like-for-like figure.

``--in-process`` (a check for shared machines, not used by the benchmark page): both
trainers in one process, their ``run_step`` alternated iteration by iteration, so that
drifting load hits both alike; it times the step only (no hooks).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from reid_ext.benchmarks import save_json

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CONFIG = "configs/quickstart.yml"
GOAL = 0.05  # overhead of ours over plain fastreid


def _resolve_config(path):
    if os.path.isfile(path):
        return os.path.abspath(path)
    cand = os.path.join(REPO, path)
    return cand if os.path.isfile(cand) else path


# ----------------------------------------------------------------------------- worker
def _build_cfg(spec):
    from reid_ext.config import get_cfg, merge_from_file
    cfg = get_cfg()
    merge_from_file(cfg, spec["config"])
    cfg.merge_from_list(list(spec["opts"]))
    cfg.MODEL.DEVICE = spec["device"]
    cfg.SOLVER.AMP.ENABLED = False  # fastreid's AMPTrainer cannot run on torch 2 (module docstring)
    cfg.SOLVER.MAX_EPOCH = spec["epochs"]
    cfg.TEST.EVAL_PERIOD = 10 ** 6
    cfg.OUTPUT_DIR = spec["output_dir"]
    cfg.freeze()
    return cfg


def _plain_trainer_class(device):
    """fastreid's DefaultTrainer; on CPU with a train loader that does not need CUDA."""
    import torch
    from fastreid.data.build import (_train_loader_from_config, build_reid_train_loader,
                                     fast_batch_collator)
    from fastreid.data.common import CommDataset
    from fastreid.data.datasets import DATASET_REGISTRY
    from fastreid.data.transforms import build_transforms
    from fastreid.engine import DefaultTrainer
    from fastreid.utils import comm

    class PlainFastreidTrainer(DefaultTrainer):
        @classmethod
        def build_train_loader(cls, cfg):
            root = os.getenv("FASTREID_DATASETS", "datasets")
            items = []
            for name in cfg.DATASETS.NAMES:
                ds_cls = DATASET_REGISTRY.get(name)
                kwargs = ds_cls.cfg_kwargs(cfg) if hasattr(ds_cls, "cfg_kwargs") else {}
                items.extend(ds_cls(root=root, combineall=cfg.DATASETS.COMBINEALL, **kwargs).train)
            train_set = CommDataset(items, build_transforms(cfg, is_train=True), relabel=True)
            parts = _train_loader_from_config(cfg, train_set=train_set)
            if str(cfg.MODEL.DEVICE).startswith("cuda"):
                return build_reid_train_loader(**parts)  # fastreid's DataLoaderX
            batch_sampler = torch.utils.data.BatchSampler(
                parts["sampler"], parts["total_batch_size"] // comm.get_world_size(), True)
            return torch.utils.data.DataLoader(train_set, batch_sampler=batch_sampler,
                                               num_workers=parts["num_workers"],
                                               collate_fn=fast_batch_collator)

    return PlainFastreidTrainer


def _build_trainer(spec):
    """(trainer, sync function) for spec["trainer"] in {"plain", "ours"}, seeded."""
    import torch
    from fastreid.utils.env import seed_all_rng
    from reid_ext.engine import Trainer
    cfg = _build_cfg(spec)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)  # fastreid's default_setup would create it
    device = torch.device(cfg.MODEL.DEVICE)
    seed_all_rng(max(cfg.SEED, 0))
    cls = _plain_trainer_class(cfg.MODEL.DEVICE) if spec["trainer"] == "plain" else Trainer
    trainer = cls(cfg)
    trainer.resume_or_load(resume=False)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return trainer, sync


def _time_optimizer_step(trainer, sync, times):
    """Append the duration of every ``optimizer.step`` call to ``times``."""
    opt = trainer.optimizer
    step = opt.step

    def timed_step(*a, **k):
        sync()
        t0 = time.perf_counter()
        out = step(*a, **k)
        sync()
        times.append(time.perf_counter() - t0)
        return out

    opt.step = timed_step


def worker(spec):
    import reid_ext  # noqa: F401  (shims before any fastreid.data / fastreid.engine import)
    import torch
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    from fastreid.engine import hooks
    from fastreid.engine.train_loop import HookBase, TrainerBase

    trainer, sync = _build_trainer(spec)
    cfg = trainer.cfg
    device = torch.device(cfg.MODEL.DEVICE)
    cls = type(trainer)
    starts, ends, opt_times = [], [], []

    class Stamp(HookBase):
        def __init__(self, when):
            self.when = when

        def before_step(self):
            if self.when == "start":
                sync()
                starts.append(time.perf_counter())

        def after_step(self):
            if self.when == "end":
                sync()
                ends.append(time.perf_counter())

    trainer._hooks = [h for h in trainer._hooks if not isinstance(h, hooks.EvalHook)]
    trainer.register_hooks([Stamp("start"), Stamp("end")])
    trainer._hooks.insert(0, trainer._hooks.pop(-2))  # start stamp first, end stamp last

    _time_optimizer_step(trainer, sync, opt_times)
    first = next(p for p in trainer.model.parameters() if p.requires_grad)
    before = first.detach().clone()
    if spec["iters"]:
        TrainerBase.train(trainer, trainer.start_epoch, trainer.start_epoch + 1, spec["iters"])
    else:
        TrainerBase.train(trainer, trainer.start_epoch, trainer.max_epoch, trainer.iters_per_epoch)
    moved = not torch.equal(before, first.detach())

    w = spec["warmup"]
    per_iter = [e - s for s, e in zip(starts, ends)][w:]
    if not per_iter:
        raise ValueError(f"{len(starts)} iterations, none left after --warmup {w}: "
                         f"raise --iters / --epochs or lower --warmup")
    hist = trainer.storage.history
    step_t = [v for v, it in hist("time").values() if it >= w]
    data_t = [v for v, it in hist("data_time").values() if it >= w]
    opt_t = opt_times[w:]
    res = {"trainer": spec["trainer"], "class": f"{cls.__module__}.{cls.__qualname__}",
           "device": str(device), "threads": torch.get_num_threads(),
           "amp": bool(cfg.SOLVER.AMP.ENABLED), "iters": len(starts), "timed_iters": len(per_iter),
           "batch": int(cfg.SOLVER.IMS_PER_BATCH),
           "s_per_iter": statistics.mean(per_iter), "s_per_iter_median": statistics.median(per_iter),
           "step_s": statistics.mean(step_t) if step_t else None,
           "data_s": statistics.mean(data_t) if data_t else None,
           "opt_step_s": statistics.mean(opt_t) if opt_t else 0.0,
           "weights_updated": moved}
    res["images_per_s"] = res["batch"] / res["s_per_iter"]
    print("RESULT " + json.dumps(res), flush=True)


def in_process(spec_base, iters, warmup):
    """Both trainers built in this process, their ``run_step`` alternated iteration by
    iteration (plain, ours, ours, plain, ...): a check that drifting machine load cannot
    bias; it times the step alone (data, forward, backward, optimizer; no hooks)."""
    import reid_ext  # noqa: F401
    import torch
    if spec_base["threads"]:
        torch.set_num_threads(spec_base["threads"])
    from fastreid.utils.events import EventStorage
    trainers, times, opt_times = {}, {}, {}
    for name in ("plain", "ours"):
        spec = dict(spec_base, trainer=name, output_dir=os.path.join(spec_base["output_dir"], name))
        trainers[name] = _build_trainer(spec)
        times[name], opt_times[name] = [], []
        _time_optimizer_step(*trainers[name], opt_times[name])
    with EventStorage(0):
        for i in range(iters):
            order = ("plain", "ours") if i % 4 in (0, 3) else ("ours", "plain")
            for name in order:
                trainer, sync = trainers[name]
                trainer._trainer.iter = i
                sync()
                t0 = time.perf_counter()
                trainer._trainer.run_step()
                sync()
                times[name].append(time.perf_counter() - t0)
    res = {}
    for name in trainers:
        t, o = times[name][warmup:], opt_times[name][warmup:]
        res[name] = {"s_per_iter": statistics.mean(t), "opt_step_s": statistics.mean(o) if o else 0.0}
    pairs = [a / b for a, b in zip(times["ours"][warmup:], times["plain"][warmup:])]
    p, o = res["plain"], res["ours"]
    res.update(iters=iters, warmup=warmup, overhead=o["s_per_iter"] / p["s_per_iter"] - 1,
               overhead_excl_opt_step=(o["s_per_iter"] - o["opt_step_s"])
               / (p["s_per_iter"] - p["opt_step_s"]) - 1,
               median_pair_ratio=statistics.median(pairs))
    return res


# ----------------------------------------------------------------------------- parent
def _spawn(spec, timeout):
    cmd = [sys.executable, "-m", "reid_ext.benchmarks.trainer_overhead", "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{spec['trainer']} run timed out after {timeout} s") from None
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not line:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{spec['trainer']} run failed (exit {proc.returncode}):\n{tail}")
    return json.loads(line[0][len("RESULT "):])


def _summary(runs, key):
    return statistics.median(r[key] for r in runs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", default=DEFAULT_CONFIG)
    p.add_argument("--iters", type=int, default=16, help="iterations per run (0 = --epochs epochs)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per run (SOLVER.MAX_EPOCH) "
                   "when --iters is 0")
    p.add_argument("--warmup", type=int, default=6, help="iterations dropped at the start of each run")
    p.add_argument("--alternations", type=int, default=2, help="plain, ours pairs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per run")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--in-process", action="store_true",
                   help="instead: both trainers in this process, steps alternated (no hooks)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides (both trainers)")
    args = p.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))

    import torch
    threads = args.threads or torch.get_num_threads()
    config = _resolve_config(args.config_file)
    dev_name = (torch.cuda.get_device_name() if args.device.startswith("cuda")
                else platform.processor() or platform.machine())
    length = f"{args.iters} iterations" if args.iters else f"{args.epochs} epoch(s)"
    print(f"device {args.device} ({dev_name}), torch {torch.__version__}, {threads} threads; "
          f"config {args.config_file} {' '.join(args.opts)}; {length} per run, first "
          f"{args.warmup} iterations dropped, {args.alternations} alternation(s)", flush=True)
    work = tempfile.mkdtemp(prefix="trainer_overhead_")
    if args.in_process:
        if not args.iters:
            p.error("--in-process needs --iters")
        try:
            res = in_process({"config": config, "opts": args.opts, "device": args.device,
                              "threads": threads, "epochs": args.epochs, "output_dir": work},
                             args.iters, args.warmup)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        pl, ou = res["plain"], res["ours"]
        print(f"in one process, steps alternated: plain {pl['s_per_iter']:.4f} s/step "
              f"(optimizer.step {pl['opt_step_s'] * 1e3:.1f} ms), ours {ou['s_per_iter']:.4f} s/step "
              f"(optimizer.step {ou['opt_step_s'] * 1e3:.1f} ms) over {args.iters - args.warmup} "
              f"steps each: raw {res['overhead'] * 100:+.1f}%, like for like "
              f"{res['overhead_excl_opt_step'] * 100:+.1f}%, median per-pair ratio "
              f"{res['median_pair_ratio']:.3f}")
        return save_json(args.json, res)
    runs = {"plain": [], "ours": []}
    try:
        for a in range(args.alternations):
            for name in ("plain", "ours"):
                spec = {"trainer": name, "config": config, "opts": args.opts, "device": args.device,
                        "threads": threads, "epochs": args.epochs, "iters": args.iters,
                        "warmup": args.warmup,
                        "output_dir": os.path.join(work, f"{name}{a}")}
                r = _spawn(spec, args.timeout)
                runs[name].append(r)
                print(f"run {a + 1} {name:5s}: {r['s_per_iter']:.4f} s/iter (median "
                      f"{r['s_per_iter_median']:.4f}) over {r['timed_iters']} of {r['iters']} iters; "
                      f"step (IterationTimer) {r['step_s'] or 0:.4f} s, data {r['data_s'] or 0:.4f} s, "
                      f"optimizer.step {r['opt_step_s'] * 1e3:.1f} ms; {r['images_per_s']:.1f} img/s; "
                      f"weights updated: {r['weights_updated']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    plain, ours = runs["plain"], runs["ours"]
    sp, so = _summary(plain, "s_per_iter"), _summary(ours, "s_per_iter")
    op, oo = _summary(plain, "opt_step_s"), _summary(ours, "opt_step_s")
    overhead = so / sp - 1
    overhead_like = (so - oo) / (sp - op) - 1
    res = {"config": args.config_file, "opts": args.opts, "device": args.device,
           "device_name": dev_name, "threads": threads, "epochs": args.epochs, "iters": args.iters,
           "warmup": args.warmup, "alternations": args.alternations,
           "batch": ours[0]["batch"], "amp": ours[0]["amp"],
           "plain_s_per_iter": sp, "ours_s_per_iter": so,
           "plain_opt_step_s": op, "ours_opt_step_s": oo,
           "plain_images_per_s": _summary(plain, "images_per_s"),
           "ours_images_per_s": _summary(ours, "images_per_s"),
           "plain_weights_updated": all(r["weights_updated"] for r in plain),
           "ours_weights_updated": all(r["weights_updated"] for r in ours),
           "overhead": overhead, "overhead_excl_opt_step": overhead_like,
           "goal": GOAL, "met": overhead_like <= GOAL, "runs": plain + ours}
    print(f"\nplain fastreid DefaultTrainer {sp:.4f} s/iter, reid_ext Trainer {so:.4f} s/iter "
          f"(medians of {args.alternations} runs each): raw overhead {overhead * 100:+.1f}%")
    print(f"like for like, without optimizer.step (plain {op * 1e3:.1f} ms, ours {oo * 1e3:.1f} ms "
          f"per iteration): overhead {overhead_like * 100:+.1f}% (goal <= {GOAL * 100:.0f}%: "
          f"{'met' if res['met'] else 'not met'})")
    if args.device.startswith("cuda"):
        print(f"GPU training throughput: plain {res['plain_images_per_s']:.0f} img/s, "
              f"ours {res['ours_images_per_s']:.0f} img/s")
    if not res["plain_weights_updated"]:
        print("note: fastreid's DefaultTrainer left the weights unchanged (torch 2's "
              "zero_grad(set_to_none=True) + its ContiguousParams: the optimizer sees no "
              "gradient); it did the same data loading, forward, loss and backward")
    return save_json(args.json, res)


if __name__ == "__main__":
    main()
