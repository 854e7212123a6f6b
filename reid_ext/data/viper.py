"""``VIPeRSplit``: VIPeR with the standard single-shot evaluation protocol.

VIPeR (Gray, Brennan, Tao, PETS 2007): 632 identities, each photographed once by camera
A and once by camera B (``VIPeR/cam_a/NNN_ANGLE.bmp``, ``VIPeR/cam_b/NNN_ANGLE.bmp``,
48x128 pixels). fastreid's own ``VIPeR`` is a training-only set and stays as it is.

Protocol: 10 random splits of the identities into 316 for training and 316 for testing;
train = both cameras of the training identities; query = camera A of the test
identities; gallery = camera B of the test identities (one true match per query, so mAP
is the mean reciprocal rank). The splits are generated once (:func:`make_splits`, seeded)
and shipped as ``reid_ext/data/splits/viper.json``, so every machine uses the same ones
and nothing is written beside the data. ``DATASETS.VIPER.SPLIT`` picks one,
``DATASETS.VIPER.SPLITS_FILE`` another file of the same form.

Validation (``DATASETS.VIPER.VALIDATION``): the split's 316 *training* identities are
halved again (:func:`validation_halves`, seeded by the split index): train = both
cameras of 158 of them, query / gallery = camera A / B of the other 158. The test
identities are not read, so hyper-parameters chosen there (e.g. the re-ranking's
neighbourhood size) never see the test split.

Checked when the set is built, each with one error naming the path or key: the folder,
every identity in both cameras (once each), every image readable, the split index, and
that the splits file covers exactly the identities on disk.
"""
import json
import os
import re

import numpy as np
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset
from PIL import Image

from ..utils.errors import MissingFileError, UserError
from .datasets import DatasetNotFoundError

SPLITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splits", "viper.json")
CAMERAS = ("cam_a", "cam_b")
_NAME = re.compile(r"^(\d+)_(\d+)\.bmp$", re.IGNORECASE)


class ViperProtocolError(UserError, ValueError):
    """VIPeR files or splits that do not make the protocol (the message names them)."""


def make_splits(identities, num_splits=10, seed=0):
    """Random halves of ``identities`` (sorted ints): ``[{"train": [...], "test": [...]}]``.

    The training half gets ``len // 2`` identities (316 of 632); each list is sorted.
    """
    ids = np.array(sorted(identities))
    rng = np.random.RandomState(seed)
    half = len(ids) // 2
    splits = []
    for _ in range(num_splits):
        perm = rng.permutation(len(ids))
        splits.append({"train": sorted(ids[perm[:half]].tolist()),
                       "test": sorted(ids[perm[half:]].tolist())})
    return splits


def validation_halves(train_ids, split):
    """The split's training identities in two seeded halves: {"train": 158, "test": 158}."""
    return make_splits(train_ids, num_splits=1, seed=1000 + int(split))[0]


def write_splits_file(path, identities, num_splits=10, seed=0):
    """Write the splits file (one split per line, so a person can read it)."""
    splits = make_splits(identities, num_splits, seed)
    lines = [json.dumps(s, separators=(",", ":")) for s in splits]
    with open(path, "w") as f:
        f.write('{"dataset": "VIPeR", "protocol": "single-shot, 316 train / 316 test '
                'identities; query cam_a, gallery cam_b",\n')
        f.write(f' "seed": {seed}, "generator": "reid_ext.data.viper.make_splits",\n')
        f.write(f' "num_identities": {len(set(identities))},\n "splits": [\n  ')
        f.write(",\n  ".join(lines) + "\n ]\n}\n")
    return splits


def read_splits_file(path):
    if not os.path.isfile(path):
        raise MissingFileError(f"DATASETS.VIPER.SPLITS_FILE: splits file not found: {path}")
    try:
        with open(path) as f:
            data = json.load(f)
        splits = data["splits"]
        assert all(isinstance(s["train"], list) and isinstance(s["test"], list) for s in splits)
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        raise ViperProtocolError(f"splits file {path} is not a VIPeR splits file "
                                 f"({type(e).__name__}: {e})") from None
    return splits


