"""Option parsers of gfbench.options: --fit-memory's budget."""

import pytest

from gfbench.errors import GfbenchError
from gfbench.hardware import GIB
from gfbench.options import parse_memory_budget


@pytest.mark.parametrize(("text", "expected"), [
    ("80GiB", 80 * 2**30), ("24GB", 24 * 10**9), ("512MiB", 512 * 2**20),
    ("1.5 GiB", 3 * 2**29), ("4096b", 4096), ("2TiB", 2 * 2**40),
])
def test_sizes_are_parsed_with_binary_and_decimal_units(text, expected):
    budget = parse_memory_budget(text)
    assert budget.bytes == expected and not budget.nominal


def test_a_known_device_kind_is_its_nominal_capacity_and_says_so():
    budget = parse_memory_budget("H200")
    assert budget.bytes == 141 * GIB and budget.nominal
    assert "h200" in budget.label and "nominal" in budget.label


@pytest.mark.parametrize("text", ["80", "80 parsecs", "-1GiB", "0GB", "b100"])
def test_anything_else_is_one_line_listing_units_and_known_kinds(text):
    with pytest.raises(GfbenchError) as error:
        parse_memory_budget(text)
    message = str(error.value)
    assert "\n" not in message and f"--fit-memory {text!r}" in message
    assert "GiB" in message and "h100-sxm" in message and "a100-80gb" in message
