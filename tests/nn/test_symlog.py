"""symlog / symexp and the symlog squared error (ALGORITHM.md §1, §3.9, §15)."""

from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from hieros_pl.nn.symlog import symexp, symlog, symlog_squared_error

FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


@given(st.lists(FINITE, min_size=1, max_size=16))
def test_symexp_inverts_symlog(values: list[float]) -> None:
    x = torch.tensor(values, dtype=torch.float64)
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-9, atol=1e-9)


@given(st.lists(st.floats(min_value=-12.0, max_value=12.0, width=32), min_size=1, max_size=16))
def test_symlog_inverts_symexp(values: list[float]) -> None:
    y = torch.tensor(values, dtype=torch.float64)
    torch.testing.assert_close(symlog(symexp(y)), y, rtol=1e-9, atol=1e-9)


def test_symlog_known_values_and_oddness() -> None:
    x = torch.tensor([0.0, math.e - 1.0, -(math.e - 1.0), math.e**3 - 1.0])
    torch.testing.assert_close(symlog(x), torch.tensor([0.0, 1.0, -1.0, 3.0]))


def test_symlog_squared_error_sums_last_dim_and_zeroes_tiny_errors() -> None:
    target = torch.tensor([[math.e - 1.0, 0.0, 0.0]])
    prediction = torch.tensor([[1.0 + 1e-5, 2.0, -0.5]])
    # The first element's squared error (1e-10) is below the 1e-8 floor and counts as 0.
    expected = torch.tensor([4.0 + 0.25])
    torch.testing.assert_close(symlog_squared_error(prediction, target), expected)
