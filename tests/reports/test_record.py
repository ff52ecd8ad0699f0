"""record(): what goes into a notebook's outputs and comes back out of them."""

from __future__ import annotations

import math

import nbformat
import numpy as np
import pytest
import torch

from labkit.errors import ConfigError
from labkit.reports import read_records, record
from labkit.reports._record import MAX_RECORD_SIZE, RECORD_MIME, session_records


def test_outside_a_kernel_values_are_kept_in_the_session():
    assert record("loss", 0.25) == 0.25
    record("weights", torch.arange(6, dtype=torch.float64).reshape(2, 3))
    assert session_records["loss"] == 0.25
    assert session_records["weights"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


@pytest.mark.parametrize("name", ["1x", "a b", "", None])
def test_names_must_be_identifiers(name):
    with pytest.raises(ConfigError, match="record name must be an identifier"):
        record(name, 1)


def test_large_arrays_are_refused_with_their_size():
    with pytest.raises(ConfigError, match=f"{MAX_RECORD_SIZE + 1} elements"):
        record("big", np.zeros(MAX_RECORD_SIZE + 1))


def test_ragged_or_object_values_are_refused():
    with pytest.raises(ConfigError, match="rectangular"):
        record("ragged", [[1, 2], [3]])
    with pytest.raises(ConfigError, match="scalar, string or small array"):
        record("obj", object())


def test_read_records_parses_outputs_and_keeps_nan():
    payload = '{"name": "err", "value": NaN, "shape": []}'
    out = nbformat.v4.new_output("display_data", data={RECORD_MIME: payload, "text/plain": "x"})
    later = nbformat.v4.new_output(
        "display_data", data={RECORD_MIME: '{"name": "n", "value": [1, 2], "shape": [2]}'})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", outputs=[out, later])])
    found = read_records(nb)
    assert math.isnan(found["err"]) and found["n"] == [1, 2]
