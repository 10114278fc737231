"""The protocol facts and option parsers, and the shipped canonical wnid list."""

import pytest

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.robustness.data import imagenet_wnids
from gfbench.robustness.protocol import (
    ALEXNET_ERROR,
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    GROUPS,
    group_of,
    parse_corruptions,
    parse_severities,
)


def test_wnid_list_is_the_sorted_imagenet_1k_synsets():
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 == len(set(wnids))
    assert list(wnids) == sorted(wnids)
    assert all(len(w) == 9 and w.startswith("n") and w[1:].isdigit() for w in wnids)
    assert wnids[0] == "n01440764" and wnids[-1] == "n15075141"  # tench ... toilet tissue


def test_groups_partition_the_fifteen_and_alexnet_covers_them():
    grouped = [c for members in GROUPS.values() for c in members]
    assert grouped == list(BENCHMARK_CORRUPTIONS)
    assert set(ALEXNET_ERROR) == set(BENCHMARK_CORRUPTIONS)
    assert group_of("spatter") == "extra" and group_of("fog") == "weather"


def test_parse_corruptions():
    assert parse_corruptions("default") == BENCHMARK_CORRUPTIONS
    assert parse_corruptions("all") == ALL_CORRUPTIONS and len(ALL_CORRUPTIONS) == 19
    assert parse_corruptions("fog, gaussian_noise") == ("gaussian_noise", "fog")
    with pytest.raises(UnknownNameError, match="unknown corruption gausian_noise"):
        parse_corruptions("gausian_noise")


@pytest.mark.parametrize("text, expected", [("1-5", (1, 2, 3, 4, 5)), ("3", (3,)),
                                            ("5,1,3", (1, 3, 5)), ("1-2,4", (1, 2, 4))])
def test_parse_severities(text, expected):
    assert parse_severities(text) == expected


@pytest.mark.parametrize("text", ["0-5", "6", "1-9", "a", "3-1", "", "1,,2"])
def test_bad_severity_lists_are_refused_in_one_line(text):
    with pytest.raises(GfbenchError, match="severit") as info:
        parse_severities(text)
    assert "\n" not in str(info.value)
