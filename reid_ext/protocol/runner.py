"""Run many trainings (variants x splits) of one evaluation protocol, reusing and resuming.

A *protocol* (e.g. :mod:`reid_ext.protocol.viper`) is a list of :class:`Variant` s: a
config (+ overrides) trained and evaluated on each of its splits. Each run is one
``reid_ext.train_net`` subprocess with its own ``OUTPUT_DIR``; when it finishes, a small
results file is written (and meant to be committed):

    <results_dir>/<variant>/split<k>.json
      {"variant", "split", "config", "opts", "config_hash", "metrics": {...},
       "variants": {...}, "cpu_seconds", "wall_seconds", "threads", "machine", ...}

A run is *reused* when its results file exists with the same ``config_hash`` (a hash of
where the merged config differs from the defaults, OUTPUT_DIR left out), *resumed* (``--resume``) when its output folder
has a checkpoint of the same config, and started afresh otherwise. Several runs go in
parallel (``jobs``), each with ``threads`` OpenMP threads; progress and an ETA are logged.

A variant may start from another variant's trained model of the same split
(``weights_from``; ``{weights}`` in its opts becomes that run's ``model_final.pth``),
e.g. a re-ranking evaluated on the baseline's checkpoint (``eval_only``) or the NFormer
stage 2 on the frozen baseline encoder. Its config hash includes the other run's, and
when that checkpoint is not on disk (a fresh clone keeps only the results files) the
other run is trained first, in the same protocol call.
"""
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

from reid_ext.config import get_cfg, merge_from_file

logger = logging.getLogger(__name__)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a protocol table.

    name: id used in folders and on the command line; label: the table's text;
    config: yml path (relative to the repository); opts: extra KEY VALUE overrides;
    splits: the splits it runs on by default; baseline: the variant it is compared with
    (paired, on the splits both have); note: one line for the table.
    """
    name: str
    label: str
    config: str
    opts: tuple = ()
    splits: tuple = tuple(range(10))
    baseline: str = ""
    note: str = ""
    weights_from: str = ""  # variant whose final checkpoint of the split this run reads
    eval_only: bool = False  # evaluate the {weights} checkpoint only (--eval-only)


@dataclasses.dataclass
class Protocol:
    """name, variants, results_dir (committed results files), logs_dir (outputs),
    split_opts(split) -> overrides selecting a split, test_set: the results.json key,
    num_splits: how many splits the protocol has."""
    name: str
    variants: list
    results_dir: str
    logs_dir: str
    split_opts: object
    test_set: str
    num_splits: int = 10

    def variant(self, name):
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"unknown variant '{name}' of protocol {self.name}; known: "
                       f"{', '.join(v.name for v in self.variants)}")


def resolve(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def run_dir(protocol, name, split):
    """The run's OUTPUT_DIR, relative to the repository."""
    return os.path.join(protocol.logs_dir, name, f"split{split}")


def weights_path(protocol, variant, split):
    """The final checkpoint of ``variant.weights_from`` on ``split`` (relative)."""
    return os.path.join(run_dir(protocol, variant.weights_from, split), "model_final.pth")


def run_opts(protocol, variant, split):
    opts = list(variant.opts)
    if variant.weights_from:
        opts = [o.replace("{weights}", weights_path(protocol, variant, split)) for o in opts]
    return [*opts, *protocol.split_opts(split), "OUTPUT_DIR", run_dir(protocol, variant.name, split)]


def _flat(node, prefix=""):
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def config_diff(protocol, variant, split):
    """{key: value} of the merged config of one run where it differs from the defaults
    (OUTPUT_DIR left out): what the run is, unchanged when a new key is added elsewhere."""
    cfg = get_cfg()
    merge_from_file(cfg, resolve(variant.config))
    cfg.merge_from_list(run_opts(protocol, variant, split))
    default, own = _flat(get_cfg()), _flat(cfg)
    return {k: v for k, v in sorted(own.items())
            if k != "OUTPUT_DIR" and (k not in default or default[k] != v)}


def config_hash(protocol, variant, split):
    """sha256 (12 hex) of :func:`config_diff` (and of the run it starts from, if any)."""
    key = config_diff(protocol, variant, split)
    if variant.weights_from:
        key = {"run": key, "eval_only": variant.eval_only,
               "weights_from": config_hash(protocol, protocol.variant(variant.weights_from), split)}
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def results_file(protocol, variant, split):
    return resolve(os.path.join(protocol.results_dir, variant.name, f"split{split}.json"))


def load_result(path):
    with open(path) as f:
        return json.load(f)


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), platform.processor())
    except OSError:
        model = platform.processor()
    import torch
    return (f"{platform.machine()} {model}, {os.cpu_count()} cores; Python "
            f"{platform.python_version()}, torch {torch.__version__}")


@dataclasses.dataclass
class Job:
    variant: Variant
    split: int
    hash: str
    needs: str = ""  # key of the job that must finish first (it trains the weights read)

    @property
    def key(self):
        return f"{self.variant.name}/split{self.split}"


def plan(protocol, variants, splits=None, rerun=False):
    """(jobs to run, results files reused) for the selected variants and splits; split by
    split, so that an interrupted protocol leaves every variant on the same first splits."""
    todo, reused = [], []
    pairs = [(s, i, v) for i, v in enumerate(variants)
             for s in (v.splits if splits is None else splits)]
    for s, _, v in sorted(pairs, key=lambda p: p[:2]):
        h = config_hash(protocol, v, s)
        path = results_file(protocol, v, s)
        if not rerun and os.path.exists(path) and load_result(path).get("config_hash") == h:
            reused.append(path)
        else:
            todo.append(Job(v, s, h))
    return _with_dependencies(protocol, todo), reused


