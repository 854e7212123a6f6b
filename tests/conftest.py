import os

import pytest

import reid_ext  # noqa: F401  (shims + registrations before any fastreid import)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def datasets_root(tmp_path, monkeypatch):
    """An empty $FASTREID_DATASETS for one test."""
    root = tmp_path / "datasets"
    root.mkdir()
    monkeypatch.setenv("FASTREID_DATASETS", str(root))
    return root


@pytest.fixture
def reid_log(caplog):
    """caplog for reid_ext's loggers even after fastreid's ``setup_logger(name="reid_ext")``
    (run by any earlier training in the session) set ``propagate = False`` on them."""
    import logging
    log = logging.getLogger("reid_ext")
    log.addHandler(caplog.handler)
    level = log.level
    log.setLevel(logging.INFO)
    try:
        yield caplog
    finally:
        log.setLevel(level)
        log.removeHandler(caplog.handler)


@pytest.fixture
def project_tool():
    """Load a script of projects/<Method>/tools/ as a module: project_tool("SFT", "x")."""
    import importlib.util

    def load(project, name):
        path = os.path.join(ROOT, "projects", project, "tools", f"{name}.py")
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
