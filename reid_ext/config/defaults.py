"""reid_ext's config keys: the foundation's own, then one add-function per method."""
import os

import yaml
from fastreid.config import get_cfg as _fastreid_get_cfg

from ..utils.errors import ConfigKeyError, ConfigValueError, MissingFileError
from .keys import add_key
from .adasp import add_adasp_config
from .c2f import add_c2f_config
from .hashing import add_hashing_config
from .nformer import add_nformer_config
from .sft import add_sft_config


def add_base_config(cfg):
    """Keys of the foundation (trainer, logging, synthetic data)."""
    add_key(cfg, "SEED", -1)  # global RNG seed; negative = not seeded
    add_key(cfg, "ENGINE.TRAINER", "Trainer")  # trainer class from reid_ext.engine.TRAINER_REGISTRY
    add_key(cfg, "MODEL.CHANNELS_LAST", True)  # backbone weights in NHWC layout (faster convolutions; same values)
    add_key(cfg, "TEST.CMC_RANKS", [1, 5, 10])  # CMC ranks reported (Rank-k columns)
    add_key(cfg, "SOLVER.LOG_PERIOD", 20)  # iterations between console/metrics.json/tensorboard writes
    # Synthetic datasets (SynthPerson, SynthVehicle). 0 / [] = the dataset's own default.
    add_key(cfg, "DATASETS.SYNTH.NUM_TRAIN_IDS", 0)  # identities in the training split
    add_key(cfg, "DATASETS.SYNTH.NUM_TEST_IDS", 0)  # identities in query/gallery
    add_key(cfg, "DATASETS.SYNTH.IMGS_PER_ID", 0)  # images rendered per identity
    add_key(cfg, "DATASETS.SYNTH.NUM_CAMS", 0)  # number of cameras
    add_key(cfg, "DATASETS.SYNTH.SIZE", [])  # rendered image size [H, W]
    add_key(cfg, "DATASETS.SYNTH.SEED", 0)  # generator seed (part of the cache folder name)
    # VIPeRSplit: the standard 10-split single-shot protocol of VIPeR
    add_key(cfg, "DATASETS.VIPER.SPLIT", 0)  # which split (0-9) of the splits file
    add_key(cfg, "DATASETS.VIPER.SPLITS_FILE", "")  # "" = reid_ext/data/splits/viper.json (shipped)
    add_key(cfg, "DATASETS.VIPER.VALIDATION", False)  # True: train/evaluate on halves of the split's training ids (test ids unused)
    return cfg


def add_reid_ext_config(cfg):
    """Add every reid_ext key (with its default) to ``cfg`` in place; returns ``cfg``."""
    frozen = cfg.is_frozen()
    cfg.defrost()
    for add in (add_base_config, add_adasp_config, add_sft_config, add_c2f_config,
                add_nformer_config, add_hashing_config):
        add(cfg)
    if frozen:
        cfg.freeze()
    return cfg


def get_cfg():
    """fastreid's default config with every reid_ext key added."""
    return add_reid_ext_config(_fastreid_get_cfg())


def _base_chain(path):
    """The yml files a config reads, the file itself first, then its _BASE_s."""
    chain, todo = [], [path]
    while todo:
        p = todo.pop(0)
        chain.append(p)
        try:
            with open(p) as f:
                base = (yaml.safe_load(f) or {}).get("_BASE_")
        except (OSError, yaml.YAMLError):
            continue
        if base:
            if not base.startswith(("/", "http://", "https://", "~")):
                base = os.path.join(os.path.dirname(p), base)
            todo.append(os.path.expanduser(base))
    return chain


def _files_defining(key, files):
    hits = []
    for p in files:
        try:
            with open(p) as f:
                node = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError):
            continue
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            hits.append(p)
    return hits


def merge_from_file(cfg, path):
    """``cfg.merge_from_file(path)`` with errors that name the file and the key."""
    if not os.path.isfile(path):
        raise MissingFileError(f"config file not found: {path}")
    try:
        cfg.merge_from_file(path)
    except (ValueError, AssertionError) as e:  # yacs: type mismatch, bad literal
        raise ConfigValueError(f"in {path}: {e}") from None
    except KeyError as e:
        msg = str(e.args[0]) if e.args else str(e)
        if "Non-existent config key" not in msg:
            raise
        key = msg.split(":", 1)[1].strip()
        files = _files_defining(key, _base_chain(path)) or [path]
        raise ConfigKeyError(
            f"unknown config key '{key}' in {', '.join(files)} "
            f"(merging {path}); check the spelling, or call "
            f"reid_ext.config.add_reid_ext_config(cfg) before merging") from None
    return cfg
