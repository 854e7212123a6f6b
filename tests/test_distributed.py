"""Two processes on CPU through torch.distributed (gloo), as CI runs them.

- an in-process session (reid_ext.engine.launch.launch spawning 2 processes): fastreid's
  comm helpers, one training step equal to one process on the same global batch, the
  evaluator's gather on a test set that does not divide by 2;
- checkpoints written once, ``--resume`` from the same epoch in every process;
- ``reid-train --num-gpus 2`` on the Combined project (SFT + AdaSP + SSR codes + LBR, then
  the NFormer stage 2) with the hash-code export;
- ``torchrun --nproc_per_node 2 -m reid_ext.train_net``;
- a process that dies: the others stop with an error naming its rank.
Each run is kept tiny: the cost is mostly the start of the processes.
"""
import glob
import json
import os
import re
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from reid_ext.config import get_cfg, merge_from_file
from reid_ext.data import build_dataset, build_test_loader
from reid_ext.engine import Trainer, inference_on_dataset
from reid_ext.engine.launch import env_rank, env_rendezvous, free_port, gpu_of, launch
from reid_ext.evaluation import ReidExtEvaluator
from reid_ext.utils.errors import ConfigValueError, ProcessGroupError

from conftest import ROOT
from test_training import QUICKSTART, TINY

COMBINED = os.path.join(ROOT, "projects", "Combined", "configs")
SMALL = TINY + ["DATASETS.SYNTH.SIZE", "[96, 48]", "INPUT.SIZE_TRAIN", "[96, 48]",
                "INPUT.SIZE_TEST", "[96, 48]", "TEST.HASH.AFR_W", "10"]
# BN-free training (frozen backbone BN, no BN neck), CE only (a mean over the images),
# no random augmentation and plain SGD: one step is a function of the global batch only.
# TrainingSampler: process r takes images r, r+2, ... of the one-process stream (fastreid's
# identity samplers draw identities per process batch, so their stream depends on the
# number of processes).
STEP = ["DATALOADER.SAMPLER_TRAIN", "TrainingSampler", "MODEL.LOSSES.NAME",
        '("CrossEntropyLoss",)', "MODEL.BACKBONE.NORM", "FrozenBN", "MODEL.HEADS.WITH_BNNECK",
        "False", "INPUT.FLIP.ENABLED", "False",
        "INPUT.PADDING.ENABLED", "False", "INPUT.REA.ENABLED", "False", "SOLVER.OPT", "SGD",
        "SOLVER.BASE_LR", "0.5", "SEED", "0"]
EVAL = ["DATASETS.SYNTH.NUM_TEST_IDS", "5", "TEST.IMS_PER_BATCH", "4", "SEED", "0"]  # 21 items


def _cfg(*opts, path=QUICKSTART):
    cfg = get_cfg()
    merge_from_file(cfg, path)
    cfg.merge_from_list(list(opts))
    return cfg


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory):
    """One $FASTREID_DATASETS for the module, generated here once (the processes of
    every run read it instead of generating it side by side)."""
    root = tmp_path_factory.mktemp("datasets")
    old = os.environ.get("FASTREID_DATASETS")
    os.environ["FASTREID_DATASETS"] = str(root)
    for opts in (TINY, TINY + EVAL, SMALL):
        build_dataset(_cfg(*opts), "SynthPerson")
    yield root
    if old is None:
        del os.environ["FASTREID_DATASETS"]
    else:
        os.environ["FASTREID_DATASETS"] = old


# --------------------------------------------------------------------------- in-process session

def one_step(cfg):
    """Build the trainer, take one optimisation step; -> (state_dict, image paths of the
    batch this process saw, weights before)."""
    from fastreid.utils.events import EventStorage
    trainer = Trainer(cfg)
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    batch = next(trainer._trainer._data_loader_iter)
    trainer._trainer._data_loader_iter = iter([batch])
    with EventStorage(0) as trainer.storage:
        trainer.iter = 0
        trainer.run_step()
    model = getattr(trainer.model, "module", trainer.model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    before = {k.replace("module.", "", 1): v for k, v in before.items()}
    return state, list(batch["img_paths"]), before


def evaluate_once(cfg):
    """Evaluate a seeded untrained model; -> (results, gathered data or None, local count)."""
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    loader, num_query = build_test_loader(cfg, "SynthPerson")
    evaluator = ReidExtEvaluator(cfg, num_query)
    results = inference_on_dataset(model, loader, evaluator)
    local = sum(len(p["pids"]) for p in evaluator._predictions)
    return results, evaluator._gathered(), local


def resume_in_two_processes(out_dir, rank):
    """A checkpoint of epoch 0 written by rank 0 alone; a new trainer resumes from it on
    both ranks; a rank that does not see OUTPUT_DIR's checkpoint stops both."""
    from fastreid.utils import comm
    out = os.path.join(out_dir, "resume")
    cfg = _cfg(*TINY, *STEP, "OUTPUT_DIR", out)
    Trainer(cfg).checkpointer.save("model_0000", epoch=0)  # a no-op on rank 1
    comm.synchronize()
    res = {"files": sorted(f for f in os.listdir(out) if f.endswith(".pth"))}
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=True)
    res["resumed_epoch"] = trainer.start_epoch
    elsewhere = os.path.join(out_dir, f"not_shared{rank}")  # rank 1 has no checkpoint there
    trainer = Trainer(_cfg(*TINY, *STEP, "OUTPUT_DIR", out if rank == 0 else elsewhere))
    try:
        trainer.resume_or_load(resume=True)
    except ConfigValueError as e:
        res["mismatch"] = str(e)
    return res


