"""``Trainer``: fastreid's DefaultTrainer adapted to run on CPU and GPU.

What changes with respect to ``fastreid.engine.DefaultTrainer``:
- CPU/GPU data loaders (:mod:`reid_ext.data.build`) and datasets with clear errors;
- the :class:`~reid_ext.evaluation.ReidExtEvaluator` (no run-time Cython build, CPU
  re-ranking, extra variants reported beside the plain result);
- :class:`~reid_ext.engine.step.StepTrainer` (NaN/inf names the loss term; AMP on CUDA
  through ``torch.amp``, turned off with a warning where unsupported);
- loss names are checked against the meta-architecture (fastreid drops unknown ones),
  and evaluation keys against the variants (``check_cfg``) when the model is built;
- several processes (:mod:`reid_ext.engine.launch`): DistributedDataParallel with
  ``device_ids`` on CUDA and without on CPU (gloo); ``--resume`` checks that every
  process continues from the same epoch; a weights file that does not fit is an error
  (:class:`~reid_ext.engine.checkpoint.ReidCheckpointer`);
- logs every ``SOLVER.LOG_PERIOD`` iterations; optional ``SEED`` (+ rank).
All fastreid hooks, the checkpointer, schedulers and ``--resume`` are fastreid's own.
"""
import inspect
import json
import logging
import os
from collections import OrderedDict

import torch
from fastreid.engine import DefaultTrainer, hooks
from fastreid.engine.train_loop import TrainerBase
from fastreid.evaluation.testing import flatten_results_dict
from fastreid.modeling import build_model
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng
from fastreid.utils.events import (CommonMetricPrinter, JSONWriter, TensorboardXWriter,
                                   get_event_storage)
from tabulate import tabulate
from termcolor import colored
from torch.nn.parallel import DistributedDataParallel

from ..data import build_dataset, build_test_loader, build_train_loader
from ..evaluation import ReidExtEvaluator, check_variant_configs
from ..modeling.meta_arch import check_loss_names
from ..utils.errors import (ConfigValueError, DeviceUnavailableError, debug_enabled,
                            is_user_error)
from .checkpoint import ReidCheckpointer
from .inference import inference_on_dataset
from .step import StepTrainer

logger = logging.getLogger(__name__)


def resolve_device(cfg, warn=True):
    """Return a copy of cfg with MODEL.DEVICE usable here ("auto" = cuda if available,
    else cpu) and AMP off where unsupported (with a warning unless ``warn`` is False)."""
    cfg = cfg.clone()
    cfg.defrost()
    if cfg.MODEL.DEVICE == "auto":
        cfg.MODEL.DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"MODEL.DEVICE is '{cfg.MODEL.DEVICE}' but CUDA is not "
                                     f"available here; add 'MODEL.DEVICE cpu' to the command "
                                     f"line")
    if cfg.SOLVER.AMP.ENABLED and not cfg.MODEL.DEVICE.startswith("cuda"):
        if warn:
            logger.warning("SOLVER.AMP.ENABLED is True but MODEL.DEVICE is '%s': mixed "
                           "precision is only used on CUDA, training in float32",
                           cfg.MODEL.DEVICE)
        cfg.SOLVER.AMP.ENABLED = False
    cfg.freeze()
    return cfg


def seed_from_cfg(cfg):
    """Seed python/numpy/torch with ``SEED`` (+ rank) when it is >= 0 (fastreid's
    default_setup seeds randomly)."""
    if cfg.SEED >= 0:
        seed_all_rng(cfg.SEED + comm.get_rank())
        logger.info("Random number generators seeded with SEED=%d (+ rank)", cfg.SEED)


def check_test_sets(cfg):
    """Fail at the start, not after training, when a set of DATASETS.TESTS is missing."""
    for name in cfg.DATASETS.TESTS:
        build_dataset(cfg, name)