def _with_dependencies(protocol, todo):
    """Put before each job that reads another run's checkpoint that run, when its
    checkpoint is neither on disk nor produced by a job already planned."""
    out, keys = [], set()
    for job in todo:
        chain, v = [], job.variant
        while v.weights_from:
            dep = protocol.variant(v.weights_from)
            dep_job = Job(dep, job.split, config_hash(protocol, dep, job.split))
            stamp = os.path.join(_out_dir(protocol, dep_job), "protocol_hash.txt")
            ready = (os.path.exists(resolve(weights_path(protocol, v, job.split)))
                     and os.path.exists(stamp) and open(stamp).read().strip() == dep_job.hash)
            if ready or dep_job.key in keys:
                break
            chain.insert(0, dep_job)
            v = dep
        for j in chain + [job]:
            if j.key in keys:
                continue
            if j.variant.weights_from:
                j.needs = f"{j.variant.weights_from}/split{j.split}"
            keys.add(j.key)
            out.append(j)
    return out


def _out_dir(protocol, job):
    return resolve(os.path.join(protocol.logs_dir, job.variant.name, f"split{job.split}"))


def run_one(protocol, job, datasets, threads):
    """Train + evaluate one run in a subprocess; write and return its results file."""
    out = _out_dir(protocol, job)
    stamp = os.path.join(out, "protocol_hash.txt")
    if os.path.isdir(out) and (not os.path.exists(stamp) or open(stamp).read().strip() != job.hash):
        shutil.rmtree(out)  # outputs of another config: start afresh
    os.makedirs(out, exist_ok=True)
    with open(stamp, "w") as f:
        f.write(job.hash + "\n")
    eval_only = job.variant.eval_only
    resume = not eval_only and os.path.exists(os.path.join(out, "last_checkpoint"))
    if os.path.exists(os.path.join(out, "results.json")):
        os.remove(os.path.join(out, "results.json"))
    if job.variant.weights_from:
        weights = resolve(weights_path(protocol, job.variant, job.split))
        if not os.path.exists(weights):
            raise RuntimeError(f"{job.key} needs {weights} ({job.variant.weights_from} on split "
                               f"{job.split}), which is missing")
    cmd = [sys.executable, "-m", "reid_ext.train_net", "--config-file", resolve(job.variant.config),
           *(["--eval-only"] if eval_only else []), *(["--resume"] if resume else []),
           *run_opts(protocol, job.variant, job.split)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "FASTREID_DATASETS": datasets, "PYTHONUNBUFFERED": "1"}
    t0 = time.time()
    with open(os.path.join(out, "protocol_stdout.log"), "a") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{job.key} failed (exit {proc.returncode}); see "
                           f"{os.path.join(out, 'protocol_stdout.log')}")
    with open(os.path.join(out, "results.json")) as f:
        res = json.load(f)[protocol.test_set]
    metrics = {k: v for k, v in res.items() if not isinstance(v, dict)}
    record = {
        "protocol": protocol.name, "variant": job.variant.name, "split": job.split,
        "config": job.variant.config, "opts": list(job.variant.opts),
        "config_hash": job.hash, "config_diff": config_diff(protocol, job.variant, job.split),
        "metrics": metrics,
        "variants": {k: v for k, v in res.items() if isinstance(v, dict)},
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "wall_seconds": round(wall, 1),
        "threads": threads, "resumed": resume, "machine": machine(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    path = results_file(protocol, job.variant, job.split)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, path)
    return path


def run_protocol(protocol, jobs_list, datasets, jobs=1, threads=1, keep_going=False):
    """Run ``jobs_list`` with ``jobs`` in parallel; log progress and an ETA.
    Returns the failures as [(job key, error)]."""
    total, done, failures = len(jobs_list), [], []
    lock = threading.Condition()
    queue = list(jobs_list)
    running, failed = set(), set()
    t_start = time.time()

    def next_job():
        """The first queued job whose prerequisite is neither queued nor running (a job
        whose prerequisite failed fails too); None when the queue is empty."""
        while queue:
            pending = {j.key for j in queue} | running
            for i, job in enumerate(queue):
                if job.needs in failed:
                    queue.pop(i)
                    failed.add(job.key)
                    failures.append((job.key, f"not run: {job.needs} failed"))
                    break
                if job.needs not in pending:
                    return queue.pop(i)
            else:
                lock.wait()
        return None

    def worker():
        while True:
            with lock:
                job = None if failures and not keep_going else next_job()
                if job is None:
                    lock.notify_all()
                    return
                running.add(job.key)
                logger.info("[%d/%d] start %s (config %s)", total - len(queue), total, job.key,
                            job.hash)
            t0 = time.time()
            try:
                run_one(protocol, job, datasets, threads)
            except Exception as e:  # reported with the run's key; the others go on if asked
                with lock:
                    running.discard(job.key)
                    failed.add(job.key)
                    failures.append((job.key, str(e)))
                    logger.error("%s", e)
                    lock.notify_all()
                continue
            with lock:
                running.discard(job.key)
                lock.notify_all()
                done.append(time.time() - t0)
                left = total - len(done) - len(failures)
                eta = (time.time() - t_start) / len(done) * left
                logger.info("[%d/%d done] %s in %.0f s; ETA of the rest %s", len(done), total,
                            job.key, done[-1], datetime.timedelta(seconds=int(eta)))

    threads_ = [threading.Thread(target=worker) for _ in range(max(1, jobs))]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    return failures
