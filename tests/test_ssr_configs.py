"""Every projects/SSR config merges with reid_ext's config and builds a model on CPU."""
import glob
import os

import pytest
import torch
from fastreid.modeling import build_model

from reid_ext.config import get_cfg, merge_from_file

CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "projects", "SSR",
                                        "configs", "*.yml")))


def test_configs_exist():
    assert len(CONFIGS) >= 11


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_builds_on_cpu(path):
    cfg = get_cfg()
    merge_from_file(cfg, path)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False,
                         "MODEL.HEADS.NUM_CLASSES", 3])
    assert cfg.MODEL.META_ARCHITECTURE == "SSRHashing"
    model = build_model(cfg)
    assert model.hash_head.bits == cfg.MODEL.HASH.BITS
    assert (model.attr_head is not None) == cfg.MODEL.ATTR.ENABLED
    if "DukeMTMC" in cfg.DATASETS.NAMES:
        assert cfg.MODEL.ATTR.NUM == 23
    model.eval()
    with torch.no_grad():  # a small input (6 x 2 map at stride 16) keeps the test fast
        out = model(torch.zeros(1, 3, 96, 32))
    assert out["codes"].shape == (1, cfg.MODEL.HASH.BITS // 8)
