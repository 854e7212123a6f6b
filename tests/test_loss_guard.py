"""fastreid's own Baseline and MGN, built the way a user's own fastreid script builds them
(``fastreid.modeling.build_model``) after ``import reid_ext``: a loss name they would
silently ignore stops the build with the trainer's error; names they compute still build."""
import pytest
from fastreid.modeling import build_model
from fastreid.modeling.meta_arch import MGN, Baseline

import reid_ext  # noqa: F401  (what a user's script imports first)
from reid_ext.config import get_cfg
from reid_ext.engine import Trainer
from reid_ext.utils.errors import ConfigValueError


def _cfg(arch, *losses):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.META_ARCHITECTURE", arch,
                         "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18x",
                         "MODEL.BACKBONE.FEAT_DIM", "512", "MODEL.HEADS.NUM_CLASSES", "10"])
    cfg.MODEL.LOSSES.NAME = tuple(losses)
    return cfg


@pytest.mark.parametrize("arch", ["Baseline", "MGN"])
def test_fastreid_build_model_refuses_a_loss_it_would_ignore(arch):
    cfg = _cfg(arch, "CrossEntropyLoss", "AdaSPLoss")
    with pytest.raises(ConfigValueError) as e:
        build_model(cfg)
    msg = str(e.value)
    assert f"MODEL.META_ARCHITECTURE='{arch}' does not compute" in msg and "AdaSPLoss" in msg
    assert "'ReidBaseline' (or 'ReidMGN' for MGN)" in msg
    # the same error as reid_ext's trainer, and through the class itself
    with pytest.raises(ConfigValueError) as t:
        Trainer.build_model(cfg)
    assert str(t.value) == msg
    with pytest.raises(ConfigValueError):
        {"Baseline": Baseline, "MGN": MGN}[arch](cfg)


def test_fastreid_baseline_still_builds_with_its_own_losses():
    model = build_model(_cfg("Baseline", "CrossEntropyLoss", "TripletLoss"))
    assert type(model) is Baseline


def test_registry_meta_archs_compute_the_loss():
    """ReidBaseline is a Baseline subclass with its own losses(): not refused."""
    model = build_model(_cfg("ReidBaseline", "CrossEntropyLoss", "AdaSPLoss"))
    assert model.loss_kwargs["loss_names"] == ("CrossEntropyLoss", "AdaSPLoss")
