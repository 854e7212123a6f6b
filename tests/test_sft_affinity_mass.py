"""projects/SFT/tools/affinity_mass.py: where SFT's blurring weight goes in a batch."""
import importlib.util
import math
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool():
    path = os.path.join(ROOT, "projects", "SFT", "tools", "affinity_mass.py")
    spec = importlib.util.spec_from_file_location("affinity_mass", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_masses_match_the_closed_form_of_a_two_cluster_batch():
    # 2 identities x K = 2, positives identical (cos 1), the identities orthogonal (cos 0)
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    pids = torch.tensor([0, 0, 1, 1])
    sigma = 0.5
    m_self, m_pos, m_neg, a_pos, a_neg = _tool().masses([(x, pids)], sigma)
    z = 2 * math.exp(1 / sigma) + 2  # row sum of exp(cos / sigma)
    assert math.isclose(m_self, math.exp(1 / sigma) / z, rel_tol=1e-6)
    assert math.isclose(m_pos, math.exp(1 / sigma) / z, rel_tol=1e-6)
    assert math.isclose(m_neg, 2 / z, rel_tol=1e-6)
    assert math.isclose(m_self + m_pos + m_neg, 1.0, rel_tol=1e-6)
    assert math.isclose(a_pos, 1.0, rel_tol=1e-6)  # a positive weighs as much as self
    assert math.isclose(a_neg, math.exp(-1 / sigma), rel_tol=1e-6)
