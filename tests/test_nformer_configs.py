"""Every projects/NFormer yml merges with reid_ext's config and builds its model on CPU."""
import glob
import os

import pytest
import torch

from reid_ext.config import get_cfg, merge_from_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "projects", "NFormer", "configs", "**", "*.yml"),
                           recursive=True))


def test_configs_found():
    assert len(CONFIGS) >= 12


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_builds_model(path):
    from reid_ext.engine import Trainer, get_trainer_class
    cfg = get_cfg()
    merge_from_file(cfg, path)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False",
                         "MODEL.HEADS.NUM_CLASSES", "11"])
    model = Trainer.build_model(cfg)
    assert get_trainer_class(cfg) is not None
    if cfg.MODEL.META_ARCHITECTURE == "NFormerBaseline":
        assert cfg.ENGINE.TRAINER == "NFormerTrainer" and cfg.TEST.NFORMER.ENABLED
        assert model.nformer.classifier.out_features == 11  # sized by the dataset, not 751
        model.eval()
        with torch.no_grad():
            out = model.nformer(torch.randn(64, cfg.MODEL.NFORMER.DIM))
        assert out.shape == (64, cfg.MODEL.NFORMER.DIM)
