"""NFormer (Wang et al., CVPR 2022): Landmark Agent Attention + Reciprocal Neighbor Softmax.

- :func:`landmark_agent_attention`: the functional core (gathered, no N x N tensor);
- :class:`NFormer`: the module; :class:`NFormerBaseline`: encoder + NFormer meta-arch;
- the stage-2 trainer ``NFormerTrainer`` lives in the engine (:mod:`reid_ext.engine.nformer`,
  registered by ``reid_ext.engine``, selected with ``ENGINE.TRAINER NFormerTrainer``); the
  model package does not import the engine.
"""
from .attention import (dense_landmark_agent_attention, landmark_agent_attention,  # noqa: F401
                        reciprocal_neighbors)
from .meta_arch import NFormerBaseline, nformer_sequence_losses  # noqa: F401
from .model import NFormer, NFormerBlock, dense_nformer_forward, nformer_neighbors  # noqa: F401
