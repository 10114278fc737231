"""The vendor table: conventions a reader relies on (dense, FMA = one FLOP, GiB)."""

import pytest

from gfbench.hardware import GIB, KNOWN_DEVICES, device_kind


def test_peaks_are_halved_to_multiply_adds():
    h100 = device_kind("H100-SXM")
    assert h100.peak_macs_s("bf16") == pytest.approx(989.5e12 / 2)
    assert h100.peak_macs_s("int4") is None


def test_capacity_and_bandwidth_units():
    assert device_kind("a100-40gb").memory_bytes == 40 * GIB
    assert device_kind("h200").bandwidth_bytes_s == pytest.approx(4.8e12)


def test_every_kind_cites_a_public_source_and_lists_fp32():
    for kind in KNOWN_DEVICES.values():
        assert kind.source.startswith("https://")
        assert kind.vendor_tflops["fp32"] > 0
        # tensor-core dtypes never below the plain FP32 figure on these parts
        assert kind.vendor_tflops["bf16"] >= kind.vendor_tflops["fp32"]


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="h100-sxm.*rtx-4090"):
        device_kind("tpu-v5")
