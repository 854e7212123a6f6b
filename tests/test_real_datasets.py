"""fastreid's real-dataset loaders on tiny fake trees that copy each dataset's layout.

For every real dataset fastreid 1.4.0 ships a loader for (Market1501, DukeMTMC, MSMT17
V1/V2, CUHK03, VeRi, VehicleID and VeRiWild with their size variants) we write a few real
JPEG/PNG files under $FASTREID_DATASETS with the folder names, file names and list files
that loader reads, then check what ``reid_ext.data`` makes of them: the parsed ids and
cameras, a CPU train batch, the test loader, and clear errors for a missing dataset or a
bad image.
"""
import json
import os
import re
import shutil
import sys
import zlib
from collections import Counter

import pytest
import torch
from PIL import Image

import reid_ext  # noqa: F401  (shims before any fastreid.data import)
from reid_ext.config import get_cfg
from reid_ext.data import (DatasetNotFoundError, ImageReadError, build_dataset,
                           build_test_loader, build_train_loader)
from reid_ext.data.datasets import EXPECTED_LAYOUT

SIZE = (32, 16)
VEHICLEID_TEST = {"VehicleID": "test_list_13164.txt", "SmallVehicleID": "test_list_800.txt",
                  "MediumVehicleID": "test_list_1600.txt", "LargeVehicleID": "test_list_2400.txt"}
VERIWILD_TEST = {"VeRiWild": 10000, "SmallVeRiWild": 3000, "MediumVeRiWild": 5000,
                 "LargeVeRiWild": 10000}


