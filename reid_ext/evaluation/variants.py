"""Extra evaluation variants reported beside the plain result (LBR, NFormer, hashing...).

A variant is registered with ``@EVAL_VARIANTS.register()`` and called by
:class:`reid_ext.evaluation.ReidExtEvaluator` as::

    fn(cfg, query: FeatureSet, gallery: FeatureSet, model) -> {name: VariantOutput}

returning ``{}`` when its config switch is off. ``model`` is the evaluated model
(or None). Each output carries either a (Q, G) distance matrix or a (Q, G) ranking,
plus extra metrics (e.g. time per query) that are reported as they are.

A variant may carry ``fn.check_cfg(cfg)``, raising on a combination of keys it cannot
honour; :func:`check_variant_configs` runs them all when the trainer builds the model,
before any training or feature extraction.
"""
import itertools
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from fastreid.utils.registry import Registry

EVAL_VARIANTS = Registry("REID_EXT_EVAL_VARIANTS")


@dataclass
class FeatureSet:
    feats: torch.Tensor  # (N, D) float32, CPU
    pids: np.ndarray  # (N,)
    camids: np.ndarray  # (N,)
    extras: Dict[str, torch.Tensor] = field(default_factory=dict)  # other model outputs, (N, ...)
    paths: List[str] = field(default_factory=list)


@dataclass
class VariantOutput:
    dist: Optional[object] = None  # (Q, G) distances, smaller = closer
    ranking: Optional[object] = None  # (Q, G) gallery indices, best first
    metrics: Dict[str, float] = field(default_factory=dict)


def timed(fn, *args):
    """(fn(*args), seconds): variants report the time of their own ranking."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def grid(*values):
    """Every combination of the value lists of a variant's GRID_* keys (none if one is empty)."""
    return list(itertools.product(*values)) if all(len(v) for v in values) else []


def registered_variants():
    return [EVAL_VARIANTS.get(name) for name in sorted(EVAL_VARIANTS._obj_map)]


def check_variant_configs(cfg):
    """Call the ``check_cfg(cfg)`` of every registered variant that has one, so that a
    combination of keys a variant refuses stops before any training or feature extraction."""
    for variant in registered_variants():
        check = getattr(variant, "check_cfg", None)
        if check is not None:
            check(cfg)
