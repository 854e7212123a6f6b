"""Identity-level attribute labels of Market-1501 / DukeMTMC-reID (Lin et al., "Improving
person re-identification by attribute and identity learning", PR 2019; files of
vana77/Market-1501_Attribute and vana77/DukeMTMC-attribute) and of SynthPerson.

Functional core: :func:`load_attribute_table` reads a ``*_attribute.mat`` file into
``({identity: (A,) float32 0/1 vector}, names)``. Fields are read *by name*, so the
field order of the file (which differs between Market's train and test parts) does not
matter. Labels 1/2 become 0/1; Market's age (1..4) becomes 4 one-hot bits, giving 30
binary attributes for Market-1501 (and SynthPerson, which writes Market's layout) and
23 for DukeMTMC-reID.

Annotator: :func:`annotate_attributes` (appended to ``reid_ext.data.ITEM_ANNOTATORS``,
active when ``MODEL.ATTR.ENABLED``) adds ``{"attributes": (A,) float32}`` to every
item, joined by identity. Junk / distractor identities (pid <= 0) get -1 (unknown).
"""
import os
import re

import numpy as np
import torch

from .datasets import ITEM_ANNOTATORS

MARKET_BINARY = ["gender", "hair", "up", "down", "clothes", "hat", "backpack", "bag", "handbag"]
MARKET_AGE = ["young", "teenager", "adult", "old"]  # age 1..4, one-hot
MARKET_UP = ["upblack", "upwhite", "upred", "uppurple", "upyellow", "upgray", "upblue", "upgreen"]
MARKET_DOWN = ["downblack", "downwhite", "downpink", "downpurple", "downyellow", "downgray",
               "downblue", "downgreen", "downbrown"]
MARKET_FIELDS = MARKET_BINARY + ["age"] + MARKET_UP + MARKET_DOWN  # the 27 fields of the file
MARKET_NAMES = MARKET_BINARY + [f"age_{a}" for a in MARKET_AGE] + MARKET_UP + MARKET_DOWN  # 30

DUKE_FIELDS = (["gender", "top", "boots", "hat", "backpack", "bag", "handbag", "shoes"]
               + ["upblack", "upwhite", "upred", "uppurple", "upgray", "upblue", "upgreen",
                  "upbrown"]
               + ["downblack", "downwhite", "downred", "downgray", "downblue", "downgreen",
                  "downbrown"])  # 23
DUKE_NAMES = list(DUKE_FIELDS)

# file name and .mat variable per dataset
KNOWN_FILES = {
    "Market1501": ("market_attribute.mat", "market_attribute"),
    "DukeMTMC": ("duke_attribute.mat", "duke_attribute"),
    "SynthPerson": ("synth_person_attribute.mat", "market_attribute"),
}


class AttributeFileError(ValueError):
    pass


def _field_names(struct):
    if hasattr(struct, "dtype") and struct.dtype.names:
        return list(struct.dtype.names)
    if hasattr(struct, "_fieldnames"):
        return list(struct._fieldnames)
    return []


def _get(struct, name):
    if hasattr(struct, "dtype") and struct.dtype.names:
        v = struct[name]
        while isinstance(v, np.ndarray) and v.dtype == object and v.size == 1:
            v = v.flat[0]
        return v
    return getattr(struct, name)


def _unwrap(x):
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.flat[0]
    if isinstance(x, np.ndarray) and x.dtype.names and x.size == 1:
        x = x.reshape(-1)[0]
    return x


def _ids(index, path, part):
    out = []
    for v in np.asarray(index, dtype=object).reshape(-1):
        while isinstance(v, np.ndarray):
            v = v.reshape(-1)[0] if v.size else ""
        try:
            out.append(int(str(v).strip()))
        except ValueError:
            raise AttributeFileError(f"{path}: {part}.image_index has a non-numeric identity "
                                     f"{v!r}") from None
    return out


def _binary_part(struct, fields, path, part):
    names = _field_names(struct)
    missing = [f for f in fields + ["image_index"] if f not in names]
    if missing:
        raise AttributeFileError(f"{path}: '{part}' lacks the fields {missing} (has {names}); "
                                 f"is it the attribute file of another dataset?")
    ids = _ids(_get(struct, "image_index"), path, part)
    cols = []
    for f in fields:
        v = np.asarray(_get(struct, f), dtype=np.float64).reshape(-1)
        if len(v) != len(ids):
            raise AttributeFileError(f"{path}: {part}.{f} has {len(v)} values but "
                                     f"{part}.image_index has {len(ids)} identities")
        if f == "age":
            if not np.isin(v, [1, 2, 3, 4]).all():
                raise AttributeFileError(f"{path}: {part}.age must be in 1..4")
            cols.extend((v == k).astype(np.float32) for k in (1, 2, 3, 4))
        else:
            if not np.isin(v, [1, 2]).all():
                raise AttributeFileError(f"{path}: {part}.{f} must be 1 (no) or 2 (yes), got "
                                         f"{sorted(set(v.tolist()))[:5]}")
            cols.append((v - 1).astype(np.float32))
    return ids, np.stack(cols, axis=1)


