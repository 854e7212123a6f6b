"""Self-generating synthetic ReID datasets (no download), registered in fastreid's
``DATASET_REGISTRY``:

* :class:`SynthPerson`: pedestrians in Market-1501 layout, with a Market-format
  attribute file (``dataset.attribute_file``);
* :class:`SynthVehicle`: vehicles in VeRi-776 layout.

Both generate their images on first use under ``<root>/<ClassName>/<tag>/`` and reuse
them afterwards; ``cfg_kwargs(cfg)`` reads ``cfg.DATASETS.SYNTH``.
"""
from .person import SynthPerson
from .vehicle import SynthVehicle

__all__ = ["SynthPerson", "SynthVehicle"]
