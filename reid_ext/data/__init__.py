"""Data: CPU/GPU loaders, dataset construction with clear errors, synthetic datasets."""
from . import attributes, synthetic, viper  # noqa: F401  (attribute annotator; SynthPerson, SynthVehicle; VIPeRSplit)
from .build import build_test_loader, build_train_loader, build_train_set  # noqa: F401
from .common import ImageReadError, ReidDataset, read_image  # noqa: F401
from .datasets import (ITEM_ANNOTATORS, DatasetNotFoundError, build_dataset,  # noqa: F401
                       datasets_root)
