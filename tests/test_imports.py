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


def _imported_modules(path, package):
    """Absolute names of the modules a file imports (relative imports resolved)."""
    import ast
    tree = ast.parse(open(path).read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            names += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return names


def test_no_upward_import_into_the_engine():
    """config, data, modeling, evaluation and utils never import reid_ext.engine (nor the
    command line): the engine builds on them, not the reverse (issue 15, item 6)."""
    import reid_ext
    root = os.path.dirname(reid_ext.__file__)
    bad = []
    for sub in ("config", "data", "modeling", "evaluation", "utils"):
        for dirpath, _, files in os.walk(os.path.join(root, sub)):
            for f in files:
                if not f.endswith(".py"):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.dirname(root))[:-3].replace(os.sep, ".")
                package = rel if f == "__init__.py" else rel.rsplit(".", 1)[0]
                package = package.removesuffix(".__init__")
                for name in _imported_modules(path, package):
                    if name.startswith(("reid_ext.engine", "reid_ext.train_net")):
                        bad.append(f"{rel}: {name}")
    assert not bad, bad


def test_importing_the_models_does_not_load_the_engine():
    import subprocess
    import sys
    code = ("import sys, reid_ext, reid_ext.modeling, reid_ext.evaluation; "
            "assert not [m for m in sys.modules if m.startswith('reid_ext.engine')]; "
            "from reid_ext.engine import TRAINER_REGISTRY; "
            "assert 'NFormerTrainer' in TRAINER_REGISTRY._obj_map")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
