"""Stage 2 of NFormer: train the NFormer on sequences of frozen-encoder features.

Select with ``ENGINE.TRAINER NFormerTrainer`` and ``MODEL.META_ARCHITECTURE NFormerBaseline``
(see projects/NFormer/configs/). Official recipe (haochenheheda/NFormer, ``tools/train.py``):
after the encoder has been trained (stage 1), every NFormer epoch

1. re-extracts the features of the training loader (train-time augmentation, encoder in eval
   mode, no gradient) -> the post-BN encoder features with their labels;
2. draws ``N_feat // SOLVER.NFORMER.SEQ_DIVISOR`` sequences: a random anchor, its
   ``floor(L * (1 + u))`` nearest features (u ~ U[0, 1), L = SOLVER.NFORMER.SEQ_LEN capped at
   N_feat), L of them sampled without replacement in random order;
3. trains the NFormer on ``SOLVER.NFORMER.SEQS_PER_BATCH`` sequences per iteration with
   label-smoothed CE + batch-hard triplet, Adam (SOLVER.NFORMER.BASE_LR), encoder frozen.

Differences from the official code: the anchor neighbourhood uses cosine similarity (the
official one a raw dot product), sequence sampling uses a generator seeded by SEED and the
epoch (so ``--resume`` replays the same sequences), and the stage-1 checkpoint is read from
MODEL.NFORMER.STAGE1_WEIGHTS (else MODEL.WEIGHTS). Checkpoints hold encoder + NFormer +
optimizer and the epoch, so ``--resume`` continues from the last one.

Several processes (``--num-gpus``, torchrun): each extracts the features of its share of the
training loader and the shares are gathered, so every process holds the same bank (in rank
order, ``N_feat`` features as in one process); ``SOLVER.NFORMER.SEQS_PER_BATCH`` is the
global number of sequences per iteration, split across the processes, each drawing its
own sequences (generator seeded by SEED, the epoch and the rank) from the whole bank; the
NFormer's gradients are averaged by DistributedDataParallel.
"""
import logging
import math
import os
import time

import torch
from fastreid.engine import hooks
from fastreid.engine.train_loop import TrainerBase
from fastreid.evaluation.evaluator import inference_context
from fastreid.utils import comm

from ..utils.errors import ConfigValueError
from ..utils.neighbors import topk_similarity
from . import TRAINER_REGISTRY
from .checkpoint import ReidCheckpointer
from .step import StepTrainer
from .trainer import (Trainer, check_same_start, check_test_sets, resolve_device, unwrap_ddp,
                      wrap_ddp)

logger = logging.getLogger(__name__)


def sample_neighbourhood_sequence(feats, seq_len, generator=None):
    """One official training sequence: indices (L,) int64 into ``feats`` (N, d).

    A random anchor, its ``m = min(N, floor(L * (1 + u)))`` nearest items by cosine
    similarity (u ~ U[0, 1)), then L of those m drawn without replacement, shuffled.
    ``generator``: a CPU torch.Generator (None = global RNG).
    """
    n = feats.size(0)
    seq_len = min(seq_len, n)
    anchor = int(torch.randint(n, (1,), generator=generator))
    u = float(torch.rand((), generator=generator))
    m = min(n, int(math.floor(seq_len * (1 + u))))
    near = topk_similarity(feats[anchor:anchor + 1], feats, m)[1][0]
    pick = torch.randperm(m, generator=generator)[:seq_len].to(near.device)
    return near[pick]


class _SequenceStream:
    """Endless iterator of {"nformer_feats": (B, L, d), "nformer_targets": (B, L)} drawn
    from the trainer's current feature bank."""

    def __init__(self, trainer):
        self.trainer = trainer

    def __iter__(self):
        return self

    def __next__(self):
        t = self.trainer
        idx = torch.stack([sample_neighbourhood_sequence(t.bank_feats, t.seq_len, t.seq_gen)
                           for _ in range(t.seqs_per_batch)])
        return {"nformer_feats": t.bank_feats[idx], "nformer_targets": t.bank_targets[idx]}


class _ReextractFeatures(hooks.HookBase):
    def before_epoch(self):
        self.trainer.extract_features()


