"""Every projects/SFT yml merges with reid_ext's config and builds a model on CPU."""
import glob
import os

import pytest
import torch

import reid_ext  # noqa: F401
from reid_ext.config import get_cfg, merge_from_file

ROOT = os.path.join(os.path.dirname(__file__), "..", "projects", "SFT", "configs")
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "*.yml")))


def test_configs_exist():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"market1501.yml", "dukemtmc.yml", "cuhk03.yml", "msmt17.yml", "synthperson.yml",
            "market1501_adasp.yml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_builds_model(path):
    from fastreid.modeling import build_model
    cfg = get_cfg()
    merge_from_file(cfg, path)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False",
                         "MODEL.HEADS.NUM_CLASSES", "5"])
    assert cfg.MODEL.HEADS.NAME == "SFTHead"
    model = build_model(cfg)
    assert model.heads.sft_sigma == cfg.MODEL.HEADS.SFT.SIGMA
    if os.path.basename(path) == "msmt17.yml":
        assert (cfg.TEST.LBR.TOPN, cfg.TEST.LBR.TAU) == (150, 0.02)
    elif not os.path.basename(path).startswith("Base"):
        assert (cfg.TEST.LBR.TOPN, cfg.TEST.LBR.TAU) == (50, 0.1)
    if cfg.MODEL.BACKBONE.DEPTH == "50x":
        return  # a ResNet-50 forward is slow on CPU; the head forward is tested in test_sft.py
    model.eval()
    with torch.no_grad():
        out = model({"images": torch.rand(2, 3, *cfg.INPUT.SIZE_TEST) * 255})
    assert out.shape[0] == 2
