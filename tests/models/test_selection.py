"""Choosing models by name, pattern and @file; the errors a user can make."""

import fnmatch

import pytest
import timm

from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.models import select_models, selection_catalogue


def test_a_pattern_selects_what_timm_lists():
    assert select_models(["convnext_*"]) == timm.list_models("convnext_*")


def test_names_resolve_and_keep_their_order_once():
    assert select_models(["resnet18", "gfnet", "deit_small_patch16_224", "resnet18"]) == [
        "resnet18", "gfnet-xs", "deit-s"]


def test_gfbench_names_match_patterns_too():
    assert select_models(["gfnet-h-*"]) == ["gfnet-h-ti", "gfnet-h-s", "gfnet-h-b"]


def test_exclude_removes_by_pattern():
    chosen = select_models(["*siglip*"], exclude=["naflex*", "*_so400m_*"])
    assert chosen and all("siglip" in n for n in chosen)
    assert not any(fnmatch.fnmatch(n, "naflex*") or "_so400m_" in n for n in chosen)
    assert len(chosen) < len(timm.list_models("*siglip*"))


def test_at_file_with_comments_and_blank_lines(tmp_path):
    listing = tmp_path / "zoo.txt"
    listing.write_text("# my zoo\nresnet18\n\n  efficientnet_b[01]  # two of them\nresnet18\n")
    assert select_models([f"@{listing}", "test_vit"]) == [
        "resnet18", "efficientnet_b0", "efficientnet_b1", "test_vit"]


def test_missing_at_file_is_one_line(tmp_path):
    with pytest.raises(GfbenchError, match=r"cannot read model list @.*nope\.txt"):
        select_models([f"@{tmp_path / 'nope.txt'}"])


def test_pattern_matching_nothing_suggests_names():
    with pytest.raises(UnknownNameError, match="matches no gfbench or timm model. Close names: "
                                               ".*convnext"):
        select_models(["convnxt_*"])


def test_unknown_name_suggests_names():
    with pytest.raises(UnknownNameError, match="Did you mean.*resnet50"):
        select_models(["resnet5O"])


def test_catalogue_reports_native_resolution():
    rows = selection_catalogue(["test_vit", "resnet10t"], params=True)
    assert [r["native_res"] for r in rows] == [(160, 160), (176, 176)]
    built = timm.create_model("resnet10t")  # on the CPU, weights and all
    assert rows[1]["params"] == sum(p.numel() for p in built.parameters())
