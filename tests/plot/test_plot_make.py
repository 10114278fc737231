"""make_plots end to end: files, image sizes, determinism, the report, bad inputs, Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree

import pandas as pd
import pytest
from PIL import Image
from plot_synthetic import (
    cpu_rows,
    gpu_rows,
    robustness_rows,
    write_bad_files,
    write_complexity,
    write_robustness,
)

from gfbench.errors import GfbenchError
from gfbench.plot import NothingToPlotError, PlotOptions, make_plots, parse_formats
from gfbench.plot.complexity import LEGEND_ENTRY_IN, PANEL_IN
from gfbench.plot.report import Section, render_html
from gfbench.plot.report import Table as ReportTable
from gfbench.plot.style import DPI

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def made(results_dir, tmp_path_factory):
    """One run over the whole results folder: mixed settings, robustness, bad files."""
    return make_plots([results_dir], PlotOptions(out=tmp_path_factory.mktemp("out")))


def test_every_figure_is_written_as_png_and_svg(made):
    report = made
    stems = sorted({p.stem for p in report.figures})
    assert [s.split("-")[0] for s in stems].count("complexity") == 2  # the GPU and the CPU run
    assert {s for s in stems if s.startswith("robustness")} == {
        "robustness-corruptions", "robustness-severity", "robustness-summary"}
    for stem in stems:
        assert (report.out / f"{stem}.png").is_file() and (report.out / f"{stem}.svg").is_file()
    assert [p.name for p in report.reports] == ["report.md", "report.html"]


def test_pngs_are_valid_images_of_the_figures_size_at_150_dpi(made):
    report = made
    for path in (p for p in report.figures if p.suffix == ".png"):
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.info["dpi"][0] == pytest.approx(DPI, abs=0.5)
            width, height = image.size
        svg = ElementTree.parse(path.with_suffix(".svg")).getroot()
        assert svg.tag.endswith("svg")
        points = [float(svg.get(k).removesuffix("pt")) for k in ("width", "height")]
        # the same figure: SVG size in points x dpi / 72 = PNG size in pixels
        assert (width, height) == (round(points[0] * DPI / 72), round(points[1] * DPI / 72))
        assert width >= 1000 and height >= 500
    gpu_png = next(p for p in report.figures if "nvidia" in p.name and p.suffix == ".png")
    with Image.open(gpu_png) as image:
        # 2 x 2 panels; each row of panels has a legend room for 2 curves, the OOM entry and
        # the 2 guides; plus the title and the footnote
        legend = LEGEND_ENTRY_IN * 5 + 0.15
        height = 2 * (PANEL_IN[1] + legend) + 0.8
        assert image.size[0] == round(2 * PANEL_IN[0] * DPI)
        assert abs(image.size[1] - height * DPI) <= 1


def test_same_inputs_give_the_same_bytes(tmp_path):
    write_complexity(tmp_path / "in" / "run", cpu_rows())
    first, second = (make_plots([tmp_path / "in"], PlotOptions(out=tmp_path / out))
                     for out in ("a", "b"))
    assert [p.name for p in first.written] == [p.name for p in second.written]
    assert {p.suffix for p in first.written} == {".png", ".svg", ".md", ".html"}
    for a, b in zip(first.written, second.written, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_bad_files_are_one_line_each_and_everything_else_is_plotted(made, results_dir):
    report = made
    assert len(report.problems) == 4
    assert all("\n" not in p and str(results_dir / "bad") in p for p in report.problems)


def test_html_report_is_self_contained_and_holds_tables_provenance_and_convention(made):
    report = made
    page = (report.out / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 5 and all(s.startswith("data:image/svg+xml;base64,") for s in sources)
    assert not re.search(r"<(link|script)\b", page)
    assert "http://" not in page.replace('xmlns="http://', "") and "https://" not in page
    text = re.sub(r"<[^>]+>", "", page)  # a cell's words are spans of their own
    for needed in ("Provenance", "gfbench complexity --models gfnet-xs,deit-s",
                   "FLOP convention", "one fused multiply-add = one FLOP", "Fitted exponents",
                   "flops is &#x27;lots&#x27;", "mean corruption error (%, not mCE)"):
        assert needed in text, needed


def test_markdown_report_links_the_figure_files_beside_it(made):
    report = made
    text = (report.out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 5
    assert all((report.out / link).is_file() and link.endswith(".png") for link in links)
    assert "| curve | panel | N counts | k (cost ∝ N^k) |" in text


def test_default_out_is_plots_beside_the_inputs_and_pdf_on_request(tmp_path):
    write_complexity(tmp_path / "run", gpu_rows()[:5])
    report = make_plots([tmp_path / "run.json"], PlotOptions(formats=("pdf",)))
    assert report.out == tmp_path.resolve() / "plots"
    pdf, = report.figures
    assert pdf.suffix == ".pdf" and pdf.read_bytes().startswith(b"%PDF")
    assert "CreationDate" not in pdf.read_bytes().decode("latin-1")


def test_robustness_without_corruptions_gets_the_summary_only(tmp_path):
    rows = [r for r in robustness_rows("gfnet-s", 0.2) if r.source in ("clean", "attack")]
    write_robustness(tmp_path / "attacks", rows)
    report = make_plots([tmp_path], PlotOptions(formats=("svg",)))
    assert [p.name for p in report.figures] == ["robustness-summary.svg"]
    text = re.sub(r"<[^>]+>", "", (report.out / "report.html").read_text())
    assert "FGSM ε=1/255 accuracy (%)" in text and "Token mixers" not in text


def test_nothing_to_plot_raises_one_line_with_the_problems(tmp_path):
    bad = write_bad_files(tmp_path)
    with pytest.raises(NothingToPlotError) as caught:
        make_plots([tmp_path])
    assert "\n" not in str(caught.value) and "nothing to plot" in str(caught.value)
    assert len(caught.value.problems) == len(bad)
    assert not (tmp_path / "plots").exists()


def test_unknown_formats_and_options_are_one_line_errors():
    assert parse_formats("svg, PNG,svg") == ("svg", "png")
    with pytest.raises(GfbenchError, match="unknown figure format jpg; allowed"):
        parse_formats("png,jpg")
    with pytest.raises(GfbenchError, match="unknown x axis"):
        make_plots([], PlotOptions(x="side"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install "
                    "chromium), so the HTML report was NOT rendered in a browser")
def test_html_report_renders_in_headless_chromium(made, tmp_path):
    report = made
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
                    "--window-size=1400,3000", (report.out / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    with Image.open(shot) as image:
        assert image.size == (1400, 3000)
        grey = image.convert("L")
        # figures and tables drawn: far from a blank page
        assert grey.getextrema()[0] < 60
        dark = sum(grey.histogram()[:200]) / (1400 * 3000)
        assert dark > 0.02


def test_report_can_hold_a_comparison_and_a_bad_pair_writes_nothing(tmp_path):
    a = write_complexity(tmp_path / "a" / "run", cpu_rows(), device_name="cpu: Test CPU 9000")
    faster = cpu_rows()
    for row in faster:
        row.latency_ms_p10, row.latency_ms_p50, row.latency_ms_p90 = (
            v / 4 for v in (row.latency_ms_p10, row.latency_ms_p50, row.latency_ms_p90))
        row.throughput_ips *= 4
    b = write_complexity(tmp_path / "b" / "run", faster, device_name="cpu: Test CPU 9001")
    report = make_plots([tmp_path / "a"], PlotOptions(out=tmp_path / "out", formats=("svg",),
                                                      compare=(a, b)))
    text = (report.out / "report.md").read_text()
    comparison = text[text.index("## Comparison: B against A"):text.index("## Provenance")]
    rows = [line for line in comparison.splitlines() if line.startswith("| gfnet-xs")]
    assert len(rows) == 3  # the three resolutions both measured
    assert all("| 0.250× * | 4.00× * |" in line for line in rows)  # latency, throughput
    assert "| device | cpu: Test CPU 9000 | cpu: Test CPU 9001 |" in comparison
    with pytest.raises(GfbenchError, match="no setting in common"):
        make_plots([tmp_path / "a"], PlotOptions(out=tmp_path / "never",
                                                 compare=(a, write_complexity(
                                                     tmp_path / "c" / "run", gpu_rows()))))
    assert not (tmp_path / "never").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install "
                    "chromium), so the report's layout was NOT checked in a browser")
def test_report_fits_a_1400_px_window_and_shows_figures_unshrunk(made, tmp_path):
    probe = ("<script>window.onload = () => { document.title = JSON.stringify({"
             "page: document.documentElement.scrollWidth, "
             "clipped: [...document.querySelectorAll('.scroll')]"
             ".filter(e => e.scrollWidth > e.clientWidth + 1).length, "
             "figures: [...document.querySelectorAll('figure img')]"
             ".map(i => [i.alt, i.naturalWidth, i.clientWidth])}); };</script>")
    page = (made.out / "report.html").read_text().replace("</body>", probe + "</body>")
    copy = tmp_path / "probe.html"
    copy.write_text(page)
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                             "--no-first-run", "--disable-background-networking",
                             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900",
                             "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
                            capture_output=True, text=True, timeout=120, check=False)
    title = re.search(r"<title>(.*?)</title>", result.stdout, re.S).group(1)
    layout = json.loads(html.unescape(title))
    assert layout["page"] <= 1400 and layout["clipped"] == 0, layout
    complexity = [f for f in layout["figures"] if f[0].startswith("Models")]
    assert complexity and all(shown == natural for _, natural, shown in complexity), complexity


# every word of every th/td (a run of non-space characters): the distinct tops of the lines
# its characters lie on; a word broken mid-word (after a hyphen or a slash too) has two or more
_WORD_LINES = """
const broken = [];
for (const cell of document.querySelectorAll('th, td')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const word of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, word.index);
      range.setEnd(node, word.index + word[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0)
                           .map(r => Math.round(r.top)));
      if (tops.size !== 1) broken.push([cell.tagName, word[0], tops.size]);
    }
  }
}
"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install "
                    "chromium), so the report's line breaks were NOT checked in a browser")
