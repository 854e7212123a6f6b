"""Start a run as one or several processes through ``torch.distributed``, on CPU or GPU.

Replaces fastreid's ``launch`` (which asserts CUDA and hard-codes NCCL):

- ``--num-gpus N`` (per machine) x ``--num-machines M``: ``torch.multiprocessing`` starts
  N processes per machine; they join one process group at ``--dist-url`` (``tcp://host:port``,
  ``auto`` = a free local port, or ``env://``). Backend: NCCL when the model runs on CUDA
  (one GPU per process, as fastreid), gloo otherwise (``MODEL.DEVICE cpu`` or no GPU).
- started by ``torchrun`` (or any launcher that sets ``RANK``, ``WORLD_SIZE``,
  ``MASTER_ADDR``, ``MASTER_PORT``): the process joins the group through ``env://``;
  under SLURM (``srun``) with ``--dist-url env://``, ``SLURM_PROCID``, ``SLURM_NTASKS``,
  ``SLURM_LOCALID`` and ``SLURM_NODEID`` stand in for the torchrun variables.
- fastreid's ``fastreid.utils.comm`` helpers then work as under fastreid's own launch:
  ``get_rank``, ``get_world_size``, ``synchronize``, ``gather``/``all_gather`` (through
  gloo), and ``get_local_rank``/``get_local_size`` (``comm._LOCAL_PROCESS_GROUP`` is set
  to the processes of this machine).

Failures: a process that raises reports its error; the first one to fail in the whole job
prints it (one message, see :mod:`reid_ext.utils.errors`). When a process dies, the
launcher on its machine stops the others at once and names the rank; processes on other
machines stop when their next collective fails, at the latest after ``timeout`` seconds.
"""
import datetime
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException, ProcessRaisedException
from fastreid.utils import comm

from ..utils.errors import ProcessGroupError, debug_enabled, describe, is_user_error

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 1800  # collectives (and the rendezvous) give up after this long
_FAILED_KEY = "reid_ext/failed"  # store counter: the first process to fail reports
_ALIVE_KEY = "reid_ext/alive"  # roll call after a lost connection


def backend_for(device):
    """"nccl" for a CUDA device, "gloo" for anything else."""
    return "nccl" if str(device).startswith("cuda") else "gloo"


@dataclass
class Rendezvous:
    """Where this process stands in the job and how it finds the others."""
    rank: int
    world_size: int
    local_rank: int
    node: str  # processes with the same node share comm._LOCAL_PROCESS_GROUP
    init_method: str


def env_rendezvous(environ=None, dist_url=None):
    """The rendezvous that ``torchrun`` (or SLURM with ``--dist-url env://``) describes in
    the environment, or None when this process was not started that way."""
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env and "MASTER_ADDR" in env:
        node = env.get("GROUP_RANK", env.get("SLURM_NODEID", socket.gethostname()))
        return Rendezvous(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)),
                          str(node), "env://")
    if dist_url == "env://" and "SLURM_PROCID" in env:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in env]
        if missing:
            raise ProcessGroupError(
                f"--dist-url env:// under SLURM needs {' and '.join(missing)} in the environment "
                f"(e.g. export MASTER_ADDR=$(scontrol show hostnames $SLURM_JOB_NODELIST | "
                f"head -n 1) MASTER_PORT=29500 in the batch script)")
        return Rendezvous(int(env["SLURM_PROCID"]), int(env.get("SLURM_NTASKS", 1)),
                          int(env.get("SLURM_LOCALID", 0)), str(env.get("SLURM_NODEID", "0")),
                          "env://")
    if dist_url == "env://":
        raise ProcessGroupError("--dist-url env:// needs RANK, WORLD_SIZE, MASTER_ADDR and "
                                "MASTER_PORT in the environment (torchrun sets them) or SLURM's "
                                "SLURM_PROCID/SLURM_NTASKS (srun)")
    return None


def env_rank(dist_url=None, environ=None):
    """This process's rank as the launcher's environment says (0 when none does)."""
    env = os.environ if environ is None else environ
    if "RANK" in env:
        return int(env["RANK"])
    if dist_url == "env://" and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"])
    return 0


