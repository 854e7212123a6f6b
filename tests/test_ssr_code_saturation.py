"""projects/SSR/tools/code_saturation.py: how binary the relaxed codes are."""
import importlib.util
import math
import os

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool():
    path = os.path.join(ROOT, "projects", "SSR", "tools", "code_saturation.py")
    spec = importlib.util.spec_from_file_location("code_saturation", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_saturation_matches_the_closed_form():
    t = 0.5  # tanh(atanh(0.5)) = 0.5
    h = torch.tensor([[20.0, -20.0], [math.atanh(t), -math.atanh(t)], [0.05, 20.0]])
    mean_abs, high, low, cos = _tool().saturation(h)
    a = [1.0, 1.0, t, t, math.tanh(0.05), 1.0]
    assert math.isclose(mean_abs, sum(a) / 6, rel_tol=1e-6)
    assert math.isclose(high, 3 / 6) and math.isclose(low, 1 / 6)
    # rows 1 and 2 point along their sign exactly; row 3 is (tanh 0.05, 1) against (1, 1)
    c3 = (math.tanh(0.05) + 1) / (math.sqrt(math.tanh(0.05) ** 2 + 1) * math.sqrt(2))
    assert math.isclose(cos, (1 + 1 + c3) / 3, rel_tol=1e-6)


def test_binary_codes_are_fully_saturated_and_random_ones_are_not():
    sat = _tool().saturation
    assert sat(torch.full((4, 8), 30.0))[0] == pytest.approx(1.0)
    m, _, _, cos = sat(torch.randn(256, 64, generator=torch.Generator().manual_seed(0)))
    assert 0.5 < m < 0.65 and cos < 0.9  # E|tanh z| for z ~ N(0, 1) is about 0.6


def test_bad_shape_names_it():
    with pytest.raises(ValueError, match=r"\(3,\)"):
        _tool().saturation(torch.zeros(3))
