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
