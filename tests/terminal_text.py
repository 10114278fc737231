"""What a terminal of 80 columns shows, and whether a name or number reads whole in it."""

from __future__ import annotations

import io

from rich.console import Console


def at_80(renderable) -> str:
    """What an 80-column terminal shows (no colour)."""
    console = Console(record=True, width=80, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def reads_down(text: str, word: str) -> bool:
    """Whether word is in the text whole: on one line, or folded (or wrapped at a space) into
    consecutive lines that all start at the same column, as a table cell folds."""
    lines = text.splitlines()
    for first, line in enumerate(lines):
        for column in range(len(line)):
            rest, row = word, first
            while rest and row < len(lines):
                piece = lines[row][column:]
                taken = 0
                while taken < min(len(piece), len(rest)) and piece[taken] == rest[taken]:
                    taken += 1
                if taken == 0:
                    break
                rest, row = rest[taken:].lstrip(" "), row + 1
            if not rest:
                return True
    return False


def assert_whole(text: str, words, numbers=()) -> None:
    """No ellipsis, no line past 80 columns, each word reads down its cell and each number
    stands whole on one line."""
    assert "…" not in text, text
    assert max(map(len, text.splitlines())) <= 80, text
    for word in words:
        assert reads_down(text, word), f"{word!r} cut or missing in:\n{text}"
    for number in numbers:
        assert any(number in line.split() for line in text.splitlines()), \
            f"{number!r} split or missing in:\n{text}"