def free_port():
    """A free TCP port on 127.0.0.1 (it may be taken again before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- process group

def gpu_of(local_rank, visible):
    """The GPU index of a process: its local rank, or 0 when the launcher shows each
    process only its own GPU (e.g. SLURM with --gpus-per-task 1)."""
    if local_rank < visible:
        return local_rank
    if visible == 1:
        return 0
    raise ProcessGroupError(
        f"local rank {local_rank} but {visible} GPU(s) are visible to this process: start at "
        f"most that many processes per machine, or use MODEL.DEVICE cpu")


def init_process_group(rdv, backend, timeout=DEFAULT_TIMEOUT_S):
    """Join the group described by ``rdv`` and set fastreid's local process group.

    Raises :class:`ProcessGroupError` naming the rank and the address when the group does
    not form within ``timeout`` seconds.
    """
    if backend == "nccl":
        torch.cuda.set_device(gpu_of(rdv.local_rank, torch.cuda.device_count()))
    where = rdv.init_method
    if where == "env://":
        where = f"env:// ({os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')})"
    try:
        dist.init_process_group(backend, init_method=rdv.init_method, world_size=rdv.world_size,
                                rank=rdv.rank, timeout=datetime.timedelta(seconds=timeout))
        comm.synchronize()  # as fastreid: a first collective, so that a timeout shows here
    except (RuntimeError, ValueError) as e:  # DistStoreError, DistNetworkError, gloo errors
        raise ProcessGroupError(
            f"could not form the process group of {rdv.world_size} processes "
            f"({backend}) at {where} within {timeout:g} s: {_first_line(e)}. Check that every "
            f"process was started (--num-machines, --machine-rank, --num-gpus), that the "
            f"address is reachable from every machine and the port is free "
            f"(--dist-url tcp://HOST:PORT, or --dist-url auto on one machine)") from None
    _set_local_process_group(rdv.node)


def _set_local_process_group(node):
    """``comm._LOCAL_PROCESS_GROUP``: the ranks that run on the same machine as this one
    (fastreid's ``get_local_rank``/``get_local_size`` read it)."""
    nodes = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, str(node))
    order = sorted(set(nodes), key=nodes.index)  # same order on every rank
    for key in order:  # every rank creates every group, in the same order
        group = dist.new_group([r for r, n in enumerate(nodes) if n == key])
        if key == str(node):
            comm._LOCAL_PROCESS_GROUP = group


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- reporting

def _claim_report(rdv):
    """Whether this failing process is the one that reports (exactly one per job when the
    group has formed: the first to increment a counter in the rendezvous store)."""
    if dist.is_available() and dist.is_initialized():
        try:
            store = dist.distributed_c10d._get_default_store()
            return store.add(_FAILED_KEY, 1) == 1
        except Exception:  # the store's host is gone: report, better twice than never
            return True
    # before the group formed: every process fails the same way; the first of each
    # machine reports (a process group that cannot form is seen on every machine)
    return rdv is None or rdv.local_rank == 0


def _lost_peer(exc):
    text = str(exc)
    return any(s in text for s in ("Connection closed by peer", "Connection reset by peer",
                                   "Broken pipe", "NCCL communicator was aborted"))


def _roll_call(rdv, wait_s):
    """The ranks that do not answer within ``wait_s`` seconds (stopped, or stuck), asked
    through the rendezvous store; raises if the store itself is unreachable."""
    store = dist.distributed_c10d._get_default_store()
    store.set(f"{_ALIVE_KEY}/{rdv.rank}", "1")
    others = [r for r in range(rdv.world_size) if r != rdv.rank]
    deadline = time.monotonic() + wait_s
    while True:
        silent = [r for r in others if not store.check([f"{_ALIVE_KEY}/{r}"])]
        if not silent or time.monotonic() > deadline:
            return silent
        time.sleep(0.2)


