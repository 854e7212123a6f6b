"""Config: reid_ext keys have defaults, every yml merges, errors name key and file."""
import glob
import os

import pytest
from fastreid.config import get_cfg as fastreid_get_cfg

from reid_ext.config import add_reid_ext_config, get_cfg, merge_from_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
YMLS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yml"), recursive=True)
              + glob.glob(os.path.join(ROOT, "projects", "**", "*.yml"), recursive=True))


def test_get_cfg_extends_fastreid_defaults():
    cfg = get_cfg()
    assert cfg.MODEL.DEVICE == "cuda"  # fastreid's default is kept
    assert cfg.SOLVER.LOG_PERIOD > 0 and cfg.ENGINE.TRAINER == "Trainer"
    assert "SYNTH" in cfg.DATASETS


def test_add_reid_ext_config_is_idempotent_and_keeps_user_values():
    cfg = fastreid_get_cfg()
    add_reid_ext_config(cfg)
    cfg.SOLVER.LOG_PERIOD = 7
    add_reid_ext_config(cfg)
    assert cfg.SOLVER.LOG_PERIOD == 7
    assert cfg.dump() == add_reid_ext_config(cfg).dump()


def test_every_reid_ext_key_has_a_comment():
    """Each add_key line of reid_ext/config carries a one-line comment."""
    for path in glob.glob(os.path.join(ROOT, "reid_ext", "config", "*.py")):
        for n, line in enumerate(open(path), 1):
            if line.strip().startswith("add_key(cfg,"):
                assert "#" in line, f"{path}:{n} has no comment: {line.strip()}"


def test_configs_exist():
    assert any(p.endswith("quickstart.yml") for p in YMLS)


@pytest.mark.parametrize("path", YMLS, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_yml_merges(path):
    cfg = get_cfg()
    merge_from_file(cfg, path)


def test_unknown_key_names_key_and_file(tmp_path):
    base = tmp_path / "Base.yml"
    base.write_text("SOLVER:\n  BASE_LRR: 0.1\n")
    child = tmp_path / "child.yml"
    child.write_text("_BASE_: Base.yml\nSOLVER:\n  MAX_EPOCH: 3\n")
    with pytest.raises(KeyError) as e:
        merge_from_file(get_cfg(), str(child))
    assert "SOLVER.BASE_LRR" in str(e.value) and str(base) in str(e.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yml"):
        merge_from_file(get_cfg(), str(tmp_path / "nope.yml"))
