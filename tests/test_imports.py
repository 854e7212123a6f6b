"""fastreid 1.4.0 imports on today's stack after `import reid_ext`, without file changes."""
import importlib
import os
import pkgutil

import fastreid
import pytest

# Scripts shipped inside the package, not modules: setup.py of the Cython ranker and
# its timing script (which runs at import).
SCRIPTS = {"fastreid.evaluation.rank_cylib.setup", "fastreid.evaluation.rank_cylib.test_cython"}


def _modules():
    return [m.name for m in pkgutil.walk_packages(fastreid.__path__, "fastreid.")
            if m.name not in SCRIPTS]


def test_walk_finds_the_whole_package():
    assert len(_modules()) > 100


@pytest.mark.parametrize("name", _modules())
def test_every_fastreid_module_imports(name):
    importlib.import_module(name)


def test_reid_ext_registers_components():
    from fastreid.data.datasets import DATASET_REGISTRY
    from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
    assert "ReidBaseline" in META_ARCH_REGISTRY._obj_map
    assert {"SynthPerson", "SynthVehicle"} <= set(DATASET_REGISTRY._obj_map)


def test_no_file_written_into_fastreid():
    """The evaluator must never compile its Cython ranker into site-packages."""
    import torch
    from reid_ext.config import get_cfg
    from reid_ext.evaluation import ReidExtEvaluator
    cylib = os.path.join(os.path.dirname(fastreid.__file__), "evaluation", "rank_cylib")
    before = sorted(os.listdir(cylib))
    ev = ReidExtEvaluator(get_cfg(), num_query=4)
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(12, 8, generator=g)
    pids = torch.tensor([0, 1, 2, 3] * 3)
    cams = torch.tensor([0] * 4 + [1] * 8)
    ev.process({"targets": pids, "camids": cams}, feats)
    res = ev.evaluate()
    assert set(res) >= {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP", "metric"}
    assert sorted(os.listdir(cylib)) == before
