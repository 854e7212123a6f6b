"""SynthPerson / SynthVehicle: deterministic, cached, Market/VeRi conventions, attributes."""
import json
import os
import os.path as osp
import re
import threading
from collections import Counter

import numpy as np
import pytest
import scipy.io
from PIL import Image

import reid_ext.compat  # noqa: F401  (before fastreid.data)
from fastreid.data.datasets import DATASET_REGISTRY, Market1501, VeRi

from reid_ext.config import get_cfg
from reid_ext.data.synthetic import SynthPerson, SynthVehicle
from reid_ext.data.synthetic.common import DONE_MARKER, make_rng
from reid_ext.data.synthetic.person import LOWER_COLOURS, MARKET_ATTRIBUTES, UPPER_COLOURS

SMALL = {"num_train_ids": 8, "num_test_ids": 8, "imgs_per_id": 4, "num_cams": 3}
SIZES = {SynthPerson: (64, 32), SynthVehicle: (48, 48)}
CLASSES = [SynthPerson, SynthVehicle]


def build(cls, root, **overrides):
    return cls(root=str(root), **{**SMALL, "size": SIZES[cls], **overrides})


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """``generated(cls)``: one small dataset per class, shared by the read-only tests."""
    cache = {}

    def get(cls):
        if cls not in cache:
            cache[cls] = build(cls, tmp_path_factory.mktemp(cls.__name__))
        return cache[cls]
    return get


@pytest.fixture(params=CLASSES, ids=lambda c: c.__name__)
def dataset(request, generated):
    return generated(request.param)


def all_files(folder):
    """{relative path: bytes} of every file under ``folder``."""
    out = {}
    for base, _, names in os.walk(folder):
        for name in names:
            path = osp.join(base, name)
            with open(path, "rb") as f:
                out[osp.relpath(path, folder)] = f.read()
    return out


def test_registered():
    assert DATASET_REGISTRY.get("SynthPerson") is SynthPerson
    assert DATASET_REGISTRY.get("SynthVehicle") is SynthVehicle


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_deterministic_and_seeded(cls, tmp_path):
    first = all_files(build(cls, tmp_path / "a").dataset_dir)
    again = all_files(build(cls, tmp_path / "b").dataset_dir)
    other = all_files(build(cls, tmp_path / "c", seed=1).dataset_dir)
    assert first == again
    images = {v for k, v in first.items() if k.endswith(".jpg")}
    assert len(images) == sum(k.endswith(".jpg") for k in first) > 0
    assert images.isdisjoint(v for k, v in other.items() if k.endswith(".jpg"))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_cached_and_redone_when_incomplete(cls, tmp_path, monkeypatch):
    data = build(cls, tmp_path)
    marker = osp.join(data.dataset_dir, DONE_MARKER)
    stamp = os.stat(marker).st_mtime_ns

    def fail(self, folder):
        raise AssertionError("regenerated although cached")

    with monkeypatch.context() as m:
        m.setattr(cls, "_generate", fail)
        again = build(cls, tmp_path)
    assert os.stat(marker).st_mtime_ns == stamp
    assert again.train == data.train and again.gallery == data.gallery
    # an interrupted generation (no marker) is redone; no temporary folder is left over
    os.remove(marker)
    redone = build(cls, tmp_path)
    assert osp.isfile(marker) and redone.query == data.query
    assert os.listdir(osp.dirname(data.dataset_dir)) == [osp.basename(data.dataset_dir)]


def test_concurrent_generation_does_not_collide(tmp_path):
    results, errors = [], []

    def construct():
        try:
            results.append(build(SynthPerson, tmp_path))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=construct) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2
    assert results[0].train == results[1].train and results[0].gallery == results[1].gallery
    assert os.listdir(tmp_path / "SynthPerson") == [osp.basename(results[0].dataset_dir)]


