"""Building fastreid datasets by name with clear errors and item annotators."""
import logging
import os

from fastreid.data.datasets import DATASET_REGISTRY

from ..utils.errors import ConfigKeyError, MissingFileError

logger = logging.getLogger(__name__)

# Where fastreid's loaders expect each real dataset under $FASTREID_DATASETS.
EXPECTED_LAYOUT = {
    "Market1501": "Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/"
                  "<pid>_c<cam>s<seq>_<frame>_<n>.jpg",
    "DukeMTMC": "DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/<pid>_c<cam>_f<frame>.jpg",
    "MSMT17": "MSMT17_V2/{mask_train_v2/,mask_test_v2/,list_train.txt,list_val.txt,list_query.txt,"
              "list_gallery.txt} (or MSMT17_V1/ with train/ and test/ instead), list lines "
              "'<pid>/<pid>_<n>_<cam>_<date><time>_<frame>_<n>.jpg <pid>'",
    "CUHK03": "cuhk03/cuhk03_release/cuhk-03.mat + "
              "cuhk03/cuhk03_new_protocol_config_detected.mat + "
              "cuhk03/cuhk03_new_protocol_config_labeled.mat (fastreid converts them once, with "
              "h5py and scipy, into cuhk03/images_{detected,labeled}/ and "
              "cuhk03/splits_{new,classic}_{detected,labeled}.json)",
    "VeRi": "veri/{image_train,image_query,image_test}/<pid>_c<ccc>_<frame>_<n>.jpg",
    "VehicleID": "vehicleid/image/<img>.jpg + vehicleid/train_test_split/train_list.txt + "
                 "a test list (test_list_13164.txt for VehicleID, test_list_800.txt for "
                 "SmallVehicleID, test_list_1600.txt for MediumVehicleID, test_list_2400.txt for "
                 "LargeVehicleID), "
                 "list lines '<img> <vid>'",
    "VeRiWild": "VERI-Wild/images/<vid>/<img>.jpg + VERI-Wild/train_test_split/{vehicle_info.txt "
                "('<vid>/<img>;<cam>;...' after a header line), train_list.txt, and a "
                "query/gallery pair: test_10000_query.txt + test_10000.txt for VeRiWild and "
                "LargeVeRiWild, test_3000_query.txt + test_3000.txt for SmallVeRiWild, "
                "test_5000_query.txt + test_5000.txt for MediumVeRiWild}, list lines '<vid>/<img>'",
}
for _size in ("Small", "Medium", "Large"):
    EXPECTED_LAYOUT[f"{_size}VehicleID"] = EXPECTED_LAYOUT["VehicleID"]
    EXPECTED_LAYOUT[f"{_size}VeRiWild"] = EXPECTED_LAYOUT["VeRiWild"]

# fn(cfg, dataset, items, split) -> items; split in {"train", "query", "gallery"}.
# Used to attach extra per-item fields (e.g. attribute labels for hashing).
ITEM_ANNOTATORS = []


def datasets_root():
    """$FASTREID_DATASETS (read now, not at import time), default ``./datasets``."""
    return os.getenv("FASTREID_DATASETS", "datasets")


class DatasetNotFoundError(MissingFileError):
    pass


def build_dataset(cfg, name, **kwargs):
    """Instantiate registered dataset ``name`` under the datasets root, with one clear
    error when its files are missing."""
    try:
        cls = DATASET_REGISTRY.get(name)
    except KeyError:
        known = ", ".join(sorted(DATASET_REGISTRY._obj_map))
        raise ConfigKeyError(f"unknown dataset '{name}' in DATASETS.NAMES/TESTS; "
                             f"registered: {known}") from None
    root = datasets_root()
    if hasattr(cls, "cfg_kwargs"):
        kwargs = {**cls.cfg_kwargs(cfg), **kwargs}
    try:
        return cls(root=root, **kwargs)
    except (RuntimeError, FileNotFoundError, AssertionError) as e:
        if isinstance(e, DatasetNotFoundError) or not ("not found" in str(e) or
                                                       "No such file" in str(e)):
            raise
        layout = EXPECTED_LAYOUT.get(name, "see the dataset's fastreid loader")
        raise DatasetNotFoundError(
            f"dataset '{name}' not found: {e}. Expected under {os.path.abspath(root)} "
            f"(set FASTREID_DATASETS to change it): {layout}") from None


def annotate(cfg, dataset, items, split):
    for fn in ITEM_ANNOTATORS:
        items = fn(cfg, dataset, items, split)
    return items
