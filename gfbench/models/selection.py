"""Choosing many models at once: names, timm-style patterns and @files, minus exclusions."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence
from pathlib import Path

from gfbench.defaults import DEFAULT_MODELS, DEFAULT_RESOLUTIONS, NATIVE
from gfbench.errors import GfbenchError, UnknownNameError
from gfbench.models.factory import (
    ENTRIES,
    Resolution,
    _timm_names,
    canonical_name,
    count_params_on_meta,
    native_resolution,
    parse_resolution,
)

_WILDCARDS = frozenset("*?[")


def _is_pattern(spec: str) -> bool:
    """Whether a spec is an fnmatch pattern (timm.list_models' syntax) rather than a name."""
    return any(c in _WILDCARDS for c in spec)


def read_spec_file(path: str | Path) -> list[str]:
    """The names and patterns of an @file: one a line, '#' comments and blank lines ignored."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise GfbenchError(f"cannot read model list @{file}: {exc.strerror or exc}") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _expand(specs: Sequence[str]) -> list[str]:
    """Specs with every @file replaced by its lines (files do not nest)."""
    expanded: list[str] = []
    for spec in specs:
        spec = spec.strip()
        if spec.startswith("@"):
            expanded += read_spec_file(spec[1:])
        elif spec:
            expanded.append(spec)
    return expanded


def _universe() -> list[str]:
    """Every name a pattern can select: gfbench's own names, then timm's architectures."""
    return [*ENTRIES, *sorted(_timm_names())]


def _no_match(pattern: str) -> UnknownNameError:
    """One line for a pattern that selects nothing, with the names closest to its fixed part."""
    stem = "".join(c for c in pattern if c not in _WILDCARDS).strip("_-")
    close = difflib.get_close_matches(stem, _universe(), n=3, cutoff=0.5)
    hint = f" Close names: {', '.join(close)}." if close else ""
    return UnknownNameError(f"pattern {pattern!r} matches no gfbench or timm model.{hint} "
                            "Patterns use fnmatch syntax (*, ?, [..]) as timm.list_models does")


def _match(pattern: str) -> list[str]:
    """Names a pattern selects (case-insensitive), gfbench's own names first."""
    return [n for n in _universe() if fnmatch.fnmatch(n.lower(), pattern.lower())]


def select_models(specs: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Model names from names, patterns ('convnext_*') and @files, minus ``exclude`` patterns.

    Names come back canonical (gfbench's short names resolved, timm names as given), in the
    order the specs give them, each once. An unknown name or a pattern that matches nothing
    raises UnknownNameError with close names; an unreadable @file raises GfbenchError.
    """
    selected: list[str] = []
    for spec in _expand(specs):
        if _is_pattern(spec):
            found = _match(spec)
            if not found:
                raise _no_match(spec)
            selected += found
        else:
            selected.append(canonical_name(spec))
    dropped = [p if _is_pattern(p) else canonical_name(p) for p in _expand(exclude)]
    kept = [n for n in dict.fromkeys(selected)
            if not any(fnmatch.fnmatch(n.lower(), p.lower()) for p in dropped)]
    return kept


def selection_catalogue(specs: Sequence[str], params: bool = False) -> list[dict]:
    """What specs select, each with its native resolution (and parameters counted on meta,
    about 0.1 s per model, when ``params``): the rows of `gfbench list --timm`."""
    rows = []
    for name in select_models(specs):
        size = native_resolution(name)
        rows.append({"name": name, "native_res": size,
                     "params": count_params_on_meta(name, size) if params else None})
    return rows


def chosen_models(specs: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """What --models/--exclude select in every command: the default trio when no spec is
    given; GfbenchError when --exclude leaves nothing."""
    names = select_models(specs or DEFAULT_MODELS, exclude)
    if not names:
        raise GfbenchError("--exclude removed every model; nothing to measure")
    return names


def check_size_texts(texts: Sequence[str]) -> None:
    """The syntax of every --res value (N, HxW or 'native'), checked before any model is built."""
    for text in texts:
        if text.strip().lower() != NATIVE:
            parse_resolution(text)


def model_sizes(name: str, texts: Sequence[str]) -> list[Resolution]:
    """The sizes a model is measured at: --res (with 'native'), or by default the default
    sizes for gfbench's own models and each timm model's native size."""
    texts = texts or (DEFAULT_RESOLUTIONS if name in ENTRIES else (NATIVE,))
    sizes = [native_resolution(name) if t.strip().lower() == NATIVE else parse_resolution(t)
             for t in texts]
    return list(dict.fromkeys(sizes))