class _QuietUserErrors(logging.Filter):
    """fastreid's training loop logs every exception with its traceback before re-raising
    it; an error the user can fix is printed once, without one, by reid-train."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not is_user_error(exc) or debug_enabled()


logging.getLogger("fastreid.engine.train_loop").addFilter(_QuietUserErrors())


class ProgressPrinter(CommonMetricPrinter):
    """fastreid's console printer (losses, lr, ETA), written at most once per iteration:
    the per-epoch write after a per-iteration one would divide by zero in its ETA."""

    _last_iter = None

    def write(self):
        it = get_event_storage().iter
        if it != self._last_iter:
            self._last_iter = it
            super().write()


def _channels_last_input(module, inputs):
    return tuple(x.contiguous(memory_format=torch.channels_last)
                 if isinstance(x, torch.Tensor) and x.dim() == 4 else x for x in inputs)


def _contiguous_output(module, inputs, output):
    return output.contiguous() if isinstance(output, torch.Tensor) else output


def channels_last_backbone(model):
    """Feed ``model.backbone`` channels-last (NHWC) images (``MODEL.CHANNELS_LAST``): its
    convolutions then run in NHWC, about 20% faster for MobileNetV2 on CPU (oneDNN) and
    the layout tensor cores prefer on GPU. The weights keep their layout (fastreid's
    ContiguousParams needs contiguous parameters); the backbone's output is made
    contiguous again, so heads and attention code see the usual NCHW strides. Same
    values up to float rounding. Returns ``model``."""
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, torch.nn.Module):
        backbone.register_forward_pre_hook(_channels_last_input)
        backbone.register_forward_hook(_contiguous_output)
    return model


class Trainer(DefaultTrainer):
    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("fastreid").isEnabledFor(logging.INFO):
            from fastreid.utils.logger import setup_logger
            setup_logger()
        cfg = resolve_device(cfg)
        seed_from_cfg(cfg)
        if comm.is_main_process() and cfg.OUTPUT_DIR:
            os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        data_loader = self.build_train_loader(cfg)
        check_test_sets(cfg)
        cfg = self.auto_scale_hyperparams(cfg, data_loader.dataset.num_classes)
        model = self.build_model(cfg)
        optimizer, param_wrapper = self.build_optimizer(cfg, model)
        if comm.get_world_size() > 1:
            model = wrap_ddp(model)
        amp_device = "cuda" if cfg.SOLVER.AMP.ENABLED else None
        self._trainer = StepTrainer(model, data_loader, optimizer, param_wrapper, amp_device)

        self.iters_per_epoch = len(data_loader.dataset) // cfg.SOLVER.IMS_PER_BATCH
        self.scheduler = self.build_lr_scheduler(cfg, optimizer, self.iters_per_epoch)
        self.checkpointer = ReidCheckpointer(model, cfg.OUTPUT_DIR,
                                             save_to_disk=comm.is_main_process(),
                                             optimizer=optimizer, **self.scheduler)
        if self._trainer.grad_scaler is not None:
            self.checkpointer.add_checkpointable("grad_scaler", self._trainer.grad_scaler)
        self.start_epoch = 0
        self.max_epoch = cfg.SOLVER.MAX_EPOCH
        self.max_iter = self.max_epoch * self.iters_per_epoch
        self.warmup_iters = cfg.SOLVER.WARMUP_ITERS
        self.delay_epochs = cfg.SOLVER.DELAY_EPOCHS
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def resume_or_load(self, resume=True):
        super().resume_or_load(resume=resume)
        check_same_start(self.start_epoch, self.cfg.OUTPUT_DIR)

    def train(self):
        """fastreid's training loop; resumed from the final checkpoint (a run stopped
        after training, before or during its evaluation), it only evaluates: fastreid's
        loop would then fail in its EvalHook (``self.epoch`` is never set)."""
        if self.start_epoch >= self.max_epoch:
            logger.info("Resumed at the end of training (epoch %d of %d): evaluating only",
                        self.start_epoch, self.max_epoch)
            self._last_eval_results = self.test(self.cfg, self._trainer.model)
            return self._last_eval_results if comm.is_main_process() else None
        return super().train()

    def build_hooks(self):
        self._writers_deferred = True  # fastreid's writer hook is replaced below: no files
        try:
            ret = super().build_hooks()
        finally:
            self._writers_deferred = False
        period = self.cfg.SOLVER.LOG_PERIOD
        for i, h in enumerate(ret):
            if isinstance(h, hooks.PeriodicWriter):
                ret[i] = hooks.PeriodicWriter(self.build_writers(), period)
        return self.write_eval_results(ret)

    def build_writers(self):
        if getattr(self, "_writers_deferred", False):
            return []
        self._metric_writers = [JSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json")),
                                TensorboardXWriter(self.cfg.OUTPUT_DIR)]
        return [ProgressPrinter(self.max_iter)] + self._metric_writers

    def write_eval_results(self, hook_list):
        """Make each EvalHook also write its results to metrics.json and tensorboard.

        fastreid stores them at the iteration its writers have just written, and the
        writers skip written iterations, so evaluation results never reached either file."""
        for h in hook_list:
            if isinstance(h, hooks.EvalHook):
                h._func = self._writing(h._func)
        return hook_list

    def _writing(self, func):
        def evaluate_and_write():
            results = func()
            if results and comm.is_main_process():
                flat = {k: float(v) for k, v in flatten_results_dict(results).items()}
                it = self.storage.iter
                for w in getattr(self, "_metric_writers", []):
                    if isinstance(w, JSONWriter):
                        w._file_handle.write(json.dumps({**flat, "iteration": it},
                                                        sort_keys=True) + "\n")
                        w._file_handle.flush()
                    elif isinstance(w, TensorboardXWriter):
                        for k, v in flat.items():
                            w._writer.add_scalar(k, v, it)
                        w._writer.flush()
            return results
        return evaluate_and_write

    @classmethod
    def build_model(cls, cfg):
        cfg = resolve_device(cfg)
        check_loss_names(cfg)
        check_variant_configs(cfg)  # e.g. TEST.HASH with TEST.AQE: refused before any work
        model = build_model(cfg)
        if cfg.MODEL.get("CHANNELS_LAST", False):
            channels_last_backbone(model)
        logger.info("Model: %s with %.2f M parameters", type(model).__name__,
                    sum(p.numel() for p in model.parameters()) / 1e6)
        return model

    @classmethod
    def build_train_loader(cls, cfg):
        logger.info("Prepare training set")
        return build_train_loader(cfg, combineall=cfg.DATASETS.COMBINEALL)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_dir=None, model=None):
        data_loader, num_query = cls.build_test_loader(cfg, dataset_name)
        return data_loader, ReidExtEvaluator(cfg, num_query, output_dir, model=model)

    @classmethod
    def test(cls, cfg, model):
        """Evaluate on every DATASETS.TESTS entry; returns fastreid's result dict
        (plain metrics at the top, each variant as a nested dict)."""
        results = OrderedDict()
        for name in cfg.DATASETS.TESTS:
            logger.info("Prepare testing set %s", name)
            try:
                loader, evaluator = cls.build_evaluator(cfg, name, model=unwrap_ddp(model))
            except NotImplementedError:
                logger.warning("No evaluator for %s", name)
                results[name] = {}
                continue
            results[name] = inference_on_dataset(model, loader, evaluator, cfg.TEST.FLIP.ENABLED)
        if comm.is_main_process():
            logger.info("Evaluation results:\n" + colored(format_results(results), "cyan"))
        return list(results.values())[0] if len(results) == 1 else results


def wrap_ddp(model, **kwargs):
    """DistributedDataParallel over this process's device: ``device_ids`` on CUDA (one GPU
    per process), none on CPU (gloo). As fastreid: buffers (BN statistics) are not
    synchronised at each forward (they are once, from rank 0, when wrapping).

    ``static_graph``: the parameters a training step uses are the same at every step, but
    some models hold parameters a stage does not use (CombinedReID's NFormer in stage 1);
    DDP then reduces the others without the per-step graph search of
    ``find_unused_parameters``."""
    device = next(model.parameters()).device
    ids = None
    if device.type == "cuda":
        ids = [device.index if device.index is not None else torch.cuda.current_device()]
    kwargs.setdefault("static_graph", True)
    if "forward_sync_buffers" in _DDP_ARGS:  # torch >= 2.14 deprecates broadcast_buffers
        kwargs.setdefault("forward_sync_buffers", False)
    else:
        kwargs.setdefault("broadcast_buffers", False)
    return DistributedDataParallel(model, device_ids=ids, **kwargs)


_DDP_ARGS = inspect.signature(DistributedDataParallel.__init__).parameters


def check_same_start(start_epoch, output_dir):
    """After ``--resume``: every process must continue from the same epoch (they read
    OUTPUT_DIR/last_checkpoint each on its own; without a shared file system they differ)."""
    if comm.get_world_size() == 1:
        return
    epochs = comm.all_gather(int(start_epoch))
    if len(set(epochs)) > 1:
        per_rank = ", ".join(f"rank {r}: epoch {e}" for r, e in enumerate(epochs))
        raise ConfigValueError(
            f"the processes would resume from different epochs ({per_rank}): every machine "
            f"must see the same OUTPUT_DIR ({output_dir}) with its last_checkpoint, e.g. on a "
            f"shared file system")


def unwrap_ddp(model):
    return model.module if isinstance(model, DistributedDataParallel) else model


def format_results(results):
    """A Markdown table: one row per dataset and variant, fastreid's metric columns."""
    cols = ["Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"]
    rows, extra_cols = [], []
    for dataset, res in results.items():
        variants = [("", res)] + [(k, v) for k, v in res.items() if isinstance(v, dict)]
        for vname, vres in variants:
            row = {"Dataset": dataset + (f" + {vname}" if vname else "")}
            for k, v in vres.items():
                if isinstance(v, dict) or k == "metric":
                    continue
                row[k] = v
                if k not in cols and k not in extra_cols:
                    extra_cols.append(k)
            rows.append(row)
    headers = ["Dataset"] + cols + extra_cols
    table = [[r.get(h, "") for h in headers] for r in rows]
    return tabulate(table, headers=headers, tablefmt="pipe", floatfmt=".2f", numalign="left")