@pytest.mark.parametrize("width", [1400, 800])
def test_report_tables_never_break_a_word(made, tmp_path, width):
    # 1400 px: the tables fit; 800 px: the widest scroll sideways instead of breaking words
    probe = ("<script>window.onload = () => {" + _WORD_LINES + "document.title = JSON.stringify("
             "{broken, words: document.querySelectorAll('th, td').length, "
             "page: document.documentElement.scrollWidth}); };</script>")
    page = (made.out / "report.html").read_text().replace("</body>", probe + "</body>")
    copy = tmp_path / "words.html"
    copy.write_text(page)
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                             "--disable-quic", "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync",
                             f"--user-data-dir={tmp_path / 'profile'}",
                             f"--window-size={width},900", "--virtual-time-budget=10000",
                             "--dump-dom", copy.as_uri()],
                            capture_output=True, text=True, timeout=120, check=False)
    title = re.search(r"<title>(.*?)</title>", result.stdout, re.S).group(1)
    layout = json.loads(html.unescape(title))
    assert layout["words"] > 200  # every table of the report was laid out
    assert layout["broken"] == [], layout["broken"]
    assert layout["page"] <= width  # the page itself never scrolls sideways


def test_report_cells_wrap_at_spaces_only():
    frame = pd.DataFrame({"latency p50 (ms)": ["1.5"], "name": ["ckpt/gfnet-s.pth"]})
    page = render_html("t", [Section("s", [ReportTable("caption", frame)])])
    assert ('<th class="words"><span>latency</span> <span>p50</span> <span>(ms)</span></th>'
            in page)
    assert "<td>ckpt/gfnet-s.pth</td>" in page and "<th>name</th>" in page
    assert "overflow-wrap: anywhere" not in page and "word-break" not in page


