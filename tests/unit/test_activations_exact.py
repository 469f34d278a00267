"""Every smooth activation, value and derivative, against a 50-digit mpmath reference.

About 16k points per function and dtype, dense in both tails, at the underflow limits of the
value and the derivative, at exp's overflow/underflow thresholds and around the roots of f'.
The table (ours and torch's max and p99.9 ULP error) is printed on every run; a row fails if
ours is over 4 ULP, over torch's maximum, or breaks the zero rules (see activations_ulp.py).
"""

from __future__ import annotations

import pytest

from tests.unit.activations_ulp import all_rows, table


@pytest.fixture(scope="module")
def rows():
    return all_rows()


def test_every_row_within_the_goal(rows, capsys):
    with capsys.disabled():
        print("\n" + table(rows))
    failures = [f"{r.label} {r.output} {r.dtype}: {f}" for r in rows for f in r.failures]
    assert not failures, "\n".join(failures)


def test_the_table_covers_every_smooth_function(rows):
    labels = {r.label for r in rows}
    assert labels >= {"elu", "selu", "celu", "gelu", "gelu(tanh)", "silu", "mish", "sigmoid"}
    assert labels >= {"tanh", "softplus", "softsign", "logsigmoid", "tanhshrink"}
    assert labels >= {"softmax", "log_softmax", "glu"}
    assert {r.dtype for r in rows} == {"float32", "float64"}
    assert min(r.points for r in rows) > 5000
