"""End to end on the embedded synthetic data: train, evaluate, resume, --eval-only,
and the failure modes (NaN loss, AMP on CPU, unknown loss names)."""
import glob
import logging
import os
import subprocess
import sys

import pytest
import torch
from fastreid.engine import default_argument_parser

from reid_ext.config import get_cfg, merge_from_file
from reid_ext.engine import NonFiniteLossError, Trainer
from reid_ext.engine.trainer import resolve_device
from reid_ext.modeling.losses import LOSS_REGISTRY
from reid_ext.train_net import main

from conftest import ROOT

QUICKSTART = os.path.join(ROOT, "configs", "quickstart.yml")
TINY = ["MODEL.DEVICE", "cpu", "DATASETS.SYNTH.NUM_TRAIN_IDS", "8", "DATASETS.SYNTH.NUM_TEST_IDS",
        "6", "DATASETS.SYNTH.IMGS_PER_ID", "4", "DATASETS.SYNTH.NUM_CAMS", "3",
        "DATASETS.SYNTH.SIZE", "[64, 32]", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST",
        "[64, 32]", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
        "DATALOADER.NUM_WORKERS", "0", "SOLVER.WARMUP_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "1",
        "SOLVER.LOG_PERIOD", "1", "TEST.IMS_PER_BATCH", "32"]


def _args(out, *extra, epochs=2):
    opts = TINY + ["SOLVER.MAX_EPOCH", str(epochs), "TEST.EVAL_PERIOD", str(epochs),
                   "OUTPUT_DIR", str(out)]
    flags = [f for f in extra if f.startswith("--")]
    more = [f for f in extra if not f.startswith("--")]
    return default_argument_parser().parse_args(["--config-file", QUICKSTART, *flags, *opts, *more])


def _cfg(out, *opts, epochs=2):
    cfg = get_cfg()
    merge_from_file(cfg, QUICKSTART)
    cfg.merge_from_list(TINY + ["SOLVER.MAX_EPOCH", str(epochs), "OUTPUT_DIR", str(out), *opts])
    return resolve_device(cfg)


def test_train_evaluate_resume_and_eval_only(datasets_root, tmp_path):
    out = tmp_path / "run"
    res = main(_args(out))
    for key in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"):
        assert 0 <= res[key] <= 100
    for name in ("model_final.pth", "last_checkpoint", "metrics.json", "log.txt", "config.yaml"):
        assert (out / name).exists(), name
    assert glob.glob(str(out / "events.out.tfevents.*"))

    # --eval-only on the written checkpoint gives the same numbers
    ev = main(_args(tmp_path / "eval", "--eval-only", "MODEL.WEIGHTS", str(out / "model_final.pth")))
    assert ev["mAP"] == pytest.approx(res["mAP"]) and ev["Rank-1"] == pytest.approx(res["Rank-1"])

    # --resume continues where the last checkpoint stopped, with optimizer and schedulers
    ckpt = torch.load(out / "model_final.pth", weights_only=True)  # loads under torch >= 2.6
    trainer = Trainer(_cfg(out, epochs=3))
    trainer.resume_or_load(resume=True)
    assert trainer.start_epoch == ckpt["epoch"] + 1 == 2
    state = trainer.optimizer.state_dict()["state"]
    for k, v in ckpt["optimizer"]["state"].items():
        assert torch.equal(state[k]["exp_avg"], v["exp_avg"])
    assert trainer.scheduler["lr_sched"].state_dict() == ckpt["lr_sched"]
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    res3 = trainer.train()
    assert trainer.iter == 3 * trainer.iters_per_epoch and "mAP" in res3
    # the optimizer really moves the weights (torch 2 + fastreid's ContiguousParams)
    after = trainer.model.state_dict()
    assert not torch.equal(before["backbone.conv1.weight"], after["backbone.conv1.weight"])
    assert not torch.equal(before["heads.bottleneck.0.weight"], after["heads.bottleneck.0.weight"])


@LOSS_REGISTRY.register()
def NaNAtSecondStep(outputs, targets, c):
    feats = outputs["features"]
    bad = torch.tensor(float("nan")) if NaNAtSecondStep.calls else torch.tensor(0.0)
    NaNAtSecondStep.calls += 1
    return {"loss_nan_probe": feats.sum() * 0 + bad}


