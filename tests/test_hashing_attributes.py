"""Attribute .mat loaders (Market-1501 / DukeMTMC / SynthPerson layouts) and the annotator."""
import numpy as np
import pytest
import scipy.io
import torch

from reid_ext.config import get_cfg
from reid_ext.data import ITEM_ANNOTATORS
from reid_ext.data.attributes import (DUKE_FIELDS, MARKET_FIELDS, MARKET_NAMES,
                                      AttributeFileError, annotate_attributes,
                                      load_attribute_table)
from reid_ext.data.synthetic import person

# Market's real train field order (differs from the test order)
MARKET_TRAIN_ORDER = ["age", "backpack", "bag", "handbag", "downblack", "downblue", "downbrown",
                      "downgray", "downgreen", "downpink", "downpurple", "downwhite",
                      "downyellow", "upblack", "upblue", "upgreen", "upgray", "uppurple",
                      "upred", "upwhite", "upyellow", "clothes", "down", "up", "hair", "hat",
                      "gender"]


def _part(rows, ids, order):
    fields = {f: np.array([[r[f] for r in rows]], dtype=np.float64) for f in order}
    index = np.empty((1, len(ids)), dtype=object)
    index[0, :] = [f"{i:04d}" for i in ids]
    fields["image_index"] = index
    return fields


def _random_market(rng, n):
    rows = []
    for _ in range(n):
        r = {f: float(rng.integers(1, 3)) for f in MARKET_FIELDS}
        r["age"] = float(rng.integers(1, 5))
        rows.append(r)
    return rows


def _write_market(path, train, test, train_ids, test_ids, var="market_attribute"):
    scipy.io.savemat(path, {var: {"train": _part(train, train_ids, MARKET_TRAIN_ORDER),
                                  "test": _part(test, test_ids, MARKET_FIELDS[::-1])}})


def _expected_market(row):
    out = []
    for name in MARKET_NAMES:
        if name.startswith("age_"):
            out.append(float(row["age"] == 1 + ["young", "teenager", "adult", "old"].index(
                name[4:])))
        else:
            out.append(row[name] - 1)
    return np.array(out, dtype=np.float32)


def test_market_layout_by_field_name(tmp_path):
    rng = np.random.default_rng(0)
    train, test = _random_market(rng, 4), _random_market(rng, 3)
    path = str(tmp_path / "market_attribute.mat")
    _write_market(path, train, test, [2, 7, 10, 11], [1, 3, 5])
    table, names = load_attribute_table(path, "market")
    assert len(names) == 30 and sorted(table) == [1, 2, 3, 5, 7, 10, 11]
    np.testing.assert_array_equal(table[7], _expected_market(train[1]))
    np.testing.assert_array_equal(table[5], _expected_market(test[2]))
    ages = np.stack([table[i][9:13] for i in table])
    assert (ages.sum(1) == 1).all()  # one-hot age


def test_duke_layout(tmp_path):
    rng = np.random.default_rng(1)
    rows = [{f: float(rng.integers(1, 3)) for f in DUKE_FIELDS} for _ in range(5)]
    path = str(tmp_path / "duke_attribute.mat")
    scipy.io.savemat(path, {"duke_attribute": {"train": _part(rows[:2], [1, 2], DUKE_FIELDS),
                                               "test": _part(rows[2:], [3, 4, 5],
                                                             DUKE_FIELDS[::-1])}})
    table, names = load_attribute_table(path, "duke")
    assert len(names) == 23
    np.testing.assert_array_equal(table[4], np.array([rows[3][f] - 1 for f in DUKE_FIELDS],
                                                     dtype=np.float32))


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="MODEL.ATTR.FILE"):
        load_attribute_table(str(tmp_path / "none.mat"))
    rng = np.random.default_rng(2)
    path = str(tmp_path / "m.mat")
    _write_market(path, _random_market(rng, 2), _random_market(rng, 2), [1, 2], [3, 4])
    with pytest.raises(AttributeFileError, match="lacks the fields"):
        load_attribute_table(path, "duke")  # a Market file read as Duke
    bad = _random_market(rng, 2)
    bad[0]["hat"] = 3.0
    _write_market(path, bad, _random_market(rng, 1), [1, 2], [3])
    with pytest.raises(AttributeFileError, match="hat must be 1"):
        load_attribute_table(path, "market")


class _FakeMarket:  # only what the annotator reads: the class name and attribute_file
    def __init__(self, path):
        self.attribute_file = path


def test_annotator_joins_by_identity(tmp_path):
    assert annotate_attributes in ITEM_ANNOTATORS
    rng = np.random.default_rng(3)
    train, test = _random_market(rng, 2), _random_market(rng, 2)
    path = str(tmp_path / "synth_person_attribute.mat")
    _write_market(path, train, test, [2, 4], [6, 8])
    cfg = get_cfg()
    items = [("a.jpg", "synthperson_4", 0), ("b.jpg", "synthperson_2", 1, {"x": 1})]
    assert annotate_attributes(cfg, _FakeMarket(path), items, "train") is items  # off
    cfg.MODEL.ATTR.ENABLED = True
    out = annotate_attributes(cfg, _FakeMarket(path), items, "train")
    np.testing.assert_array_equal(out[0][3]["attributes"].numpy(), _expected_market(train[1]))
    assert out[1][3]["x"] == 1 and out[1][3]["attributes"].shape == (30,)
    gallery = [("c.jpg", 8, 2), ("junk.jpg", -1, 3), ("d.jpg", 0, 1)]
    out = annotate_attributes(cfg, _FakeMarket(path), gallery, "gallery")
    np.testing.assert_array_equal(out[0][3]["attributes"].numpy(), _expected_market(test[1]))
    assert torch.all(out[1][3]["attributes"] == -1) and torch.all(out[2][3]["attributes"] == -1)
    with pytest.raises(AttributeFileError, match=r"no attribute labels.*\[9\]"):
        annotate_attributes(cfg, _FakeMarket(path), [("e.jpg", 9, 0)], "query")
    cfg.MODEL.ATTR.NUM = 23
    with pytest.raises(AttributeFileError, match="MODEL.ATTR.NUM is 23"):
        annotate_attributes(cfg, _FakeMarket(path), gallery, "gallery")


def test_synthperson_writer_is_read_like_market(tmp_path):
    rng = np.random.default_rng(4)
    people = {p: person.random_person(rng) for p in (1, 2, 3)}
    path = str(tmp_path / "synth_person_attribute.mat")
    person.write_attribute_mat(path, people, [1, 2], [3])
    table, names = load_attribute_table(path, "market")
    assert sorted(table) == [1, 2, 3]
    np.testing.assert_array_equal(table[3], _expected_market(
        {k: float(v) for k, v in people[3].attrs.items()}))