def test_items_like_fastreid(dataset):
    name = dataset.dataset_name
    assert dataset.train and dataset.query and dataset.gallery
    for path, pid, camid in dataset.train:
        assert osp.isfile(path)
        assert pid.startswith(name + "_") and camid.startswith(name + "_")
    for path, pid, camid in dataset.query + dataset.gallery:
        assert isinstance(pid, int) and isinstance(camid, int) and 0 <= camid < SMALL["num_cams"]
    train_ids = {int(pid.split("_")[1]) for _, pid, _ in dataset.train}
    test_ids = {pid for _, pid, _ in dataset.query + dataset.gallery}
    assert len(train_ids) == SMALL["num_train_ids"]
    assert train_ids.isdisjoint(test_ids)
    assert 0 in {pid for _, pid, _ in dataset.gallery}  # distractors
    assert 0 not in {pid for _, pid, _ in dataset.query}
    assert {pid for _, pid, _ in dataset.query} == test_ids - {0}
    assert Counter(pid for _, pid, _ in dataset.query).most_common(1)[0][1] <= 2


def test_every_query_has_cross_camera_match(dataset):
    gallery = {(pid, camid) for _, pid, camid in dataset.gallery}
    for _, pid, camid in dataset.query:
        assert any(g_pid == pid and g_cam != camid for g_pid, g_cam in gallery), (pid, camid)


def test_images_open_at_requested_size(dataset):
    h, w = dataset.params.size
    for path, _, _ in dataset.train + dataset.query + dataset.gallery:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and image.size == (w, h)


def _fastreid_loader(dataset, tmp_path):
    """fastreid's own Market1501 / VeRi loader pointed at a link to the generated folder."""
    root = tmp_path / "fastreid_root"
    root.mkdir()
    if isinstance(dataset, SynthPerson):
        os.symlink(dataset.dataset_dir, root / "Market-1501-v15.09.15")
        return Market1501(root=str(root))
    os.symlink(dataset.dataset_dir, root / "veri")
    return VeRi(root=str(root))


def test_names_parse_with_fastreid_loaders(dataset, tmp_path):
    loader = _fastreid_loader(dataset, tmp_path)
    prefix = dataset.dataset_name, loader.dataset_name

    def normalise(items, train):
        out = set()
        for path, pid, camid in items:
            if train:
                pid, camid = (v.replace(prefix[1] + "_", prefix[0] + "_") for v in (pid, camid))
            out.add((osp.basename(path), pid, camid))
        return out

    assert normalise(loader.train, True) == normalise(dataset.train, False)
    assert normalise(loader.query, False) == normalise(dataset.query, False)
    assert normalise(loader.gallery, False) == normalise(dataset.gallery, False)


def test_folder_and_file_conventions(dataset):
    if isinstance(dataset, SynthPerson):
        folders = {"bounding_box_train", "query", "bounding_box_test"}
        pattern = r"^\d{4}_c\ds1_\d{6}_00\.jpg$"  # 0002_c3s1_000450_00.jpg
    else:
        folders = {"image_train", "image_query", "image_test"}
        pattern = r"^\d{4}_c\d{3}_\d{8}_0\.jpg$"  # 0002_c003_00000450_0.jpg
    assert folders <= set(os.listdir(dataset.dataset_dir))
    names = [osp.basename(p) for p, _, _ in dataset.train + dataset.query + dataset.gallery]
    assert all(re.match(pattern, n) for n in names)
    assert len(set(names)) == len(names)


def test_person_attribute_mat_layout(generated):
    data = generated(SynthPerson)
    assert data.attribute_file == osp.join(data.dataset_dir, "synth_person_attribute.mat")
    mat = scipy.io.loadmat(data.attribute_file, squeeze_me=True, struct_as_record=False)
    attr = mat["market_attribute"]
    assert set(attr._fieldnames) == {"train", "test"}
    with open(osp.join(data.dataset_dir, "attributes.json")) as f:
        table = json.load(f)
    for split, first in (("train", 1), ("test", SMALL["num_train_ids"] + 1)):
        s = getattr(attr, split)
        assert list(s._fieldnames) == list(MARKET_ATTRIBUTES) + ["image_index"]
        n = SMALL[f"num_{split}_ids"]
        ids = [f"{p:04d}" for p in range(first, first + n)]
        assert list(s.image_index) == ids
        for name in MARKET_ATTRIBUTES:
            values = getattr(s, name)
            assert values.shape == (n,) and values.dtype == np.float64
            assert set(values) <= ({1, 2, 3, 4} if name == "age" else {1, 2})
            assert [table[i][name] for i in ids] == values.astype(int).tolist()
        up = np.stack([getattr(s, "up" + c) for c in UPPER_COLOURS])
        down = np.stack([getattr(s, "down" + c) for c in LOWER_COLOURS])
        assert ((up == 2).sum(0) == 1).all() and ((down == 2).sum(0) == 1).all()
        assert all(table[i]["split"] == split for i in ids)