# ---------------------------------------------------------------- helpers
def _image(path):
    """A small real image; the format (JPEG/PNG) follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 16), (zlib.crc32(path.name.encode()) % 256, 90, 160)).save(path)


def _lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def _train(prefix, items):
    """fastreid prefixes train pids and camids with the dataset name."""
    return [(p, f"{prefix}_{pid}", f"{prefix}_{cam}") for p, pid, cam in items]


def _rel(root, items):
    return sorted((os.path.relpath(p, root), pid, cam) for p, pid, cam, *_ in items)


def _cfg(name):
    cfg = get_cfg()
    cfg.DATASETS.NAMES, cfg.DATASETS.TESTS = (name,), (name,)
    cfg.MODEL.DEVICE = "cpu"
    cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE = 4, 2
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.SAMPLER_TRAIN = "NaiveIdentitySampler"
    cfg.INPUT.SIZE_TRAIN, cfg.INPUT.SIZE_TEST = list(SIZE), list(SIZE)
    cfg.TEST.IMS_PER_BATCH = 4
    return cfg


# ------------------------------------------- fake trees: {split: [(relpath, pid, camid)]}
# Each train set has 2 ids x 2 images (one full NaiveIdentitySampler batch of 4).
def market(root, name):
    d = "Market-1501-v15.09.15/"
    tr, q, g = d + "bounding_box_train/", d + "query/", d + "bounding_box_test/"
    _image(root / g / "-1_c3s1_000001_01.jpg")  # junk (pid -1): fastreid skips it
    return {"train": _train("market1501", [(tr + "0002_c1s1_000451_03.jpg", 2, 0),
                                           (tr + "0002_c2s1_000301_01.jpg", 2, 1),
                                           (tr + "0007_c3s3_000551_01.jpg", 7, 2),
                                           (tr + "0007_c6s2_000123_02.jpg", 7, 5)]),
            "query": [(q + "0001_c1s1_001051_00.jpg", 1, 0), (q + "0003_c2s1_000176_00.jpg", 3, 1)],
            "gallery": [(g + "0001_c5s1_001501_02.jpg", 1, 4),
                        (g + "0003_c4s2_000231_01.jpg", 3, 3),
                        (g + "0000_c1s1_000000_01.jpg", 0, 0)]}  # pid 0: distractor, kept


def duke(root, name):
    tr, q, g = (f"DukeMTMC-reID/{s}/" for s in ("bounding_box_train", "query", "bounding_box_test"))
    return {"train": _train("dukemtmc", [(tr + "0001_c2_f0046182.jpg", 1, 1),
                                         (tr + "0001_c5_f0051341.jpg", 1, 4),
                                         (tr + "0005_c1_f0000393.jpg", 5, 0),
                                         (tr + "0005_c8_f0112233.jpg", 5, 7)]),
            "query": [(q + "0002_c1_f0044158.jpg", 2, 0), (q + "0004_c3_f0104437.jpg", 4, 2)],
            "gallery": [(g + "0002_c6_f0050001.jpg", 2, 5), (g + "0004_c7_f0123445.jpg", 4, 6),
                        (g + "0009_c2_f0012345.jpg", 9, 1)]}


def msmt17(version):
    def build(root, name):
        main = f"MSMT17_{version}/"
        tr, te = {"V1": ("train/", "test/"), "V2": ("mask_train_v2/", "mask_test_v2/")}[version]
        lists = {  # list file lines '<relpath> <pid>'; camera = 3rd '_' field, 1-based
            "train": [("0000/0000_000_01_0303morning_0015_0.jpg", 0, 0),
                      ("0000/0000_001_03_0303morning_0033_1.jpg", 0, 2),
                      ("0001/0001_000_07_0303noon_0102_0.jpg", 1, 6),
                      ("0001/0001_004_15_0303afternoon_0931_2.jpg", 1, 14)],
            "val": [("0002/0002_000_02_0303morning_0245_0.jpg", 2, 1)],
            "query": [("0000/0000_000_04_0113morning_0027_0.jpg", 0, 3),
                      ("0001/0001_000_10_0113noon_0561_1.jpg", 1, 9)],
            "gallery": [("0000/0000_002_12_0113morning_0103_0.jpg", 0, 11),
                        ("0001/0001_005_06_0113afternoon_0877_0.jpg", 1, 5),
                        ("0002/0002_001_09_0113noon_0742_3.jpg", 2, 8)]}
        for split, items in lists.items():
            _lines(root / main / f"list_{split}.txt", [f"{p} {pid}" for p, pid, _ in items])
        _image(root / main / tr / lists["val"][0][0])  # val: in the train folder, not trained on
        # test pids are shifted by the number of train ids (2)
        return {"train": _train("msmt17", [(main + tr + p, i, c) for p, i, c in lists["train"]]),
                **{s: [(main + te + p, pid + 2, c) for p, pid, c in lists[s]]
                   for s in ("query", "gallery")}}
    return build


def cuhk03(root, name):
    d = root / "cuhk03"
    for mat in ("cuhk03_release/cuhk-03.mat", "cuhk03_new_protocol_config_detected.mat",
                "cuhk03_new_protocol_config_labeled.mat"):
        _lines(d / mat, ["not a .mat file: never opened while the splits below exist"])
    for sub in ("images_detected", "images_labeled"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    lab = "cuhk03/images_labeled/"  # <pair>_<pid>_<view>_<img>.png
    split = {"train": [(lab + "1_001_1_01.png", 0, 0), (lab + "1_001_2_06.png", 0, 1),
                       (lab + "1_002_1_02.png", 1, 0), (lab + "1_002_2_07.png", 1, 1)],
             "query": [(lab + "1_003_1_01.png", 3, 0), (lab + "1_004_1_03.png", 4, 0)],
             "gallery": [(lab + "1_003_2_08.png", 3, 1), (lab + "1_004_2_10.png", 4, 1),
                         (lab + "1_005_2_06.png", 5, 1)]}
    # splits_new_labeled.json is what fastreid reads by default (labeled, new protocol)
    ready = [{s: [[str(root / p), pid, cam] for p, pid, cam in items]
              for s, items in split.items()}]
    (d / "splits_new_labeled.json").write_text(json.dumps(ready))
    for other in ("new_detected", "classic_detected", "classic_labeled"):
        (d / f"splits_{other}.json").write_text("[]")
    return {**split, "train": _train("cuhk03", split["train"])}


def veri(root, name):
    tr, q, g = (f"veri/{s}/" for s in ("image_train", "image_query", "image_test"))
    return {"train": _train("veri", [(tr + "0001_c001_00016450_0.jpg", 1, 0),
                                     (tr + "0001_c002_00016580_1.jpg", 1, 1),
                                     (tr + "0776_c019_00087030_0.jpg", 776, 18),
                                     (tr + "0776_c020_00087190_1.jpg", 776, 19)]),
            "query": [(q + "0002_c002_00030600_1.jpg", 2, 1),
                      (q + "0005_c004_00071720_1.jpg", 5, 3)],
            "gallery": [(g + "0002_c003_00030640_0.jpg", 2, 2),
                        (g + "0005_c011_00071335_0.jpg", 5, 10),
                        (g + "0013_c014_00045290_0.jpg", 13, 13)]}


def vehicleid(root, name):
    split = root / "vehicleid/train_test_split"
    train, test = [(1, 10), (2, 10), (3, 11), (4, 11)], [(101, 20), (102, 20), (103, 20),
                                                         (201, 21), (202, 21)]
    _lines(split / "train_list.txt", [f"{i:07d} {v}" for i, v in train])  # '<img> <vid>'
    _lines(split / VEHICLEID_TEST[name], [f"{i:07d} {v}" for i, v in test])  # only this one
    img = "vehicleid/image/{:07d}.jpg".format
    # the camera is the image id; query/gallery are split at random, one gallery image per vid
    return {"train": _train("vehicleid", [(img(i), v, i) for i, v in train]),
            "test": [(img(i), v, i) for i, v in test]}


def veriwild(root, name):
    split = root / "VERI-Wild/train_test_split"
    sets = {"train": [("00001", "000001", 12), ("00001", "000002", 7),
                      ("00002", "000015", 3), ("00002", "000016", 12)],
            "query": [("10001", "200001", 5), ("10002", "200011", 1)],
            "gallery": [("10001", "200002", 6), ("10002", "200012", 2), ("10003", "200021", 5)]}
    _lines(split / "vehicle_info.txt", ["id/image;Camera ID;Time;Model;Type;Color"] + [
        f"{v}/{i};{c:03d};2018-03-11 11:41:49;Audi;SUV;white"
        for items in sets.values() for v, i, c in items])
    n = VERIWILD_TEST[name]
    for s, fname in (("train", "train_list.txt"), ("query", f"test_{n}_query.txt"),
                     ("gallery", f"test_{n}.txt")):
        _lines(split / fname, [f"{v}/{i}" for v, i, _ in sets[s]])
    exp = {s: [(f"VERI-Wild/images/{v}/{i}.jpg", int(v), c) for v, i, c in items]
           for s, items in sets.items()}
    return {**exp, "train": _train("veriwild", exp["train"])}


CASES = [pytest.param("Market1501", market, id="Market1501"),
         pytest.param("DukeMTMC", duke, id="DukeMTMC"),
         pytest.param("MSMT17", msmt17("V2"), id="MSMT17-V2"),
         pytest.param("MSMT17", msmt17("V1"), id="MSMT17-V1"),
         pytest.param("CUHK03", cuhk03, id="CUHK03"),
         pytest.param("VeRi", veri, id="VeRi"),
         *(pytest.param(n, vehicleid, id=n) for n in VEHICLEID_TEST),
         *(pytest.param(n, veriwild, id=n) for n in VERIWILD_TEST)]

# What the layout hint of a missing dataset must name (what the loader actually reads).
LAYOUT_TOKENS = {
    "Market1501": ["Market-1501-v15.09.15", "bounding_box_train", "query", "bounding_box_test"],
    "DukeMTMC": ["DukeMTMC-reID", "bounding_box_train", "query", "bounding_box_test"],
    "MSMT17": ["MSMT17_V2", "mask_train_v2", "mask_test_v2", "MSMT17_V1", "list_train.txt",
               "list_val.txt", "list_query.txt", "list_gallery.txt"],
    "CUHK03": ["cuhk03/cuhk03_release/cuhk-03.mat", "cuhk03_new_protocol_config_detected.mat",
               "cuhk03_new_protocol_config_labeled.mat"],
    "VeRi": ["veri/", "image_train", "image_query", "image_test"],
    **{n: ["vehicleid/image/", "train_test_split/", "train_list.txt", t]
       for n, t in VEHICLEID_TEST.items()},
    **{n: ["VERI-Wild/images/", "train_test_split/", "vehicle_info.txt", "train_list.txt",
           f"test_{k}.txt", f"test_{k}_query.txt"] for n, k in VERIWILD_TEST.items()},
}


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty $FASTREID_DATASETS; h5py made unimportable (CUHK03 must use ready splits)."""
    root = tmp_path / "datasets"
    root.mkdir()
    monkeypatch.setenv("FASTREID_DATASETS", str(root))
    monkeypatch.setitem(sys.modules, "h5py", None)
    return root


