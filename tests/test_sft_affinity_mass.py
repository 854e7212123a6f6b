"""projects/SFT/tools/affinity_mass.py: where SFT's blurring weight goes in a batch."""
import math

import torch


def test_masses_match_the_closed_form_of_a_two_cluster_batch(project_tool):
    # 2 identities x K = 2, positives identical (cos 1), the identities orthogonal (cos 0)
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    pids = torch.tensor([0, 0, 1, 1])
    sigma = 0.5
    masses = project_tool("SFT", "affinity_mass").masses
    m_self, m_pos, m_neg, a_pos, a_neg = masses([(x, pids)], sigma)
    z = 2 * math.exp(1 / sigma) + 2  # row sum of exp(cos / sigma)
    assert math.isclose(m_self, math.exp(1 / sigma) / z, rel_tol=1e-6)
    assert math.isclose(m_pos, math.exp(1 / sigma) / z, rel_tol=1e-6)
    assert math.isclose(m_neg, 2 / z, rel_tol=1e-6)
    assert math.isclose(m_self + m_pos + m_neg, 1.0, rel_tol=1e-6)
    assert math.isclose(a_pos, 1.0, rel_tol=1e-6)  # a positive weighs as much as self
    assert math.isclose(a_neg, math.exp(-1 / sigma), rel_tol=1e-6)