def test_vehicle_metadata_and_lookalikes(generated):
    dataset = generated(SynthVehicle)
    with open(osp.join(dataset.dataset_dir, "attributes.json")) as f:
        table = json.load(f)
    assert len(table) == SMALL["num_train_ids"] + SMALL["num_test_ids"]
    assert {"type", "colour", "stickers", "plate", "wheel", "roof_rack"} <= set(table["0001"])
    pids = list(range(1, 61))
    vehicles = dataset.sample_identities(make_rng(0, 1), pids, [])
    models = Counter((v.vtype, v.colour) for v in vehicles.values())
    assert max(models.values()) >= 2
    twins = [v for v in vehicles.values() if v.parent]
    assert twins and all((v.vtype, v.colour) == (vehicles[v.parent].vtype, vehicles[v.parent].colour)
                         for v in twins)
    assert any(v.details != vehicles[v.parent].details for v in twins)


def test_person_lookalikes_share_most_attributes(generated):
    dataset = generated(SynthPerson)
    people = dataset.sample_identities(make_rng(0, 1), list(range(1, 61)), [])
    twins = [p for p in people.values() if p.parent]
    assert twins
    for person in twins:
        parent = people[person.parent].attrs
        differing = sum(person.attrs[k] != parent[k] for k in MARKET_ATTRIBUTES)
        assert 1 <= differing <= 2  # one flip (a colour change moves two one-hot fields)


def test_cfg_kwargs_and_defaults(tmp_path):
    cfg = get_cfg()
    for cls in CLASSES:
        kwargs = cls.cfg_kwargs(cfg)
        assert kwargs == {"num_train_ids": 0, "num_test_ids": 0, "imgs_per_id": 0, "num_cams": 0,
                          "size": (), "seed": 0}
        params = cls.resolve_params(**kwargs)
        assert (params.num_train_ids, params.num_test_ids, params.imgs_per_id) == (150, 100, 12)
    assert SynthPerson.resolve_params().size == (128, 64) and SynthPerson.resolve_params().num_cams == 6
    assert SynthVehicle.resolve_params().size == (128, 128) and SynthVehicle.resolve_params().num_cams == 8
    cfg.DATASETS.SYNTH.NUM_TRAIN_IDS = 5
    cfg.DATASETS.SYNTH.NUM_TEST_IDS = 4
    cfg.DATASETS.SYNTH.IMGS_PER_ID = 3
    cfg.DATASETS.SYNTH.NUM_CAMS = 2
    cfg.DATASETS.SYNTH.SIZE = [40, 24]
    cfg.DATASETS.SYNTH.SEED = 7
    kwargs = SynthPerson.cfg_kwargs(cfg)
    assert kwargs == {"num_train_ids": 5, "num_test_ids": 4, "imgs_per_id": 3, "num_cams": 2,
                      "size": (40, 24), "seed": 7}
    data = SynthPerson(root=str(tmp_path), **kwargs)
    assert len(data.train) == 15 and data.get_num_pids(data.train) == 5
    assert osp.dirname(data.dataset_dir) == osp.join(str(tmp_path), "SynthPerson")


@pytest.mark.parametrize("bad", [{"num_cams": 1}, {"imgs_per_id": 1}, {"size": (64,)}, {"seed": -1},
                                 {"num_cams": 10}])
def test_invalid_parameters(bad):
    with pytest.raises(ValueError):
        SynthPerson.resolve_params(**{**SMALL, **bad})
