"""Errors a user can fix: one message naming the key, path or rank, no traceback, printed
once for the whole job; --debug / REID_EXT_DEBUG=1 adds the traceback."""
import os
import subprocess
import sys

import pytest
import torch

from reid_ext.config import get_cfg
from reid_ext.engine.checkpoint import ReidCheckpointer
from reid_ext.engine.launch import free_port
from reid_ext.utils.errors import (ConfigKeyError, UserError, WeightsError, debug_enabled,
                                   describe)

from conftest import ROOT
from test_training import QUICKSTART, TINY


def _run(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    env.pop("REID_EXT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "reid_ext.train_net", *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def _messages(stderr):
    return [ln for ln in stderr.splitlines() if ln.startswith("reid-train:")]


def test_unknown_key_in_two_processes_is_one_message(tmp_path):
    p = _run("--config-file", QUICKSTART, "--num-gpus", "2", "MODEL.DEVICE", "cpu",
             "MODEL.NOT_A_KEY", "1", "OUTPUT_DIR", tmp_path)
    assert p.returncode == 1
    msgs = _messages(p.stderr)
    assert len(msgs) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "unknown config key 'MODEL.NOT_A_KEY'" in msgs[0] and "--debug" in msgs[0]
    assert not os.path.exists(tmp_path / "log.txt")  # no process was started


def test_debug_shows_the_traceback(capsys, monkeypatch):
    from reid_ext.train_net import cli
    monkeypatch.delenv("REID_EXT_DEBUG", raising=False)
    with pytest.raises(SystemExit) as e:
        cli(["--config-file", QUICKSTART, "--debug", "MODEL.NOT_A_KEY", "1"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "Traceback (most recent call last)" in err
    assert "reid-train: unknown config key 'MODEL.NOT_A_KEY'" in err
    monkeypatch.setenv("REID_EXT_DEBUG", "1")
    with pytest.raises(SystemExit):
        cli(["--config-file", QUICKSTART, "MODEL.NOT_A_KEY", "1"])
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_missing_dataset_in_two_processes_is_reported_once(datasets_root, tmp_path):
    """Both processes find the test set missing, before training starts; the job prints
    it once, with the path and the rank."""
    p = _run("--config-file", QUICKSTART, "--num-gpus", "2", "--dist-url", "auto", *TINY,
             "DATASETS.TESTS", '("Market1501",)', "OUTPUT_DIR", tmp_path)
    assert p.returncode == 1
    msgs = _messages(p.stderr)
    assert len(msgs) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "dataset 'Market1501' not found" in msgs[0]
    assert str(datasets_root) in msgs[0] and "of 2" in msgs[0]  # the path and the rank
    assert "Starting training" not in p.stdout


def test_user_error_during_training_is_not_logged_with_a_traceback(datasets_root, tmp_path,
                                                                    monkeypatch):
    """fastreid's training loop logs every exception with its traceback; not ours."""
    import logging
    from reid_ext.engine import Trainer
    from reid_ext.modeling.losses import LOSS_REGISTRY
    from reid_ext.utils.errors import ConfigValueError
    from test_training import _cfg

    @LOSS_REGISTRY.register()
    def UserErrorAtFirstStep(outputs, targets, c):
        raise ConfigValueError("MODEL.LOSSES.X is wrong")

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("fastreid.engine.train_loop")
    log.addHandler(handler)
    monkeypatch.delenv("REID_EXT_DEBUG", raising=False)
    cfg = _cfg(tmp_path, "MODEL.LOSSES.NAME", '("UserErrorAtFirstStep",)')
    try:
        with pytest.raises(ConfigValueError):
            Trainer(cfg).train()
        assert not [r for r in records if r.exc_info]
        monkeypatch.setenv("REID_EXT_DEBUG", "1")  # --debug: fastreid's log comes back
        with pytest.raises(ConfigValueError):
            Trainer(cfg).train()
        assert [r for r in records if r.exc_info]
    finally:
        log.removeHandler(handler)
        LOSS_REGISTRY._obj_map.pop("UserErrorAtFirstStep")


def test_weights_that_do_not_fit_name_the_file_and_tensor(datasets_root, tmp_path):
    """--eval-only with the checkpoint of another head (a 256-d embedding layer)."""
    from fastreid.modeling import build_model
    from reid_ext.config import merge_from_file
    cfg = get_cfg()
    merge_from_file(cfg, QUICKSTART)
    cfg.merge_from_list(TINY + ["MODEL.HEADS.EMBEDDING_DIM", "256", "MODEL.HEADS.NUM_CLASSES", "8"])
    ReidCheckpointer(build_model(cfg), str(tmp_path)).save("emb256")
    p = _run("--config-file", QUICKSTART, "--eval-only", *TINY, "MODEL.WEIGHTS",
             tmp_path / "emb256.pth", "OUTPUT_DIR", tmp_path / "eval")
    assert p.returncode == 1
    msgs = _messages(p.stderr)
    assert len(msgs) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert str(tmp_path / "emb256.pth") in msgs[0] and "does not fit the model" in msgs[0]
    assert "heads.bottleneck.0.weight: (256, 512, 1, 1) in the file, (512,) in the model" \
        in msgs[0]


def test_process_group_that_cannot_form(tmp_path):
    """Machine 0 of 2 waits for a machine 1 that never comes: one message after the
    timeout, naming the rank and the address."""
    url = f"tcp://127.0.0.1:{free_port()}"
    p = _run("--config-file", QUICKSTART, "--num-machines", "2", "--machine-rank", "0",
             "--dist-url", url, "--dist-timeout", "3", *TINY, "OUTPUT_DIR", tmp_path)
    assert p.returncode == 1
    msgs = _messages(p.stderr)
    assert len(msgs) == 1 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "rank 0 of 2: could not form the process group of 2 processes" in msgs[0]
    assert url in msgs[0] and "1/2 clients joined" in msgs[0]


# --------------------------------------------------------------------------- in process

def test_checkpoint_errors(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.DEPTH", "18x",
                         "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.FEAT_DIM", "512",
                         "MODEL.HEADS.NUM_CLASSES", "8"])
    from fastreid.modeling import build_model
    model = build_model(cfg)
    with pytest.raises(WeightsError, match="weights file not found: .*nothing.pth"):
        ReidCheckpointer(model).load(str(tmp_path / "nothing.pth"))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="text.pth is not a checkpoint torch.load can read"):
        ReidCheckpointer(model).load(str(tmp_path / "text.pth"))
    torch.save(model.backbone.state_dict(), tmp_path / "bare.pth")  # e.g. ImageNet weights
    with pytest.raises(WeightsError, match="bare.pth is not a fastreid checkpoint.*PRETRAIN_PATH"):
        ReidCheckpointer(model).load(str(tmp_path / "bare.pth"))
    # another number of classes (fine-tuning) loads; strict refuses missing tensors
    cfg.MODEL.HEADS.NUM_CLASSES = 5
    ReidCheckpointer(model, str(tmp_path)).save("c8")
    ReidCheckpointer(build_model(cfg), strict=True).load(str(tmp_path / "c8.pth"))
    torch.save({"model": {k: v for k, v in model.state_dict().items()
                          if not k.startswith("heads.")}}, tmp_path / "nohead.pth")
    ReidCheckpointer(build_model(cfg)).load(str(tmp_path / "nohead.pth"))
    with pytest.raises(WeightsError, match="nohead.pth lacks"):
        ReidCheckpointer(build_model(cfg), strict=True).load(str(tmp_path / "nohead.pth"))


def test_describe_and_debug_switch(monkeypatch):
    err = ConfigKeyError("unknown config key 'X'")
    assert isinstance(err, KeyError) and isinstance(err, UserError)
    assert str(err) == "unknown config key 'X'"  # no KeyError quotes
    assert describe(err, rank=1, world_size=2).startswith("reid-train: rank 1 of 2: unknown")
    assert "Traceback" not in describe(err)
    monkeypatch.delenv("REID_EXT_DEBUG", raising=False)
    assert not debug_enabled() and debug_enabled(True)
    monkeypatch.setenv("REID_EXT_DEBUG", "1")
    assert debug_enabled()
    monkeypatch.setenv("REID_EXT_DEBUG", "0")
    assert not debug_enabled()
    try:
        raise err
    except ConfigKeyError as e:
        assert "Traceback" in describe(e, debug=True)
    try:
        raise RuntimeError("a bug")
    except RuntimeError as e:
        assert "Traceback" in describe(e)  # not a user error: the traceback, always
