"""Train and test loaders that work on CPU and GPU.

fastreid's ``DataLoaderX`` creates a CUDA stream in its constructor, so its loaders
fail on a machine without a GPU. We build the same datasets, samplers and transforms
(fastreid's own) and hand them to a plain ``torch.utils.data.DataLoader``.
"""
import logging

import torch
from fastreid.data import samplers
from fastreid.data.build import _train_loader_from_config
from fastreid.data.transforms import build_transforms
from fastreid.utils import comm

from ..utils.errors import ConfigValueError
from .common import ReidDataset, collate
from .datasets import annotate, build_dataset

logger = logging.getLogger(__name__)


def _loader(dataset, batch_sampler, num_workers, device):
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=batch_sampler, num_workers=num_workers, collate_fn=collate,
        pin_memory=str(device).startswith("cuda"), persistent_workers=num_workers > 0)


def build_train_set(cfg, **kwargs):
    items = []
    for name in cfg.DATASETS.NAMES:
        data = build_dataset(cfg, name, **kwargs)
        if comm.is_main_process():
            data.show_train()
        items.extend(annotate(cfg, data, data.train, "train"))
    return ReidDataset(items, build_transforms(cfg, is_train=True), relabel=True)


def build_train_loader(cfg, train_set=None, **kwargs):
    """Like ``fastreid.data.build_reid_train_loader(cfg)``; any device."""
    if cfg.SOLVER.IMS_PER_BATCH % comm.get_world_size():
        raise ConfigValueError(f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} (the global "
                               f"batch) is not divisible by the number of processes "
                               f"({comm.get_world_size()})")
    train_set = train_set or build_train_set(cfg, **kwargs)
    if len(train_set) < cfg.SOLVER.IMS_PER_BATCH:
        raise ConfigValueError(f"the training set has {len(train_set)} images, fewer than "
                         f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH}")
    sampler = _train_loader_from_config(cfg, train_set=train_set)["sampler"]
    mini_batch = cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
    batch_sampler = torch.utils.data.BatchSampler(sampler, mini_batch, drop_last=True)
    return _loader(train_set, batch_sampler, cfg.DATALOADER.NUM_WORKERS, cfg.MODEL.DEVICE)


def build_test_loader(cfg, dataset_name, **kwargs):
    """Like ``fastreid.data.build_reid_test_loader(cfg, name)`` -> (loader, num_query)."""
    data = build_dataset(cfg, dataset_name, **kwargs)
    if comm.is_main_process():
        data.show_test()
    items = annotate(cfg, data, data.query, "query") + annotate(cfg, data, data.gallery, "gallery")
    test_set = ReidDataset(items, build_transforms(cfg, is_train=False), relabel=False)
    mini_batch = max(1, cfg.TEST.IMS_PER_BATCH // comm.get_world_size())
    batch_sampler = torch.utils.data.BatchSampler(samplers.InferenceSampler(len(test_set)),
                                                  mini_batch, drop_last=False)
    workers = min(cfg.DATALOADER.NUM_WORKERS, 4)
    return _loader(test_set, batch_sampler, workers, cfg.MODEL.DEVICE), len(data.query)
