"""Engine: the CPU/GPU trainer, its step and the inference loop."""
from .inference import inference_on_dataset  # noqa: F401
from .step import NonFiniteLossError, StepTrainer  # noqa: F401
from .trainer import Trainer, check_loss_names, format_results  # noqa: F401

from fastreid.utils.registry import Registry  # noqa: E402

# Trainer classes selectable with ENGINE.TRAINER (e.g. a second-stage trainer).
TRAINER_REGISTRY = Registry("REID_EXT_TRAINERS")
TRAINER_REGISTRY.register(Trainer)


def get_trainer_class(cfg):
    name = cfg.ENGINE.TRAINER
    if name not in TRAINER_REGISTRY._obj_map:
        raise KeyError(f"unknown ENGINE.TRAINER '{name}'; registered: "
                       f"{', '.join(sorted(TRAINER_REGISTRY._obj_map))}")
    return TRAINER_REGISTRY.get(name)