def scan_cameras(root):
    """{camera: {identity: path}} of ``root/cam_a`` and ``root/cam_b``, checked."""
    if not os.path.isdir(root):
        raise DatasetNotFoundError(
            f"dataset 'VIPeRSplit' not found: {root} does not exist. Expected "
            f"VIPeR/{{cam_a,cam_b}}/<identity>_<angle>.bmp under FASTREID_DATASETS")
    found = {}
    for cam in CAMERAS:
        folder = os.path.join(root, cam)
        if not os.path.isdir(folder):
            raise DatasetNotFoundError(f"dataset 'VIPeRSplit': folder {folder} not found "
                                       f"(expected {root}/{{cam_a,cam_b}}/<identity>_<angle>.bmp)")
        found[cam] = {}
        for name in sorted(os.listdir(folder)):
            m = _NAME.match(name)
            if not m:
                continue
            pid, path = int(m.group(1)), os.path.join(folder, name)
            if pid in found[cam]:
                raise ViperProtocolError(f"VIPeR identity {pid} has two images in {folder}: "
                                         f"{found[cam][pid]} and {path}")
            found[cam][pid] = path
        if not found[cam]:
            raise DatasetNotFoundError(f"dataset 'VIPeRSplit': no <identity>_<angle>.bmp "
                                       f"image in {folder}")
    a, b = found["cam_a"], found["cam_b"]
    for pid in sorted(set(a) ^ set(b)):
        seen, other = ("cam_a", "cam_b") if pid in a else ("cam_b", "cam_a")
        raise ViperProtocolError(f"VIPeR identity {pid} is seen by one camera only: "
                                 f"{found[seen][pid]} has no image in {os.path.join(root, other)}")
    return found


def check_readable(paths):
    for path in paths:
        try:
            with Image.open(path) as img:
                img.verify()
        except Exception as e:  # PIL raises many types for a bad file
            raise ViperProtocolError(f"cannot read VIPeR image {path}: {e}") from None


def check_split(split, identities, path, index):
    train, test = set(split["train"]), set(split["test"])
    if train & test:
        raise ViperProtocolError(f"splits file {path}, split {index}: identity "
                                 f"{min(train & test)} is in both train and test")
    if train | test != set(identities):
        extra = sorted((train | test) - set(identities))
        absent = sorted(set(identities) - (train | test))
        what = (f"identity {extra[0]} is not among the images" if extra
                else f"identity {absent[0]} of the images is in no half")
        raise ViperProtocolError(f"splits file {path} does not match the images: split "
                                 f"{index}: {what} ({len(extra)} unknown, {len(absent)} "
                                 f"left out); regenerate it with write_splits_file")


@DATASET_REGISTRY.register()
class VIPeRSplit(ImageDataset):
    """VIPeR, one split of the standard protocol (``DATASETS.VIPER.{SPLIT,SPLITS_FILE}``)."""

    dataset_dir = "VIPeR"
    dataset_name = "viper"

    def __init__(self, root="datasets", split=0, splits_file="", validation=False, **kwargs):
        self.root = root
        self.data_dir = os.path.join(root, self.dataset_dir)
        self.splits_file = splits_file or SPLITS_FILE
        found = scan_cameras(self.data_dir)
        splits = read_splits_file(self.splits_file)
        if not 0 <= int(split) < len(splits):
            raise ViperProtocolError(f"DATASETS.VIPER.SPLIT is {split}; {self.splits_file} "
                                     f"has splits 0-{len(splits) - 1}")
        self.split = int(split)
        chosen = splits[self.split]
        check_split(chosen, found["cam_a"], self.splits_file, self.split)
        check_readable([p for cam in CAMERAS for p in found[cam].values()])
        self.validation = bool(validation)
        if self.validation:
            chosen = validation_halves(chosen["train"], self.split)
        a, b = found["cam_a"], found["cam_b"]
        train = [(cam[pid], f"{self.dataset_name}_{pid}", f"{self.dataset_name}_{c}")
                 for pid in chosen["train"] for c, cam in enumerate((a, b))]
        query = [(a[pid], pid, 0) for pid in chosen["test"]]
        gallery = [(b[pid], pid, 1) for pid in chosen["test"]]
        super().__init__(train, query, gallery, **kwargs)

    @classmethod
    def cfg_kwargs(cls, cfg):
        return {"split": cfg.DATASETS.VIPER.SPLIT, "splits_file": cfg.DATASETS.VIPER.SPLITS_FILE,
                "validation": cfg.DATASETS.VIPER.get("VALIDATION", False)}