def make(root, name, builder):
    exp = builder(root, name)
    for items in exp.values():
        for rel, *_ in items:
            _image(root / rel)
    return exp


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("name,builder", CASES)
def test_build_dataset_parses_real_layout(root, name, builder):
    exp = make(root, name, builder)
    data = build_dataset(_cfg(name), name)
    assert _rel(root, data.train) == sorted(exp["train"])
    if "test" in exp:  # VehicleID: random query/gallery split, one gallery image per vehicle
        assert _rel(root, data.query + data.gallery) == sorted(exp["test"])
        assert sorted(pid for _, pid, _ in data.gallery) == sorted({p for _, p, _ in exp["test"]})
    else:
        assert _rel(root, data.query) == sorted(exp["query"])
        assert _rel(root, data.gallery) == sorted(exp["gallery"])


@pytest.mark.parametrize("name,builder", CASES)
def test_cpu_loaders_read_real_layout(root, name, builder):
    exp = make(root, name, builder)
    cfg = _cfg(name)

    batch = next(iter(build_train_loader(cfg)))
    assert batch["images"].shape == (4, 3, *SIZE) and batch["images"].dtype == torch.float32
    # NaiveIdentitySampler: 2 ids x NUM_INSTANCE=2, relabelled to 0..1
    assert Counter(batch["targets"].tolist()) == {0: 2, 1: 2}
    assert len(batch["camids"]) == len(batch["img_paths"]) == 4

    loader, num_query = build_test_loader(cfg, name)
    test = exp.get("test") or exp["query"] + exp["gallery"]
    gallery_size = len({pid for _, pid, _ in test}) if "test" in exp else len(exp["gallery"])
    assert num_query == len(test) - gallery_size
    batches = list(loader)
    assert [len(b["img_paths"]) for b in batches] == [4] * (len(test) // 4) + [len(test) % 4]
    assert all(b["images"].shape[1:] == (3, *SIZE) for b in batches)
    got = [(os.path.relpath(p, root), t, c) for b in batches
           for p, t, c in zip(b["img_paths"], b["targets"].tolist(), b["camids"].tolist())]
    assert sorted(got) == sorted(test)  # raw test pids/camids, not relabelled
    if "query" in exp:  # query first, then gallery
        assert sorted(got[:num_query]) == sorted(exp["query"])


@pytest.mark.parametrize("name", list(LAYOUT_TOKENS))
def test_missing_dataset_names_expected_path_and_layout(root, name):
    cfg = _cfg(name)
    for build in (lambda: build_dataset(cfg, name), lambda: build_train_loader(cfg),
                  lambda: build_test_loader(cfg, name)):
        with pytest.raises(DatasetNotFoundError) as e:
            build()
        msg = str(e.value)
        assert name in msg and os.path.abspath(root) in msg and "FASTREID_DATASETS" in msg
        assert EXPECTED_LAYOUT[name] in msg
        assert [t for t in LAYOUT_TOKENS[name] if t not in EXPECTED_LAYOUT[name]] == []


@pytest.mark.parametrize("name,builder,missing", [
    ("Market1501", market, "Market-1501-v15.09.15/bounding_box_test"),
    ("MSMT17", msmt17("V2"), "MSMT17_V2/list_val.txt"),
    ("CUHK03", cuhk03, "cuhk03/cuhk03_new_protocol_config_labeled.mat"),
    ("VeRi", veri, "veri/image_query"),
    ("VehicleID", vehicleid, "vehicleid/train_test_split/test_list_13164.txt"),
    ("SmallVeRiWild", veriwild, "VERI-Wild/train_test_split/test_3000_query.txt"),
])
def test_missing_part_of_a_dataset_names_that_file(root, name, builder, missing):
    make(root, name, builder)
    path = root / missing
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(DatasetNotFoundError, match=re.escape(str(path))):
        build_dataset(_cfg(name), name)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "deleted"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_bad_image_raises_image_read_error_naming_the_file(root, split, damage):
    """The file is damaged after the dataset was parsed, so only reading it can fail."""
    make(root, "Market1501", market)
    cfg = _cfg("Market1501")
    if split == "train":  # every train batch holds all 4 train images
        loader = build_train_loader(cfg)
        bad = root / "Market-1501-v15.09.15/bounding_box_train/0007_c3s3_000551_01.jpg"
    else:
        loader = build_test_loader(cfg, "Market1501")[0]
        bad = root / "Market-1501-v15.09.15/bounding_box_test/0003_c4s2_000231_01.jpg"
    if damage == "deleted":
        bad.unlink()
    else:
        data = bad.read_bytes()
        bad.write_bytes({"garbage": b"\x00\x13 not a JPEG \xff" * 16, "empty": b"",
                         "truncated": data[:len(data) // 2]}[damage])
    with pytest.raises(ImageReadError, match=re.escape(str(bad))):
        for _, _ in zip(range(3), loader):
            pass
