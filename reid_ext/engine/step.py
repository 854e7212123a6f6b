"""One optimisation step, for CPU and CUDA, with and without AMP.

Differs from fastreid's SimpleTrainer/AMPTrainer in three ways:
- a NaN or infinite loss stops training with the loss term and the iteration named
  (checked before the optimizer step, so the last checkpoint stays valid);
- AMP goes through ``torch.amp`` with the model's device type (no deprecated API);
- gradients are zeroed in place (torch 2's default ``set_to_none`` detaches them from
  fastreid's contiguous parameter buffer and no weight would move);
- metrics are reduced on the host once per step, as fastreid does.
"""
import time

import numpy as np
import torch
from fastreid.engine.train_loop import SimpleTrainer
from fastreid.utils import comm
from fastreid.utils.events import get_event_storage


class NonFiniteLossError(FloatingPointError):
    pass


class StepTrainer(SimpleTrainer):
    def __init__(self, model, data_loader, optimizer, param_wrapper, amp_device=None,
                 amp_dtype=torch.float16):
        super().__init__(model, data_loader, optimizer, param_wrapper)
        self.amp_device = amp_device  # None = full precision
        self.amp_dtype = amp_dtype
        self.grad_scaler = (torch.amp.GradScaler(amp_device)
                            if amp_device and amp_dtype == torch.float16 else None)

    def run_step(self):
        assert self.model.training, "[StepTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        with torch.autocast(self.amp_device or "cpu", dtype=self.amp_dtype,
                            enabled=self.amp_device is not None):
            loss_dict = self.model(data)
        self._check_finite(loss_dict)
        losses = sum(loss_dict.values())

        # set_to_none=False: fastreid's ContiguousParams views the .grad tensors of one flat
        # buffer; torch >= 2.0 would replace them by None and the optimizer would see none.
        self.optimizer.zero_grad(set_to_none=False)
        if self.grad_scaler is not None:
            self.grad_scaler.scale(losses).backward()
        else:
            losses.backward()
        self._write_metrics(loss_dict, data_time)
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    def _check_finite(self, loss_dict):
        values = torch.stack([v.detach().float() for v in loss_dict.values()])
        if not bool(torch.isfinite(values).all()):
            bad = [k for k, v in loss_dict.items() if not torch.isfinite(v.detach()).all()]
            raise NonFiniteLossError(
                f"loss became NaN or infinite at iteration {self.iter}: "
                f"{', '.join(bad)} = {[float(loss_dict[k].detach()) for k in bad]}; "
                f"training stopped before the optimizer step (resume with --resume from "
                f"the last checkpoint after fixing the cause, e.g. a lower SOLVER.BASE_LR)")

    def _write_metrics(self, loss_dict, data_time):
        metrics = {k: v.detach().cpu().item() for k, v in loss_dict.items()}
        metrics["data_time"] = data_time
        all_metrics = comm.gather(metrics)
        if comm.is_main_process():
            storage = get_event_storage()
            storage.put_scalar("data_time", np.max([x.pop("data_time") for x in all_metrics]))
            metrics = {k: float(np.mean([x[k] for x in all_metrics])) for k in all_metrics[0]}
            storage.put_scalar("total_loss", sum(metrics.values()))
            if len(metrics) > 1:
                storage.put_scalars(**metrics)
