"""The report: one document model rendered twice, as Markdown and as self-contained HTML.

report.md links the figure files beside it; report.html embeds every figure (SVG, base64 data
URIs) and needs no server and no other file. Both hold the tables, the provenance of every run
and the FLOP convention. Nothing in them depends on the clock, so the same inputs give the same
bytes.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Paragraph:
    """Plain text."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A list of one-line items."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A table with a caption; cells are already formatted strings."""

    caption: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Picture:
    """A figure: the file the Markdown links to and the SVG the HTML embeds."""

    title: str
    link: str
    svg: bytes


@dataclass(frozen=True)
class Preformatted:
    """Text shown as is (command lines, conventions)."""

    text: str


Block = Paragraph | Bullets | Table | Picture | Preformatted


@dataclass
class Section:
    """A titled part of the report."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2


def format_cell(value: object) -> str:
    """A table cell as text: 4 significant digits (whole numbers from 1000), empty for missing."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """The same table with every cell as text, so Markdown and HTML show the same digits."""
    return frame.astype(object).apply(lambda column: column.map(format_cell))


def _md_cell(text: str) -> str:
    """A Markdown table cell: pipes escaped, newlines flattened."""
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table."""
    header = "| " + " | ".join(_md_cell(str(c)) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_md_cell(str(v)) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _block_markdown(block: Block) -> str:
    """One block as Markdown."""
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        return f"*{block.caption}*\n\n{_markdown_table(block.frame)}"
    if isinstance(block, Picture):
        return f"![{block.title}]({block.link})"
    return "```\n" + block.text + "\n```"


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """The report as Markdown; figures are links to the files beside it."""
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"{'#' * section.level} {section.title}")
        parts.extend(_block_markdown(b) for b in section.blocks)
    return "\n\n".join(parts) + "\n"


_CSS = """
body { font-family: "DejaVu Sans", Verdana, sans-serif; margin: 2rem auto; max-width: 1500px;
       padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #0072B2; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1.5rem; }
th, td { border: 1px solid #ddd; padding: .2rem .5rem; text-align: right;
         white-space: nowrap; }
th.words, td.words { white-space: normal; }
.words > span { white-space: nowrap; }
th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-style: italic; padding: .3rem 0; }
.scroll { overflow-x: auto; }
pre { background: #f6f6f6; padding: .6rem; white-space: pre-wrap; font-size: .85rem; }
"""


def _cell_html(tag: str, value: object) -> str:
    """A th or td that never breaks a word (not even after a hyphen or a slash, as in
    'gfnet-xs' or 'ckpt/deit-s.pth'): text without spaces stays on one line; text with spaces
    wraps at its spaces only, each word one unbreakable span."""
    words = str(value).split(" ")
    if len(words) == 1:
        return f"<{tag}>{html.escape(words[0])}</{tag}>"
    spans = " ".join(f"<span>{html.escape(word)}</span>" for word in words)
    return f'<{tag} class="words">{spans}</{tag}>'


def _block_html(block: Block) -> str:
    """One block as HTML; figures embedded as base64 SVG."""
    if isinstance(block, Paragraph):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Bullets):
        items = "".join(f"<li>{html.escape(item)}</li>" for item in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        head = "".join(_cell_html("th", c) for c in block.frame.columns)
        rows = "".join("<tr>" + "".join(_cell_html("td", v) for v in row) + "</tr>"
                       for row in block.frame.itertuples(index=False))
        return (f'<div class="scroll"><table><caption>{html.escape(block.caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")
    if isinstance(block, Picture):
        data = base64.b64encode(block.svg).decode("ascii")
        title = html.escape(block.title)
        return (f'<figure><img src="data:image/svg+xml;base64,{data}" alt="{title}">'
                f"<figcaption>{title}</figcaption></figure>")
    return f"<pre>{html.escape(block.text)}</pre>"


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The report as one HTML file that needs nothing else (no server, no network)."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h{section.level}>{html.escape(section.title)}</h{section.level}>")
        body.extend(_block_html(b) for b in section.blocks)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def write_report(out: Path, title: str, sections: Sequence[Section]) -> list[Path]:
    """Write report.md and report.html into out; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    markdown, page = out / "report.md", out / "report.html"
    markdown.write_text(render_markdown(title, sections), encoding="utf-8")
    page.write_text(render_html(title, sections), encoding="utf-8")
    return [markdown, page]