@TRAINER_REGISTRY.register()
class NFormerTrainer(Trainer):
    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("fastreid").isEnabledFor(logging.INFO):
            from fastreid.utils.logger import setup_logger
            setup_logger()
        cfg = resolve_device(cfg)
        if cfg.SEED >= 0:
            from fastreid.utils.env import seed_all_rng
            seed_all_rng(cfg.SEED + comm.get_rank())
        s = cfg.SOLVER.NFORMER
        world = comm.get_world_size()
        if s.SEQS_PER_BATCH % world:
            raise ConfigValueError(f"SOLVER.NFORMER.SEQS_PER_BATCH={s.SEQS_PER_BATCH} is not "
                                   f"divisible by the number of processes ({world})")
        if comm.is_main_process() and cfg.OUTPUT_DIR:
            os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        self.image_loader = self.build_train_loader(cfg)
        check_test_sets(cfg)
        cfg = self.auto_scale_hyperparams(cfg, self.image_loader.dataset.num_classes)
        model = self.build_model(cfg)
        if not hasattr(model, "nformer"):
            raise ConfigValueError(f"ENGINE.TRAINER NFormerTrainer needs a model with an "
                                   f".nformer submodule: set MODEL.META_ARCHITECTURE "
                                   f"NFormerBaseline (got '{cfg.MODEL.META_ARCHITECTURE}')")
        for name, p in model.named_parameters():
            if not name.startswith("nformer."):
                p.requires_grad_(False)
        params = [p for p in model.nformer.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=s.BASE_LR, betas=(0.9, 0.999), eps=1e-8,
                                     weight_decay=s.WEIGHT_DECAY)
        if world > 1:
            model = wrap_ddp(model)  # only the NFormer requires gradients
        self._trainer = StepTrainer(model, _SequenceStream(self), optimizer, None, None)
        self.checkpointer = ReidCheckpointer(model, cfg.OUTPUT_DIR,
                                             save_to_disk=comm.is_main_process(),
                                             optimizer=optimizer)
        self.scheduler = {}
        self.extract_batches = max(1, len(self.image_loader.dataset) // cfg.SOLVER.IMS_PER_BATCH)
        n_feat = self.extract_batches * cfg.SOLVER.IMS_PER_BATCH
        self.seq_len = min(s.SEQ_LEN, n_feat)
        self.seqs_per_batch = s.SEQS_PER_BATCH // world  # per process
        self.iters_per_epoch = max(1, n_feat // s.SEQ_DIVISOR // s.SEQS_PER_BATCH)
        self.start_epoch = 0
        self.max_epoch = s.MAX_EPOCH
        self.max_iter = self.max_epoch * self.iters_per_epoch
        self.bank_feats = self.bank_targets = None
        self.seq_gen = torch.Generator()
        self._image_iter = None
        self.cfg = cfg
        logger.info("NFormer stage 2: %d features per epoch, sequences of %d, %d per batch, "
                    "%d iterations per epoch, %d epochs", n_feat, self.seq_len,
                    self.seqs_per_batch, self.iters_per_epoch, self.max_epoch)
        self.register_hooks(self.build_hooks())

    def build_hooks(self):
        cfg, s = self.cfg, self.cfg.SOLVER.NFORMER

        def test_and_save_results():
            self._last_eval_results = self.test(self.cfg, self.model)
            return self._last_eval_results

        ret = [hooks.IterationTimer(), _ReextractFeatures(),
               hooks.EvalHook(s.EVAL_PERIOD, test_and_save_results)]
        if comm.is_main_process():
            ret.append(hooks.PeriodicCheckpointer(self.checkpointer, s.CHECKPOINT_PERIOD))
            ret.append(hooks.PeriodicWriter(self.build_writers(), cfg.SOLVER.LOG_PERIOD))
        return self.write_eval_results(ret)

    def resume_or_load(self, resume=True):
        if resume and self.checkpointer.has_checkpoint():
            ckpt = self.checkpointer.resume_or_load("", resume=True)
            self.start_epoch = ckpt.get("epoch", -1) + 1
            check_same_start(self.start_epoch, self.cfg.OUTPUT_DIR)
            return
        check_same_start(0, self.cfg.OUTPUT_DIR)
        path = self.cfg.MODEL.NFORMER.STAGE1_WEIGHTS or self.cfg.MODEL.WEIGHTS
        if not path:
            raise ConfigValueError("NFormer stage 2 needs the stage-1 encoder: set "
                                   "MODEL.NFORMER.STAGE1_WEIGHTS (or MODEL.WEIGHTS) to its checkpoint")
        logger.info("Loading the stage-1 encoder from %s (the NFormer starts fresh)", path)
        self.checkpointer.load(path, checkpointables=[])

    @torch.no_grad()
    def extract_features(self):
        """Re-extract the training features with the frozen encoder (eval mode) into the bank
        (gathered from every process) and reseed the sequence generator for this epoch."""
        t0 = time.perf_counter()
        if self._image_iter is None:
            self._image_iter = iter(self.image_loader)
        model = unwrap_ddp(self.model)
        feats, targets = [], []
        with inference_context(model):
            for _ in range(self.extract_batches):
                batch = next(self._image_iter)
                out = model(batch)
                feats.append(out["features"] if isinstance(out, dict) else out)
                targets.append(batch["targets"].to(feats[-1].device))
        feats, targets = torch.cat(feats).float(), torch.cat(targets).long()
        if comm.get_world_size() > 1:  # every process gets the whole bank, in rank order
            device = feats.device
            shares = comm.all_gather((feats.cpu(), targets.cpu()))
            feats = torch.cat([f for f, _ in shares]).to(device)
            targets = torch.cat([t for _, t in shares]).to(device)
        self.bank_feats, self.bank_targets = feats, targets
        seed = ((self.cfg.SEED if self.cfg.SEED >= 0 else 0) * 1000003 + self.epoch
                + 7919 * comm.get_rank())  # each process draws its own sequences
        self.seq_gen.manual_seed(seed)
        logger.info("NFormer epoch %d: extracted %d features in %.1f s", self.epoch,
                    self.bank_feats.size(0), time.perf_counter() - t0)
