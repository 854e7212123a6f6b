"""Train or evaluate a fastreid model with reid_ext's components, on CPU or GPU.

    reid-train --config-file configs/quickstart.yml [--resume] [--eval-only]
               [--num-gpus N --num-machines M --machine-rank R --dist-url URL] [KEY VALUE ...]

(also ``python -m reid_ext.train_net``). Same flags as fastreid's ``tools/train_net.py``;
multi-GPU goes through fastreid's ``launch`` (torch.distributed, NCCL).
"""
import json
import logging
import os
import sys

import reid_ext  # noqa: F401  (shims + registrations)
from fastreid.engine import default_argument_parser, default_setup, launch
from fastreid.utils import comm
from fastreid.utils.checkpoint import Checkpointer
from fastreid.utils.logger import setup_logger

from reid_ext.config import get_cfg, merge_from_file
from reid_ext.engine import format_results, get_trainer_class
from reid_ext.engine.trainer import resolve_device, seed_from_cfg


def setup(args):
    cfg = get_cfg()
    if args.config_file:
        merge_from_file(cfg, args.config_file)
    try:
        cfg.merge_from_list(args.opts)
    except (KeyError, AssertionError, ValueError) as e:
        raise type(e)(f"in the command-line overrides {args.opts}: {e}") from None
    cfg = resolve_device(cfg)
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
        trainer_cls = get_trainer_class(cfg)
        model = trainer_cls.build_model(cfg)
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
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
    args = default_argument_parser().parse_args(argv)
    if not args.config_file:
        sys.exit("reid-train: --config-file is required (e.g. configs/quickstart.yml)")
    flags = [o for o in args.opts if o.startswith("--")]
    if flags:  # argparse puts everything after the first KEY into the overrides
        sys.exit(f"reid-train: {' '.join(flags)} must come before the KEY VALUE overrides")
    launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
           dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    cli()
