"""projects/SSR/tools/code_saturation.py: how binary the relaxed codes are."""
import math

import pytest
import torch


@pytest.fixture
def saturation(project_tool):
    return project_tool("SSR", "code_saturation").saturation


def test_saturation_matches_the_closed_form(saturation):
    t = 0.5  # tanh(atanh(0.5)) = 0.5
    h = torch.tensor([[20.0, -20.0], [math.atanh(t), -math.atanh(t)], [0.05, 20.0]])
    mean_abs, high, low, cos = saturation(h)
    a = [1.0, 1.0, t, t, math.tanh(0.05), 1.0]
    assert math.isclose(mean_abs, sum(a) / 6, rel_tol=1e-6)
    assert math.isclose(high, 3 / 6) and math.isclose(low, 1 / 6)
    # rows 1 and 2 point along their sign exactly; row 3 is (tanh 0.05, 1) against (1, 1)
    c3 = (math.tanh(0.05) + 1) / (math.sqrt(math.tanh(0.05) ** 2 + 1) * math.sqrt(2))
    assert math.isclose(cos, (1 + 1 + c3) / 3, rel_tol=1e-6)


def test_binary_codes_are_fully_saturated_and_random_ones_are_not(saturation):
    assert saturation(torch.full((4, 8), 30.0))[0] == pytest.approx(1.0)
    m, _, _, cos = saturation(torch.randn(256, 64, generator=torch.Generator().manual_seed(0)))
    assert 0.5 < m < 0.65 and cos < 0.9  # E|tanh z| for z ~ N(0, 1) is about 0.6


def test_bad_shape_names_it(saturation):
    with pytest.raises(ValueError, match=r"\(3,\)"):
        saturation(torch.zeros(3))