def test_nan_loss_names_term_and_iteration(datasets_root, tmp_path):
    NaNAtSecondStep.calls = 0
    cfg = _cfg(tmp_path, "MODEL.LOSSES.NAME", '("CrossEntropyLoss", "NaNAtSecondStep")')
    trainer = Trainer(cfg)
    with pytest.raises(NonFiniteLossError, match=r"iteration 1: loss_nan_probe"):
        trainer.train()


def test_amp_on_cpu_is_turned_off_with_a_warning():
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.SOLVER.AMP.ENABLED = True
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    log = logging.getLogger("reid_ext.engine.trainer")  # the trainer's logger may not propagate
    log.addHandler(handler)
    try:
        out = resolve_device(cfg)
    finally:
        log.removeHandler(handler)
    assert not out.SOLVER.AMP.ENABLED
    assert any("AMP" in r.getMessage() for r in records)


def test_device_auto_and_unavailable_cuda():
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "auto"
    assert resolve_device(cfg).MODEL.DEVICE in ("cpu", "cuda")
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cuda"
        with pytest.raises(RuntimeError, match="MODEL.DEVICE cpu"):
            resolve_device(cfg)


def test_fastreid_baseline_with_unknown_loss_is_refused():
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.META_ARCHITECTURE = "Baseline"
    cfg.MODEL.HEADS.NUM_CLASSES = 10
    cfg.MODEL.LOSSES.NAME = ("CrossEntropyLoss", "NaNAtSecondStep")
    with pytest.raises(ValueError, match="ReidBaseline"):
        Trainer.build_model(cfg)


def test_reid_baseline_with_unknown_loss_names_it():
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.META_ARCHITECTURE = "ReidBaseline"
    cfg.MODEL.HEADS.NUM_CLASSES = 10
    cfg.MODEL.LOSSES.NAME = ("CrossEntropyLos",)
    with pytest.raises(KeyError, match="CrossEntropyLos"):
        Trainer.build_model(cfg)


def test_cli_entry_point_reports_bad_override(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "reid_ext.train_net", "--config-file", QUICKSTART,
                           "SOLVER.NOT_A_KEY", "1"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode != 0
    assert "SOLVER.NOT_A_KEY" in proc.stderr


def test_cli_flag_after_overrides_is_reported():
    proc = subprocess.run([sys.executable, "-m", "reid_ext.train_net", "--config-file", QUICKSTART,
                           "MODEL.DEVICE", "cpu", "--eval-only"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode != 0
    assert "--eval-only must come before the KEY VALUE overrides" in proc.stderr


def test_channels_last_backbone_gives_the_same_model():
    """MODEL.CHANNELS_LAST feeds the backbone NHWC images: same outputs and gradients up
    to float rounding, contiguous weights (for fastreid's ContiguousParams) and an NCHW
    (contiguous) feature map for the heads."""
    def build(on):
        cfg = get_cfg()
        cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False",
                             "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512",
                             "MODEL.HEADS.NUM_CLASSES", "4", "MODEL.META_ARCHITECTURE",
                             "ReidBaseline", "MODEL.CHANNELS_LAST", str(on)])
        torch.manual_seed(0)
        return Trainer.build_model(cfg)
    nchw, nhwc = build(False), build(True)
    nhwc.load_state_dict(nchw.state_dict())
    seen = []
    nhwc.backbone.conv1.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    x = {"images": torch.rand(8, 3, 64, 32) * 255, "targets": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])}
    assert nhwc.backbone(nhwc.preprocess_image(x)).is_contiguous()
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    assert all(p.is_contiguous() for p in nhwc.parameters())
    la, lb = nchw(x), nhwc(x)
    for k in la:
        torch.testing.assert_close(lb[k], la[k], rtol=1e-4, atol=1e-4)
    sum(la.values()).backward()
    sum(lb.values()).backward()
    torch.testing.assert_close(nhwc.backbone.conv1.weight.grad, nchw.backbone.conv1.weight.grad,
                               rtol=1e-3, atol=1e-4)
    nhwc.load_state_dict(nchw.state_dict())  # the extra backbone call above moved BN stats
    nchw.eval(), nhwc.eval()
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x), nchw(x), rtol=1e-4, atol=1e-4)