def _explain(exc, rdv, wait_s=5):
    """The error a survivor gets when another process died, as a ProcessGroupError that
    names the ranks which no longer answer."""
    if rdv is None or is_user_error(exc) or not _lost_peer(exc):
        return exc
    try:
        silent = _roll_call(rdv, wait_s)
        who = (f"rank{'s' if len(silent) > 1 else ''} {', '.join(map(str, silent))} stopped "
               f"(no answer within {wait_s} s)" if silent else "another process stopped")
    except Exception:  # noqa: BLE001
        who = ("rank 0, which hosts the rendezvous store, stopped" if rdv.rank else
               "the rendezvous store is unreachable")
    return ProcessGroupError(
        f"lost the connection to the other processes: {who}; its own error is in its "
        f"output or log (OUTPUT_DIR/log.txt.rank<N>). ({_first_line(exc)})")


def run_and_report(main_func, args, rdv, debug, report_queue=None):
    """Run ``main_func(*args)``; on an exception, report it (once per job) and exit 1.

    With ``report_queue`` (processes started by :func:`launch`) the report goes to the
    launcher, which prints it; otherwise the reporting process prints it on stderr.
    """
    try:
        return main_func(*args)
    except Exception as e:  # noqa: BLE001  (every failure is reported, then the process exits)
        exc = _explain(e, rdv)
        first = _claim_report(rdv)
        rank, world = (rdv.rank, rdv.world_size) if rdv is not None else (None, 1)
        text = describe(exc, debug, rank, world)
        if report_queue is not None:
            report_queue.put((rank, first, text))
        elif first:
            print(text, file=sys.stderr, flush=True)
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(1)  # not sys.exit: a writer or loader thread could keep the process alive


def _worker(local_rank, main_func, args, world_size, nproc, machine_rank, init_method, backend,
            timeout, debug, report_queue):
    rdv = Rendezvous(machine_rank * nproc + local_rank, world_size, local_rank,
                     str(machine_rank), init_method)
    os.environ.update(RANK=str(rdv.rank), LOCAL_RANK=str(local_rank),
                      WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(nproc))
    if backend == "gloo" and "OMP_NUM_THREADS" not in os.environ:
        # CPU processes share the cores (torch would give each process all of them)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    run_and_report(_join_then(main_func, rdv, backend, timeout), args, rdv, debug, report_queue)
    dist.destroy_process_group()


def _join_then(main_func, rdv, backend, timeout):
    def run(*args):
        init_process_group(rdv, backend, timeout)
        return main_func(*args)
    return run


def run_env_process(main_func, args, rdv, device, timeout=DEFAULT_TIMEOUT_S, debug=False):
    """This process is one rank of the job (started by torchrun/srun, or the only process
    of its machine): join, run, and on failure print the report (once per job) and exit 1."""
    backend = backend_for(device)
    result = run_and_report(_join_then(main_func, rdv, backend, timeout), args, rdv, debug)
    dist.destroy_process_group()
    return result