def _session(out_dir):
    """Runs in each of the 2 processes."""
    from fastreid.utils import comm
    rank = comm.get_rank()
    res = {"world": comm.get_world_size(), "local_rank": comm.get_local_rank(),
           "local_size": comm.get_local_size(), "all_gather": comm.all_gather(rank * 10),
           "gather": comm.gather(rank, dst=0)}
    comm.synchronize()
    state, paths, _ = one_step(_cfg(*TINY, *STEP, "OUTPUT_DIR", os.path.join(out_dir, "step")))
    res["batch_paths"] = paths
    res.update(resume_in_two_processes(out_dir, rank))
    results, data, local = evaluate_once(_cfg(*TINY, *EVAL, "OUTPUT_DIR", ""))
    res["eval_local_items"] = local
    if rank == 0:
        torch.save(state, os.path.join(out_dir, "step_2proc.pth"))
        res["eval"] = {k: float(v) for k, v in results.items() if not isinstance(v, dict)}
        res["eval_paths"] = data["paths"]
        res["eval_pids"] = data["pids"].tolist()
    else:
        assert data is None and results == {}
    with open(os.path.join(out_dir, f"session.rank{rank}.json"), "w") as f:
        json.dump(res, f)


@pytest.fixture(scope="module")
def session(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("session")
    launch(_session, 2, dist_url="auto", args=(str(out),), device="cpu", timeout=120)
    ranks = []
    for r in range(2):
        with open(out / f"session.rank{r}.json") as f:
            ranks.append(json.load(f))
    return out, ranks


def test_fastreid_comm_helpers_under_gloo(session):
    _, ranks = session
    for r, res in enumerate(ranks):
        assert res["world"] == 2 and res["local_size"] == 2 and res["local_rank"] == r
        assert res["all_gather"] == [0, 10]
    assert ranks[0]["gather"] == [0, 1] and ranks[1]["gather"] == []


def test_one_step_in_two_processes_equals_one_process(session, tmp_path):
    """Same global batch (IMS_PER_BATCH 16 = 2 x 8), same weights after one SGD step.
    Tolerance: rtol 1e-4, atol 1e-6 (float32 sums in another order); the step itself
    moves the weights by far more."""
    out, ranks = session
    ref, ref_paths, before = one_step(_cfg(*TINY, *STEP, "OUTPUT_DIR", str(tmp_path)))
    two = torch.load(out / "step_2proc.pth", weights_only=True)
    # the two processes saw the one-process batch, split in two halves of 8
    assert len(ranks[0]["batch_paths"]) == len(ranks[1]["batch_paths"]) == 8
    assert sorted(ranks[0]["batch_paths"] + ranks[1]["batch_paths"]) == sorted(ref_paths)
    assert set(two) == set(ref)
    moved = 0.0
    for k, v in ref.items():
        torch.testing.assert_close(two[k], v, rtol=1e-4, atol=1e-6, msg=k)
        moved = max(moved, float((v.float() - before[k].float()).abs().max()))
    assert moved > 1e-2  # the step did something measurable


def test_checkpoint_written_once_and_resume_agrees(session):
    _, ranks = session
    for res in ranks:
        assert res["files"] == ["model_0000.pth"]
        assert res["resumed_epoch"] == 1  # both continue after epoch 0
        assert "rank 0: epoch 1, rank 1: epoch 0" in res["mismatch"]
        assert "same OUTPUT_DIR" in res["mismatch"]


def test_evaluator_gathers_every_item_once(session):
    """21 query + gallery items on 2 processes (11 + 10, fastreid's InferenceSampler):
    every item once, in dataset order; the metrics equal the one-process run."""
    _, ranks = session
    assert [r["eval_local_items"] for r in ranks] == [11, 10]
    cfg = _cfg(*TINY, *EVAL, "OUTPUT_DIR", "")
    loader, _ = build_test_loader(cfg, "SynthPerson")
    expected = [item[0] for item in loader.dataset.img_items]
    assert len(expected) == 21
    assert ranks[0]["eval_paths"] == expected  # no item twice, none dropped, same order
    one, data, local = evaluate_once(cfg)
    assert local == 21 and data["pids"].tolist() == ranks[0]["eval_pids"]
    for k, v in ranks[0]["eval"].items():
        assert v == pytest.approx(float(one[k]), abs=1e-6), k


# --------------------------------------------------------------------------- command line

def _reid_train(*args, timeout=300, script=None):
    """Run reid-train (or ``script``) in a subprocess; -> CompletedProcess."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    cmd = [sys.executable, script] if script else [sys.executable, "-m", "reid_ext.train_net"]
    return subprocess.run(cmd + [str(a) for a in args], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)


def test_combined_two_processes_hash_export_and_nformer(shared_data, tmp_path):
    """SFT (per-process batch) + AdaSP + SSR codes + LBR in 2 processes; checkpoints and
    codes written once (by rank 0); the NFormer stage 2 re-extracts features from both
    processes, trains and evaluates. (--resume: test_checkpoint_written_once_and_resume_agrees.)"""
    s1, s2 = tmp_path / "stage1", tmp_path / "stage2"
    common = ["--num-gpus", "2", "--dist-url", "auto", "--config-file"]
    p = _reid_train(*common, os.path.join(COMBINED, "synth_stage1.yml"), *SMALL,
                    "SOLVER.MAX_EPOCH", "2", "TEST.EVAL_PERIOD", "2", "OUTPUT_DIR", s1)
    assert p.returncode == 0, p.stderr[-3000:]
    with open(s1 / "results.json") as f:
        res = json.load(f)["SynthPerson"]
    assert {"LBR", "hash256", "hash256+AFR(w=10)"} <= set(res)
    assert all(np.isfinite(res[k]) for k in ("Rank-1", "mAP"))
    with open(s1 / "metrics.json") as f:
        losses = [json.loads(line) for line in f if "loss_adasp" in line]
    assert losses and all(np.isfinite(r["loss_adasp"]) for r in losses)
    for log in ("log.txt", "log.txt.rank1"):
        with open(s1 / log) as f:
            assert "World size: 2" in f.read()
    # checkpoints and codes are written by rank 0 only, once
    with open(s1 / "log.txt.rank1") as f:
        rank1 = f.read()
    assert "Saving checkpoint" not in rank1 and "hash codes written" not in rank1
    with open(s1 / "log.txt") as f:
        rank0 = f.read()
    assert rank0.count("Saving checkpoint to") == rank0.count("Saving checkpoint to " + str(s1))
    assert {"model_0000.pth", "model_final.pth"} <= set(os.listdir(s1))
    codes = glob.glob(str(s1 / "hash_codes_q*_g*.npz"))
    assert len(codes) == 1 and rank0.count("hash codes written to") == 1
    z = np.load(codes[0])
    test_set = build_test_loader(_cfg(*SMALL, path=os.path.join(COMBINED, "synth_stage1.yml")),
                                 "SynthPerson")[0].dataset
    paths = list(z["query_paths"]) + list(z["gallery_paths"])
    assert paths == [item[0] for item in test_set.img_items]  # every item once, in order

    # NFormer stage 2 on the stage-1 encoder, 2 processes
    p = _reid_train(*common, os.path.join(COMBINED, "synth_stage2.yml"), *SMALL,
                    "MODEL.NFORMER.STAGE1_WEIGHTS", s1 / "model_final.pth",
                    "SOLVER.NFORMER.MAX_EPOCH", "1", "SOLVER.NFORMER.EVAL_PERIOD", "1",
                    "OUTPUT_DIR", s2)
    assert p.returncode == 0, p.stderr[-3000:]
    with open(s2 / "results.json") as f:
        res2 = json.load(f)["SynthPerson"]
    assert "NFormer" in res2 and np.isfinite(res2["NFormer"]["mAP"])
    # 32 training images, 16 per global batch: 2 batches of 8 per process, gathered
    for log in ("log.txt", "log.txt.rank1"):
        with open(s2 / log) as f:
            assert re.search(r"NFormer epoch 0: extracted 32 features", f.read()), log
    with open(s2 / "metrics.json") as f:
        assert any("loss_nformer_triplet" in line for line in f)


def test_torchrun_two_processes(shared_data, tmp_path):
    """torchrun's env:// rendezvous: one job of 2 ranks, not two independent runs."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    p = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "reid_ext.train_net", "--config-file", QUICKSTART, *TINY, "SOLVER.MAX_EPOCH", "1",
         "TEST.EVAL_PERIOD", "1", "OUTPUT_DIR", str(tmp_path)],
        cwd=ROOT, env=env, timeout=300, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    for log, rank in (("log.txt", 0), ("log.txt.rank1", 1)):
        with open(tmp_path / log) as f:
            assert f"Rank of current process: {rank}. World size: 2" in f.read()
    with open(tmp_path / "results.json") as f:
        assert "mAP" in json.load(f)["SynthPerson"]


