"""projects/Combined: CombinedReID builds from every config, trains with all its losses,
and the synthetic two-stage pipeline runs end to end on CPU."""
import glob
import json
import os

import pytest
import torch

from reid_ext.config import get_cfg, merge_from_file
from reid_ext.engine import Trainer
from reid_ext.train_net import main

from test_training import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "projects", "Combined", "configs", "*.yml")))
SMALL = [o for o in TINY] + ["DATASETS.SYNTH.SIZE", "[96, 48]", "INPUT.SIZE_TRAIN", "[96, 48]",
                             "INPUT.SIZE_TEST", "[96, 48]", "TEST.HASH.AFR_W", "10"]



def _timeless(metrics):
    """A variant's metrics without its ranking time (which differs between runs)."""
    return {k: v for k, v in metrics.items() if k != "seconds"}

def _cfg(path, *opts):
    cfg = get_cfg()
    merge_from_file(cfg, path)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False",
                         "MODEL.HEADS.NUM_CLASSES", "7", *opts])
    return cfg


def test_configs_found():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"veri_stage1.yml", "veri_stage2.yml", "market1501_stage1.yml",
            "market1501_stage2.yml", "synth_stage1.yml", "synth_stage2.yml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_builds_the_combined_model(path):
    cfg = _cfg(path)
    model = Trainer.build_model(cfg)
    assert type(model).__name__ == "CombinedReID"
    assert cfg.MODEL.BACKBONE.ATTENTION.TYPE == "c2f" and cfg.MODEL.HEADS.SFT.ENABLED
    assert "AdaSPLoss" in cfg.MODEL.LOSSES.NAME and cfg.TEST.LBR.ENABLED and cfg.TEST.HASH.ENABLED
    assert cfg.TEST.NFORMER.ENABLED == ("stage2" in path)
    assert model.hash_branch.hash_head.bits == cfg.MODEL.HASH.BITS
    if "market1501" in path or "synth" in path:
        assert cfg.MODEL.ATTR.ENABLED and cfg.TEST.HASH.AFR_W > 0


def test_losses_and_eval_outputs(datasets_root):
    cfg = _cfg(os.path.join(ROOT, "projects/Combined/configs/synth_stage1.yml"))
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    model.train()
    batch = {"images": torch.rand(8, 3, 96, 48) * 255, "targets": torch.arange(4).repeat(2),
             "attributes": torch.randint(0, 2, (8, 30)).float()}
    losses = model(batch)
    assert {"loss_cls", "loss_adasp", "loss_hash_cls", "loss_hash_triplet", "loss_hash_ssr",
            "loss_hash_attr"} <= set(losses)
    sum(losses.values()).backward()
    for name in ("backbone.conv1.weight", "heads.bottleneck.0.weight",
                 "hash_branch.hash_head.global_fc.weight", "hash_branch.attr_head.fc.weight"):
        param = dict(model.named_parameters()).get(name)
        assert param is not None, f"{name} not in {[n for n, _ in model.named_parameters()][:60]}"
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert out["features"].shape == (8, 256) and out["codes"].shape == (8, 32)
    assert out["attr_logits"].shape == (8, 30) and out["attr_targets"].shape == (8, 30)


def test_synthetic_two_stage_pipeline(datasets_root, tmp_path):
    from fastreid.engine import default_argument_parser
    cfg_dir = os.path.join(ROOT, "projects", "Combined", "configs")
    s1, s2 = tmp_path / "stage1", tmp_path / "stage2"
    common = SMALL + ["SOLVER.MAX_EPOCH", "2", "TEST.EVAL_PERIOD", "2"]
    args = default_argument_parser().parse_args(
        ["--config-file", os.path.join(cfg_dir, "synth_stage1.yml"), *common,
         "OUTPUT_DIR", str(s1)])
    res1 = main(args)
    assert {"LBR", "hash256", "hash256+AFR(w=10)"} <= set(res1) and "NFormer" not in res1
    args = default_argument_parser().parse_args(
        ["--config-file", os.path.join(cfg_dir, "synth_stage2.yml"), *common,
         "MODEL.NFORMER.STAGE1_WEIGHTS", str(s1 / "model_final.pth"),
         "SOLVER.NFORMER.MAX_EPOCH", "1", "SOLVER.NFORMER.EVAL_PERIOD", "1", "OUTPUT_DIR", str(s2)])
    res2 = main(args)
    assert {"LBR", "NFormer", "hash256", "hash256+AFR(w=10)"} <= set(res2)
    # the encoder is frozen in stage 2: its plain and LBR results are stage 1's
    assert res2["mAP"] == pytest.approx(res1["mAP"])
    assert _timeless(res2["LBR"]) == _timeless(res1["LBR"])
    with open(s2 / "results.json") as f:
        saved = json.load(f)
    assert saved["SynthPerson"]["NFormer"]["mAP"] == pytest.approx(res2["NFormer"]["mAP"])
    assert glob.glob(str(s2 / "hash_codes_q*_g*.npz"))
    # evaluation results reach metrics.json (fastreid's writers skip them)
    with open(s1 / "metrics.json") as f:
        lines = [json.loads(line) for line in f]
    assert any("LBR/mAP" in line and line["LBR/mAP"] == pytest.approx(res1["LBR"]["mAP"])
               for line in lines)
    assert len(glob.glob(str(s1 / "events.out.tfevents.*"))) == 1