def launch(main_func, num_gpus_per_machine, num_machines=1, machine_rank=0, dist_url=None,
           args=(), device="cpu", timeout=DEFAULT_TIMEOUT_S, debug=False, log_dir="OUTPUT_DIR"):
    """Run ``main_func(*args)`` in every process of the job (fastreid's ``launch``
    signature, plus ``device`` (MODEL.DEVICE: cuda -> NCCL, else gloo), ``timeout`` in
    seconds, ``debug`` and ``log_dir``, where the processes log, named in messages).

    - ``num_machines * num_gpus_per_machine == 1``: runs ``main_func`` here, no group
      (exceptions propagate);
    - started by torchrun / srun (see :func:`env_rendezvous`), or one process per machine
      on several machines: this process is one rank; it joins the group and runs
      ``main_func``; on an exception it prints the report (if first in the job) and exits 1;
    - else starts ``num_gpus_per_machine`` processes here (ranks ``machine_rank * N + i``)
      and waits; when one fails or dies, stops the others and raises
      :class:`LaunchFailure`, whose ``text`` is the report of the first failing process
      (or, when it died without one, its rank, pid and exit code or signal).
    Returns ``main_func``'s result where it ran in this process, else None.
    """
    debug = debug_enabled(debug)
    rdv = env_rendezvous(dist_url=dist_url)
    if rdv is not None:
        if num_gpus_per_machine * num_machines > 1:
            raise ProcessGroupError(
                f"started by torchrun/srun (RANK={rdv.rank}, WORLD_SIZE={rdv.world_size}): the "
                f"launcher sets the number of processes; drop --num-gpus/--num-machines")
        if rdv.world_size > 1:
            return run_env_process(main_func, args, rdv, device, timeout, debug)
        return main_func(*args)
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        return main_func(*args)
    backend = backend_for(device)
    if backend == "nccl" and num_gpus_per_machine > torch.cuda.device_count():
        raise ProcessGroupError(
            f"--num-gpus {num_gpus_per_machine} but {torch.cuda.device_count()} GPU(s) are "
            f"visible here; lower --num-gpus, or add MODEL.DEVICE cpu for CPU processes")
    if not dist_url or dist_url == "auto":
        if num_machines > 1:
            raise ProcessGroupError("--dist-url auto only works on one machine; give "
                                    "--dist-url tcp://HOST:PORT of machine rank 0")
        dist_url = f"tcp://127.0.0.1:{free_port()}"
    if num_gpus_per_machine == 1:  # one process on this machine: this one
        rdv = Rendezvous(machine_rank, world_size, 0, str(machine_rank), dist_url)
        return run_env_process(main_func, args, rdv, device, timeout, debug)
    return _spawn(main_func, args, num_gpus_per_machine, world_size, machine_rank, dist_url,
                  backend, timeout, debug, log_dir)


class LaunchFailure(ProcessGroupError):
    """A process of a job started by :func:`launch` failed; ``text`` is what to print
    (its own report, or what is known of a process that died without one)."""

    def __init__(self, text, rank):
        super().__init__(text)
        self.text, self.rank = text, rank


def _spawn(main_func, args, nproc, world_size, machine_rank, dist_url, backend, timeout, debug,
           log_dir):
    reports = mp.get_context("spawn").SimpleQueue()
    quiet_cpp = not debug and backend == "gloo" and "TORCH_CPP_LOG_LEVEL" not in os.environ
    if quiet_cpp:  # C++ stack dumps of the TCP store's retries; the Python error says it all
        os.environ["TORCH_CPP_LOG_LEVEL"] = "FATAL"
    spawn_log = logging.getLogger("torch.multiprocessing.spawn")
    level = spawn_log.level
    spawn_log.setLevel(logging.ERROR)  # "Terminating process ...": we name the rank ourselves
    try:
        procs = mp.start_processes(
            _worker, args=(main_func, args, world_size, nproc, machine_rank, dist_url, backend,
                           timeout, debug, reports), nprocs=nproc, join=False, start_method="spawn")
        if quiet_cpp:
            del os.environ["TORCH_CPP_LOG_LEVEL"]
            quiet_cpp = False
        try:
            while not procs.join():
                pass
        except ProcessException as e:  # exited/killed (ProcessExited), or raised
            raise _failure(e, reports, machine_rank * nproc, world_size, log_dir) from None
    finally:
        if quiet_cpp:
            del os.environ["TORCH_CPP_LOG_LEVEL"]
        spawn_log.setLevel(level)
    return None


def _failure(exc, reports, first_rank, world_size, log_dir):
    """The error of a job whose local process ``exc.error_index`` stopped first."""
    got = {}
    while not reports.empty():
        rank, _first, text = reports.get()
        got.setdefault(rank, text)
    rank = first_rank + exc.error_index
    if rank in got:
        return LaunchFailure(got[rank], rank)
    if isinstance(exc, ProcessRaisedException):  # failed outside run_and_report
        return LaunchFailure(f"reid-train: rank {rank} of {world_size} failed:{exc}", rank)
    how = (f"was killed by signal {exc.signal_name}" if getattr(exc, "signal_name", None)
           else f"exited with code {exc.exit_code}")
    log = os.path.join(log_dir, "log.txt" + (f".rank{rank}" if rank else ""))
    return LaunchFailure(
        f"reid-train: rank {rank} of {world_size} (pid {exc.error_pid}) {how} without an error "
        f"message; the other processes of this machine were stopped. Its last log lines are "
        f"in {log}", rank)
