"""VIPeR protocol (VIPeRSplit), its splits file and errors, and the baseline on the real
images of ../shared/data/VIPeR (skipped, saying why, only when that folder is absent)."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from reid_ext.config import get_cfg, merge_from_file
from reid_ext.data import build_dataset
from reid_ext.data.datasets import DatasetNotFoundError
from reid_ext.data.viper import (SPLITS_FILE, ViperProtocolError, make_splits, read_splits_file,
                                 scan_cameras, write_splits_file)

from conftest import ROOT

SHARED = os.environ.get("REID_EXT_SHARED", os.path.join(ROOT, "..", "shared"))
VIPER = os.path.join(SHARED, "data", "VIPeR")
needs_viper = pytest.mark.skipif(not os.path.isdir(VIPER),
                                 reason=f"the real VIPeR set is not at {VIPER} (set REID_EXT_SHARED)")
BASE = os.path.join(ROOT, "projects", "VIPeR", "configs", "baseline.yml")


def _cfg(split=0, *opts):
    cfg = get_cfg()
    merge_from_file(cfg, BASE)
    cfg.merge_from_list(["DATASETS.VIPER.SPLIT", str(split), *opts])
    return cfg


def _fake_viper(root, ids=range(8)):
    """A tiny VIPeR tree of real BMP files (drawn here), both cameras per identity."""
    rng = np.random.RandomState(0)
    for cam in ("cam_a", "cam_b"):
        os.makedirs(root / "VIPeR" / cam, exist_ok=True)
        for pid in ids:
            img = rng.randint(0, 255, (128, 48, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / "VIPeR" / cam / f"{pid:03d}_{90 if cam == 'cam_a' else 0}.bmp")
    return root


def _splits_for(tmp_path, ids):
    path = tmp_path / "splits.json"
    write_splits_file(path, list(ids), num_splits=3, seed=1)
    return str(path)


def test_make_splits_halves_disjoint_and_seeded():
    ids = list(range(0, 1264, 2))
    a, b = make_splits(ids, 10, 0), make_splits(ids, 10, 0)
    assert a == b and make_splits(ids, 10, 1) != a
    for s in a:
        assert len(s["train"]) == len(s["test"]) == 316
        assert not set(s["train"]) & set(s["test"]) and set(s["train"]) | set(s["test"]) == set(ids)
    assert len({tuple(s["test"]) for s in a}) == 10


def test_shipped_splits_file_is_readable_and_regenerates(tmp_path):
    splits = read_splits_file(SPLITS_FILE)
    assert len(splits) == 10
    ids = sorted(set(splits[0]["train"]) | set(splits[0]["test"]))
    assert len(ids) == 632
    with open(SPLITS_FILE) as f:
        meta = json.load(f)
    assert make_splits(ids, 10, meta["seed"]) == splits  # the file is what the generator gives


@needs_viper
def test_split0_protocol_on_the_real_images(monkeypatch):
    monkeypatch.setenv("FASTREID_DATASETS", os.path.dirname(VIPER))
    found = scan_cameras(VIPER)
    assert len(found["cam_a"]) == len(found["cam_b"]) == 632
    splits = read_splits_file(SPLITS_FILE)
    assert set(splits[0]["train"]) | set(splits[0]["test"]) == set(found["cam_a"])
    data = build_dataset(_cfg(0), "VIPeRSplit", split=0)
    train_ids = {pid for _, pid, _ in data.train}
    assert len(data.train) == 632 and len(train_ids) == 316
    assert len(data.query) == 316 and {c for _, _, c in data.query} == {0}
    assert len(data.gallery) == 316 and {c for _, _, c in data.gallery} == {1}
    assert all("/cam_a/" in p for p, _, _ in data.query)
    assert all("/cam_b/" in p for p, _, _ in data.gallery)
    test_ids = {pid for _, pid, _ in data.query}
    assert test_ids == {pid for _, pid, _ in data.gallery} and len(test_ids) == 316
    assert not {int(p.split("_")[1]) for p in train_ids} & test_ids
    again = build_dataset(_cfg(0), "VIPeRSplit", split=0)
    assert again.train == data.train and again.query == data.query and again.gallery == data.gallery
    other = build_dataset(_cfg(3), "VIPeRSplit", split=3)
    assert {pid for _, pid, _ in other.query} != test_ids


@needs_viper
def test_validation_halves_keep_the_test_identities_out(monkeypatch):
    monkeypatch.setenv("FASTREID_DATASETS", os.path.dirname(VIPER))
    test = build_dataset(_cfg(2), "VIPeRSplit", split=2)
    val = build_dataset(_cfg(2, "DATASETS.VIPER.VALIDATION", "True"), "VIPeRSplit", split=2)
    split_train = {int(p.split("_")[1]) for _, p, _ in test.train}
    val_train = {int(p.split("_")[1]) for _, p, _ in val.train}
    val_test = {pid for _, pid, _ in val.query}
    assert len(val_train) == len(val_test) == 158 and len(val.train) == 316
    assert val_train | val_test == split_train and not val_train & val_test
    assert {pid for _, pid, _ in val.gallery} == val_test
    assert {c for _, _, c in val.query} == {0} and {c for _, _, c in val.gallery} == {1}
    again = build_dataset(_cfg(2, "DATASETS.VIPER.VALIDATION", "True"), "VIPeRSplit", split=2)
    assert again.query == val.query and again.train == val.train


def test_errors_name_the_path_or_key(tmp_path, monkeypatch):
    root = _fake_viper(tmp_path / "data")
    monkeypatch.setenv("FASTREID_DATASETS", str(root))
    splits = _splits_for(tmp_path, range(8))
    cfg = _cfg()
    ok = build_dataset(cfg, "VIPeRSplit", split=2, splits_file=splits)
    assert len(ok.train) == 8 and len(ok.query) == len(ok.gallery) == 4

    with pytest.raises(ViperProtocolError, match=r"DATASETS.VIPER.SPLIT is 3;.*splits 0-2"):
        build_dataset(cfg, "VIPeRSplit", split=3, splits_file=splits)
    with pytest.raises(FileNotFoundError, match="DATASETS.VIPER.SPLITS_FILE.*nope.json"):
        build_dataset(cfg, "VIPeRSplit", splits_file=str(tmp_path / "nope.json"))
    (tmp_path / "w").mkdir()
    wrong = _splits_for(tmp_path / "w", range(9))
    with pytest.raises(ViperProtocolError, match=r"splits file .* does not match the images.*identity 8"):
        build_dataset(cfg, "VIPeRSplit", splits_file=wrong)

    os.remove(root / "VIPeR" / "cam_b" / "005_0.bmp")
    with pytest.raises(ViperProtocolError, match=r"identity 5 is seen by one camera only: .*005_90.bmp"):
        build_dataset(cfg, "VIPeRSplit", splits_file=splits)
    _fake_viper(root, ids=[5])
    (root / "VIPeR" / "cam_b" / "006_0.bmp").write_bytes(b"BM not an image")
    with pytest.raises(ViperProtocolError, match=r"cannot read VIPeR image .*006_0.bmp"):
        build_dataset(cfg, "VIPeRSplit", splits_file=splits)

    shutil.rmtree(root / "VIPeR" / "cam_b")
    with pytest.raises(DatasetNotFoundError, match=r"cam_b not found"):
        build_dataset(cfg, "VIPeRSplit", splits_file=splits)
    monkeypatch.setenv("FASTREID_DATASETS", str(tmp_path / "empty"))
    with pytest.raises(DatasetNotFoundError, match=r"empty/VIPeR does not exist"):
        build_dataset(cfg, "VIPeRSplit")


def test_every_viper_config_builds():
    from reid_ext.engine import Trainer
    from reid_ext.protocol.viper import VARIANTS
    for v in VARIANTS:
        cfg = get_cfg()
        merge_from_file(cfg, os.path.join(ROOT, v.config))
        cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False",
                             "MODEL.HEADS.NUM_CLASSES", "316", *v.opts])
        model = Trainer.build_model(cfg)
        assert type(model).__name__ == "ReidBaseline", v.name