def test_plot_removes_only_the_figures_it_made_before_and_no_longer_makes(tmp_path):
    gpu = write_complexity(tmp_path / "in" / "gpu", gpu_rows())
    cpu = write_complexity(tmp_path / "in" / "cpu", cpu_rows(), device_name="cpu: Test CPU 9000")
    out = tmp_path / "plots"
    first = make_plots([gpu, cpu], PlotOptions(out=out, formats=("png",)))
    mine = (out / "notes.txt")
    mine.write_text("not gfbench's")
    cpu_figures = {p for p in first.figures if "test-cpu" in p.name}
    assert cpu_figures and all(p.exists() for p in cpu_figures)
    second = make_plots([gpu], PlotOptions(out=out, formats=("png",)))
    assert set(second.removed) == cpu_figures
    assert not any(p.exists() for p in cpu_figures) and all(p.exists() for p in second.figures)
    assert mine.read_text() == "not gfbench's"  # not in the manifest: never touched


def test_plotting_a_folder_twice_skips_nothing_plot_wrote_itself(tmp_path):
    # plot's own manifest lies in the plots/ folder under the inputs: not a results file
    write_complexity(tmp_path / "run", gpu_rows()[:5])
    first = make_plots([tmp_path], PlotOptions(formats=("png",)))
    again = make_plots([tmp_path], PlotOptions(formats=("png",)))
    assert first.problems == again.problems == [] and again.removed == []
    assert [p.name for p in again.figures] == [p.name for p in first.figures]
