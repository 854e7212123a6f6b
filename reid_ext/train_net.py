"""Train or evaluate a fastreid model with reid_ext's components, on CPU or GPU.

    reid-train --config-file configs/quickstart.yml [--resume] [--eval-only]
               [--num-gpus N --num-machines M --machine-rank R --dist-url URL]
               [--dist-timeout S] [--debug] [KEY VALUE ...]

(also ``python -m reid_ext.train_net``). Same flags as fastreid's ``tools/train_net.py``.
Several processes go through torch.distributed (:mod:`reid_ext.engine.launch`): NCCL on
CUDA, gloo on CPU; ``torchrun --nproc_per_node N -m reid_ext.train_net ...`` works too.
The config is read (and checked) before any process starts; an error the user can fix is
printed once, as one message (``--debug`` or ``REID_EXT_DEBUG=1``: with the traceback).
"""
import json
import logging
import os
import sys

import reid_ext  # noqa: F401  (shims + registrations)
from fastreid.engine import default_argument_parser, default_setup
from fastreid.utils import comm
from fastreid.utils.logger import setup_logger

from reid_ext.config import get_cfg, merge_from_file
from reid_ext.engine import format_results, get_trainer_class
from reid_ext.engine.checkpoint import ReidCheckpointer
from reid_ext.engine.launch import DEFAULT_TIMEOUT_S, LaunchFailure, env_rank, launch
from reid_ext.engine.trainer import resolve_device, seed_from_cfg
from reid_ext.utils.errors import (DEBUG_ENV, ConfigKeyError, ConfigValueError, UserError,
                                   WeightsError, debug_enabled, describe)


def argument_parser():
    """fastreid's ``default_argument_parser`` plus ``--debug`` and ``--dist-timeout``."""
    parser = default_argument_parser()
    parser.add_argument("--debug", action="store_true",
                        help="print the Python traceback of every error (also REID_EXT_DEBUG=1)")
    parser.add_argument("--dist-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help="seconds a process waits for the others (rendezvous, collectives) "
                             "before it stops with an error (default %(default)s)")
    return parser


def load_config(args, warn=True):
    """The config of ``args`` (file + KEY VALUE overrides, device resolved); errors name
    the file or the override at fault. ``warn``: log the device warnings (AMP off)."""
    cfg = get_cfg()
    if args.config_file:
        merge_from_file(cfg, args.config_file)
    try:
        cfg.merge_from_list(args.opts)
    except (KeyError, AssertionError, ValueError) as e:
        msg = str(e.args[0]) if e.args else str(e)
        if "Non-existent" in msg:  # yacs: "Non-existent key: X" (an AssertionError)
            raise ConfigKeyError(f"unknown config key '{msg.split(':', 1)[1].strip()}' in the "
                                 f"command-line overrides; check the spelling") from None
        raise ConfigValueError(f"in the command-line overrides {args.opts}: {msg}") from None
    return resolve_device(cfg, warn=warn)


def setup(args):
    cfg = load_config(args, warn=False)  # cli() has read it and warned once
    default_setup(cfg, args)
    # fastreid's default_setup configures only the "fastreid" logger
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="reid_ext",
                 abbrev_name="reid_ext")
    seed_from_cfg(cfg)
    return cfg


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    return float(x) if hasattr(x, "__float__") else x


def write_results(cfg, results):
    """Final results as ``{test set: {metric: value, variant: {...}}}`` in
    ``OUTPUT_DIR/results.json`` (read by ``reid-reproduce``); returns that dict."""
    if "Rank-1" in results:  # a single test set
        results = {cfg.DATASETS.TESTS[0]: results}
    results = _jsonable(results)
    if cfg.OUTPUT_DIR:
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        with open(os.path.join(cfg.OUTPUT_DIR, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    return results


def _report(cfg, results):
    out = os.path.abspath(cfg.OUTPUT_DIR)
    log = logging.getLogger("reid_ext")
    if results:
        log.info("Final results:\n%s", format_results(write_results(cfg, results)))
    log.info(
        "Outputs in %s: checkpoints model_*.pth (last one named in last_checkpoint), "
        "results.json, log.txt, metrics.json, tensorboard events.out.tfevents.* "
        "(view: tensorboard --logdir %s)", out, out)


def main(args):
    cfg = setup(args)
    if args.eval_only:
        cfg.defrost()
        cfg.MODEL.BACKBONE.PRETRAIN = False
        cfg.freeze()
        if not cfg.MODEL.WEIGHTS:
            raise WeightsError("--eval-only needs MODEL.WEIGHTS: the checkpoint to evaluate")
        trainer_cls = get_trainer_class(cfg)
        model = trainer_cls.build_model(cfg)
        ReidCheckpointer(model, strict=True).load(cfg.MODEL.WEIGHTS)
        res = trainer_cls.test(cfg, model)  # logs the results table
        if comm.is_main_process():
            if res:
                write_results(cfg, res)
            _report(cfg, None)
        return res
    trainer = get_trainer_class(cfg)(cfg)
    trainer.resume_or_load(resume=args.resume)
    res = trainer.train()
    if comm.is_main_process():
        _report(cfg, res)
    return res


def cli(argv=None):
    args = argument_parser().parse_args(argv)
    debug = debug_enabled(args.debug)
    if debug:  # every process and logger of this run sees it
        os.environ[DEBUG_ENV] = "1"
    if not args.config_file:
        sys.exit("reid-train: --config-file is required (e.g. configs/quickstart.yml)")
    flags = [o for o in args.opts if o.startswith("--")]
    if flags:  # argparse puts everything after the first KEY into the overrides
        sys.exit(f"reid-train: {' '.join(flags)} must come before the KEY VALUE overrides")
    try:
        # read once here, before any process starts: a config error is reported once
        cfg = load_config(args, warn=env_rank(args.dist_url) == 0)
        launch(main, args.num_gpus, num_machines=args.num_machines,
               machine_rank=args.machine_rank, dist_url=args.dist_url, args=(args,),
               device=cfg.MODEL.DEVICE, timeout=args.dist_timeout, debug=debug,
               log_dir=cfg.OUTPUT_DIR or ".")
    except LaunchFailure as e:  # a process of several failed: its report, printed here
        print(e.text, file=sys.stderr, flush=True)
        sys.exit(1)
    except UserError as e:
        if env_rank(args.dist_url) == 0:  # under torchrun every rank reads the same config
            print(describe(e, debug), file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    cli()