DIE_SCRIPT = '''
import os
import reid_ext
from fastreid.utils import comm
from reid_ext.modeling.losses import LOSS_REGISTRY
from reid_ext.train_net import cli


@LOSS_REGISTRY.register()
def DieOnRank1(outputs, targets, c):
    """Rank 1 dies (no error, no cleanup) at its second step."""
    DieOnRank1.calls = getattr(DieOnRank1, "calls", 0) + 1
    if comm.get_rank() == 1 and DieOnRank1.calls == 2:
        os._exit(7)
    return {"loss_zero": outputs["features"].sum() * 0}


if __name__ == "__main__":
    cli()
'''


def _die_args(script, tmp_path, *flags):
    script.write_text(textwrap.dedent(DIE_SCRIPT))
    return [sys.executable, str(script), "--config-file", QUICKSTART, *flags, "--dist-timeout",
            "120", *TINY, "SOLVER.MAX_EPOCH", "1", "MODEL.LOSSES.NAME",
            '("CrossEntropyLoss", "DieOnRank1")', "OUTPUT_DIR", str(tmp_path)]


def test_a_dying_process_is_named_by_its_launcher(shared_data, tmp_path):
    """--num-gpus 2: rank 1 dies at its second step; the launcher stops rank 0 at once
    and names rank 1 (one message, no traceback)."""
    cmd = _die_args(tmp_path / "die.py", tmp_path, "--num-gpus", "2", "--dist-url", "auto")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 1
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("reid-train:")]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "rank 1 of 2" in lines[0] and "exited with code 7" in lines[0]
    assert "other processes of this machine were stopped" in lines[0]
    assert str(tmp_path / "log.txt.rank1") in lines[0]


