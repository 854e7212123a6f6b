"""Feature extraction over a test loader, feeding an evaluator (CPU or GPU).

Unlike fastreid's ``inference_on_dataset`` it accepts dict outputs and the flip test
flips the raw images (fastreid flips already normalised ones and normalises twice).
"""
import datetime
import logging
import time

import torch
from fastreid.evaluation.evaluator import inference_context
from fastreid.utils.logger import log_every_n_seconds

logger = logging.getLogger(__name__)


def _average(a, b):
    if isinstance(a, dict):
        return {k: (a[k] + b[k]) / 2 if a[k].is_floating_point() else a[k] for k in a}
    return (a + b) / 2


@torch.no_grad()
def inference_on_dataset(model, data_loader, evaluator, flip_test=False):
    total = len(data_loader)
    logger.info("Start inference on %d images", len(data_loader.dataset))
    evaluator.reset()
    start = time.perf_counter()
    with inference_context(model):
        for idx, inputs in enumerate(data_loader):
            images = inputs["images"]
            outputs = model(inputs)
            if flip_test:
                flipped = dict(inputs, images=images.flip(dims=[3]))
                outputs = _average(outputs, model(flipped))
            evaluator.process(inputs, outputs)
            per_batch = (time.perf_counter() - start) / (idx + 1)
            eta = datetime.timedelta(seconds=int(per_batch * (total - idx - 1)))
            log_every_n_seconds(logging.INFO, f"Inference done {idx + 1}/{total}. "
                                f"{per_batch:.4f} s / batch. ETA={eta}", n=10)
    logger.info("Total inference time: %s (%d batches)",
                datetime.timedelta(seconds=int(time.perf_counter() - start)), total)
    return evaluator.evaluate() or {}
