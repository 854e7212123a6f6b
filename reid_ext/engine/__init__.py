"""Engine: the CPU/GPU trainer, its step, the inference loop, the multi-process launcher,
and the trainers selectable with ENGINE.TRAINER (registered here, on the engine side)."""
from .inference import inference_on_dataset  # noqa: F401
from .step import NonFiniteLossError, StepTrainer  # noqa: F401
from .trainer import Trainer, check_loss_names, format_results  # noqa: F401

from fastreid.utils.registry import Registry  # noqa: E402

from ..utils.errors import ConfigKeyError  # noqa: E402

# Trainer classes selectable with ENGINE.TRAINER (e.g. a second-stage trainer).
TRAINER_REGISTRY = Registry("REID_EXT_TRAINERS")
TRAINER_REGISTRY.register(Trainer)


def get_trainer_class(cfg):
    name = cfg.ENGINE.TRAINER
    if name not in TRAINER_REGISTRY._obj_map:
        raise ConfigKeyError(f"unknown ENGINE.TRAINER '{name}'; registered: "
                             f"{', '.join(sorted(TRAINER_REGISTRY._obj_map))}")
    return TRAINER_REGISTRY.get(name)


# -- trainers of the methods (one import line each; each registers itself) --
from . import nformer  # noqa: F401,E402  (NFormerTrainer: NFormer stage 2)