def test_a_dying_process_stops_the_other_machines(shared_data, tmp_path):
    """Two machines of one process each: rank 1 dies at its second step; rank 0 stops
    within seconds (not at the 120 s timeout) with an error naming rank 1."""
    url = f"tcp://127.0.0.1:{free_port()}"
    cmds = [_die_args(tmp_path / "die.py", tmp_path, "--num-gpus", "1", "--num-machines", "2",
                      "--machine-rank", str(r), "--dist-url", url) for r in (0, 1)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    start = time.monotonic()
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for cmd in cmds]
    outs = [p.communicate(timeout=240)[1] for p in procs]
    assert time.monotonic() - start < 100  # nobody waited for the 120 s timeout
    assert procs[1].returncode == 7  # died without a word
    assert procs[0].returncode == 1
    lines = [ln for ln in outs[0].splitlines() if ln.startswith("reid-train:")]
    assert len(lines) == 1 and "Traceback" not in outs[0], outs[0][-2000:]
    assert "rank 0 of 2: lost the connection to the other processes: rank 1 stopped" in lines[0]
    with open(tmp_path / "log.txt") as f:
        log = f.read()
    assert re.search(r"epoch/iter: 0/0", log)  # rank 0 trained a step before rank 1 died


# --------------------------------------------------------------------------- rendezvous

def test_env_rendezvous_torchrun_and_slurm():
    torchrun = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "GROUP_RANK": "1",
                "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    rdv = env_rendezvous(torchrun)
    assert (rdv.rank, rdv.world_size, rdv.local_rank, rdv.node) == (3, 4, 1, "1")
    assert env_rank(environ=torchrun) == 3
    assert env_rendezvous({}) is None and env_rank(environ={}) == 0
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NODEID": "2",
             "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
    assert env_rendezvous(slurm) is None  # SLURM alone does not mean "join a group"
    rdv = env_rendezvous(slurm, dist_url="env://")
    assert (rdv.rank, rdv.world_size, rdv.local_rank, rdv.node) == (5, 8, 1, "2")
    assert env_rank("env://", slurm) == 5
    with pytest.raises(ProcessGroupError, match="MASTER_ADDR and MASTER_PORT"):
        env_rendezvous({"SLURM_PROCID": "0", "SLURM_NTASKS": "2"}, dist_url="env://")
    with pytest.raises(ProcessGroupError, match="RANK, WORLD_SIZE"):
        env_rendezvous({}, dist_url="env://")


def test_gpu_of_a_process_and_torchrun_flags(monkeypatch):
    assert gpu_of(3, 4) == 3 and gpu_of(3, 1) == 0  # SLURM --gpus-per-task 1: its only GPU
    with pytest.raises(ProcessGroupError, match="local rank 3 but 2 GPU"):
        gpu_of(3, 2)
    for k, v in {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ProcessGroupError, match="drop --num-gpus"):
        launch(print, 2, device="cpu")