def load_attribute_table(path, layout="market", variable=None):
    """Read an attribute .mat file -> (``{identity: (A,) float32}``, attribute names).

    layout: "market" (27 fields, A = 30 with age one-hot) or "duke" (23 fields, A = 23).
    variable: the .mat variable (default: market_attribute / duke_attribute, or the only
    struct variable of the file). Train and test parts are merged; an identity labelled
    twice with different values is an error.
    """
    from scipy.io import loadmat
    if not os.path.isfile(path):
        raise FileNotFoundError(f"attribute file not found: {path} (set MODEL.ATTR.FILE, or "
                                f"put the file of vana77/Market-1501_Attribute or "
                                f"vana77/DukeMTMC-attribute there)")
    fields = {"market": MARKET_FIELDS, "duke": DUKE_FIELDS}[layout]
    names = {"market": MARKET_NAMES, "duke": DUKE_NAMES}[layout]
    try:
        mat = loadmat(path)
    except Exception as e:  # scipy raises several types for corrupt files
        raise AttributeFileError(f"cannot read attribute file {path}: {e}") from None
    variable = variable or f"{layout}_attribute"
    if variable not in mat:
        structs = [k for k in mat if not k.startswith("__")]
        if len(structs) != 1:
            raise AttributeFileError(f"{path}: no variable '{variable}' (has {structs})")
        variable = structs[0]
    root = _unwrap(mat[variable])
    parts = [p for p in ("train", "test") if p in _field_names(root)]
    if not parts:
        raise AttributeFileError(f"{path}: '{variable}' has no 'train'/'test' parts "
                                 f"(fields {_field_names(root)})")
    table = {}
    for part in parts:
        ids, labels = _binary_part(_unwrap(_get(root, part)), fields, path, part)
        for pid, row in zip(ids, labels):
            if pid in table and not np.array_equal(table[pid], row):
                raise AttributeFileError(f"{path}: identity {pid} has two different labellings")
            table[pid] = row
    return table, names


def identity_of(pid):
    """fastreid pids are ints (query/gallery) or '<dataset>_<int>' strings (train)."""
    if isinstance(pid, (int, np.integer)):
        return int(pid)
    m = re.search(r"(-?\d+)$", str(pid))
    if m is None:
        raise ValueError(f"cannot read an identity number from pid {pid!r}")
    return int(m.group(1))


def attribute_file_for(cfg, dataset):
    """MODEL.ATTR.FILE, else ``dataset.attribute_file``, else the known file name in the
    dataset's folder -> (path, layout)."""
    name = type(dataset).__name__
    layout = "duke" if "duke" in name.lower() else "market"
    if cfg.MODEL.ATTR.FILE:
        return cfg.MODEL.ATTR.FILE, layout
    if getattr(dataset, "attribute_file", None):
        return dataset.attribute_file, layout
    if name not in KNOWN_FILES:
        raise AttributeFileError(f"MODEL.ATTR.ENABLED is True but dataset {name} has no known "
                                 f"attribute file; set MODEL.ATTR.FILE (Market-1501 layout) or "
                                 f"turn attributes off")
    fname = KNOWN_FILES[name][0]
    dirs = [getattr(dataset, a, None) for a in ("data_dir", "dataset_dir", "root")]
    candidates = [os.path.join(d, fname) for d in dirs if d]
    for c in candidates:
        if os.path.isfile(c):
            return c, layout
    raise FileNotFoundError(f"attribute file {fname} for {name} not found; looked at "
                            f"{candidates}. Set MODEL.ATTR.FILE")


_CACHE = {}


def attach_attributes(items, table, num_attrs, source=""):
    """items (path, pid, camid[, extras]) -> items with extras["attributes"] (A,) float32;
    junk identities (<= 0) get -1 everywhere; other unlabelled identities are an error."""
    unknown = torch.full((num_attrs,), -1.0)
    out, missing = [], set()
    for item in items:
        path, pid, camid = item[:3]
        extras = dict(item[3]) if len(item) > 3 and item[3] else {}
        ident = identity_of(pid)
        if ident in table:
            extras["attributes"] = torch.from_numpy(table[ident])
        elif ident <= 0:
            extras["attributes"] = unknown
        else:
            missing.add(ident)
            continue
        out.append((path, pid, camid, extras))
    if missing:
        raise AttributeFileError(f"{len(missing)} identities have no attribute labels in "
                                 f"{source} (e.g. {sorted(missing)[:5]}); wrong file for "
                                 f"this dataset?")
    return out


def annotate_attributes(cfg, dataset, items, split):
    """ITEM_ANNOTATORS entry: attach attribute labels when MODEL.ATTR.ENABLED."""
    if not cfg.MODEL.ATTR.ENABLED:
        return items
    path, layout = attribute_file_for(cfg, dataset)
    key = (os.path.abspath(path), layout)
    if key not in _CACHE:
        _CACHE[key] = load_attribute_table(path, layout)
    table, names = _CACHE[key]
    if len(names) != cfg.MODEL.ATTR.NUM:
        raise AttributeFileError(f"MODEL.ATTR.NUM is {cfg.MODEL.ATTR.NUM} but {path} gives "
                                 f"{len(names)} binary attributes ({layout} layout)")
    return attach_attributes(items, table, len(names), source=f"{path} ({split} split)")


if annotate_attributes not in ITEM_ANNOTATORS:
    ITEM_ANNOTATORS.append(annotate_attributes)
