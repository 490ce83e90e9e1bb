"""report.html, checked in a real browser: headless Chromium opens the page from disk (no
network), plotly draws every figure, no script fails, every frontier point is drawn, hovering a
point names its configuration, and a legend click hides a whole strategy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from test_analysis import record, write_log

from analysis.interactive import frontier_uid
from analysis.load import is_baseline
from analysis.pareto import pareto_front
from analysis.report import analyze
from common.describe import describe_config

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FRONTIERS = ("frontier: pretraining", "frontier: ordinary training")


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; CI installs it)")


def curve(trial, seed, points, **config):
    return [record(trial, i, flops, accuracy, seed=seed, model="cnn", width=6, lr=1e-3,
                   batch_size=64, augment=False, **config)
            | {"status": "finished" if i == len(points) - 1 else "running",
               "epoch": float(i), "phase": "finetune"}
            for i, (flops, accuracy) in enumerate(points)]


def hand_made_log() -> dict[str, list[dict]]:
    """Two seeds of ordinary training, two of random pretraining, one of class means."""
    base = dict(finetune_epochs=4, pretrain_epochs=0)
    random = dict(strategy="random", subset_size=50, subset_fraction=0.05,
                  overdetermination_ratio=2.0, pretrain_epochs=3, finetune_epochs=4)
    means = dict(strategy="class_mean", subset_size=10, subset_fraction=0.01,
                 overdetermination_ratio=0.4, pretrain_epochs=5, finetune_epochs=4)
    return {
        "b0": curve("b0", 0, [(0, 0.1), (100, 0.5), (200, 0.8), (300, 0.86)], **base),
        "b1": curve("b1", 1, [(0, 0.1), (100, 0.45), (200, 0.82), (300, 0.85)], **base),
        "r0": curve("r0", 0, [(0, 0.1), (20, 0.4), (60, 0.7), (150, 0.85), (250, 0.9)],
                    **random),
        "r1": curve("r1", 1, [(0, 0.1), (25, 0.45), (70, 0.72), (160, 0.84), (260, 0.88)],
                    **random),
        "m0": [row | {"selection_flops": 1}  # the class means' cost, on the frontier's x
               for row in curve("m0", 0, [(0, 0.1), (5, 0.3), (90, 0.6), (210, 0.83)],
                                **means)],
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("sweep")
    write_log(folder / "results", hand_made_log())
    analyze([str(folder)], folder / "analysis")
    from analysis import load_results

    return folder / "analysis" / "report.html", load_results(str(folder))


def render(browser: str, page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran (virtual time: timers and promises settle)."""
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
         "--virtual-time-budget=30000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "</html>" in result.stdout, result.stderr[-2000:]
    return result.stdout


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs, self.children, self.text = tag, attrs, [], ""

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, predicate) -> list[Element]:
        return [e for e in self.walk() if predicate(e)]

    def by_id(self, name: str) -> Element:
        [found] = self.find(lambda e: e.attrs.get("id") == name)
        return found

    def all_text(self) -> str:
        return self.text + "".join(child.all_text() for child in self.children)


class DomParser(HTMLParser):
    """The dumped DOM as a tree (Chromium closes every SVG element; HTML void ones are not)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].text += data


def parse(dom: str) -> Element:
    parser = DomParser()
    parser.feed(dom)
    return parser.root


def expected_frontiers(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The frontiers the figure must draw, as analysis.plots draws them."""
    data = df[(df["dataset"] == "digits") & (df["train_flops"] > 0)]
    return {FRONTIERS[0]: pareto_front(data[~is_baseline(data)], x="compute_flops", by=None,
                                       points="all"),
            FRONTIERS[1]: pareto_front(data[is_baseline(data)], x="compute_flops", by=None,
                                       points="all")}


def test_import_analysis_does_not_load_plotly():
    code = "import analysis, sys; print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "False"


def test_report_html_is_self_contained(report):
    page, _ = report
    html = page.read_text()
    assert html.count("<script") >= 3 and 'src="http' not in html and "src='http" not in html
    assert "plotly.js v" in html  # the library itself, inline, once
    assert html.count("plotly.js v") == 1
    assert not [p for p in page.parent.iterdir() if p.name.startswith(".")]  # written atomically


def test_report_html_draws_every_figure_and_frontier_point_in_chromium(chromium, report,
                                                                       tmp_path):
    page, df = report
    dom = parse(render(chromium, page, tmp_path / "profile"))
    [body] = dom.find(lambda e: e.tag == "body")
    # one frontier figure and one savings figure, both drawn by plotly, no script error
    assert body.attrs["data-figures"] == "2"
    assert body.attrs["data-figures-drawn"] == "2"
    assert dom.by_id("script-errors").all_text() == ""
    assert len(dom.find(lambda e: e.tag == "svg" and "main-svg" in e.classes())) >= 4
    # every frontier point is a drawn marker of its trace
    for name, front in expected_frontiers(df).items():
        assert len(front) >= 3
        [trace] = dom.find(lambda e, n=name: "trace" + frontier_uid("digits", n) in e.classes())
        points = trace.find(lambda e: e.tag == "path" and "point" in e.classes())
        assert len(points) == len(front), name
    # the legend: one entry per strategy (toggling it), then the two frontiers
    legend = [e.all_text() for e in dom.by_id("figure-0").find(
        lambda e: e.tag == "g" and "traces" in e.classes())]
    assert legend == ["class_mean", "none (ordinary training)", "random", *FRONTIERS]
    # the headline and the answer line are on the page
    text = body.all_text()
    assert "Answer: digits: pretraining reaches ordinary training's best accuracy" in text
    assert "random pretraining on K=50 (5.0%, Q=2) for 3 epochs reaches" in text
    assert table_rows(dom) == markdown_rows(page.parent / "report.md")  # as in the file
    assert "Hypervolume in (log10 FLOPs, accuracy)" in text


def markdown_rows(report: Path) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split(" | ")]
            for line in report.read_text().splitlines() if line.startswith("| ")]


def table_rows(dom: Element) -> list[list[str]]:
    return [[cell.all_text() for cell in row.children]
            for table in dom.find(lambda e: e.tag == "table")
            for row in table.find(lambda e: e.tag == "tr")]


def test_report_html_has_the_tables_of_report_md_cell_for_cell(report):
    page, _ = report
    dom = parse(page.read_text())
    expected = markdown_rows(page.parent / "report.md")
    assert len(dom.find(lambda e: e.tag == "table")) == 2  # savings by criterion, frontier
    assert len(expected) >= 6 and table_rows(dom) == expected
    # after the figures, as the page's text has them
    text = dom.all_text()
    assert text.index("Savings by criterion") > text.index("plotly.js v")


def test_frontier_figure_x_is_in_gflops(report):
    from analysis.interactive import frontier_plot

    _, df = report
    figure = frontier_plot(df, "digits")
    [front] = [t for t in figure.data if t.uid == frontier_uid("digits", FRONTIERS[0])]
    expected = expected_frontiers(df)[FRONTIERS[0]]["compute_flops"] / 1e9
    assert list(front.x) == pytest.approx(expected.tolist())
    assert figure.layout.xaxis.title.text.startswith("GFLOPs")


# Appended to a copy of the page: once plotly has drawn, hover the cheapest point of the
# pretraining frontier and click the legend entry of `random`, then write what the page shows.
PROBE = """<pre id="probe"></pre><script>
function whenDrawn(then) {
  var b = document.body;
  if (b.getAttribute("data-figures-drawn") === b.getAttribute("data-figures")) then();
  else setTimeout(function () { whenDrawn(then); }, 50);
}
whenDrawn(function () {
  var gd = document.getElementById("figure-0"), out = {};
  var front = gd.data.findIndex(function (t) { return t.uid === "UID"; });
  Plotly.Fx.hover(gd, [{curveNumber: front, pointNumber: 0}]);
  out.hover = Array.from(gd.querySelectorAll(".hoverlayer text tspan.line"))
    .map(function (t) { return t.textContent; });
  var toggle = Array.from(gd.querySelectorAll(".legend .traces")).find(function (t) {
    return t.textContent === "random"; }).querySelector(".legendtoggle");
  var box = toggle.getBoundingClientRect();
  var at = {bubbles: true, cancelable: true, clientX: box.x + 5, clientY: box.y + 5,
            button: 0, buttons: 1, view: window};
  toggle.dispatchEvent(new MouseEvent("mousedown", at));
  toggle.dispatchEvent(new MouseEvent("mouseup", at));
  setTimeout(function () {  /* after plotly's double-click delay */
    out.visible = gd._fullData.map(function (t) { return [t.legendgroup, t.visible]; });
    document.getElementById("probe").textContent = JSON.stringify(out);
  }, 1500);
});
</script>"""


def test_hover_names_the_configuration_and_the_legend_toggles_a_strategy(chromium, report,
                                                                         tmp_path):
    page, df = report
    probed = tmp_path / "probed.html"
    probe = PROBE.replace("UID", frontier_uid("digits", FRONTIERS[0]))
    probed.write_text(page.read_text().replace("</body>", probe + "</body>"))
    dom = parse(render(chromium, probed, tmp_path / "profile"))
    assert dom.by_id("script-errors").all_text() == ""
    seen = json.loads(dom.by_id("probe").all_text())
    cheapest = expected_frontiers(df)[FRONTIERS[0]].iloc[0].to_dict()
    assert seen["hover"] == [
        describe_config(cheapest),
        f"seed {cheapest['seed']}, trial {cheapest['trial_id']}, evaluation "
        f"{cheapest['evaluation']}, fine-tuning epoch {cheapest['epoch']:.2f}",
        f"test accuracy {cheapest['test_accuracy']:.2%}",
        "6e-09 GFLOPs (5e-09 of training, 1e-09 selecting the small set)"]
    hidden = {group for group, visible in seen["visible"] if visible == "legendonly"}
    shown = {group for group, visible in seen["visible"] if visible is True}
    assert hidden == {"random"}  # its curves and its final points, nothing else
    assert sum(1 for group, _ in seen["visible"] if group == "random") == 2
    assert {"class_mean", "none"} <= shown


def test_report_html_of_two_datasets_has_a_section_each(chromium, tmp_path):
    logs = hand_made_log()
    other = {f"f{name}": [r | {"dataset": "fashion_mnist", "trial_id": f"f{name}"}
                          for r in rows] for name, rows in logs.items()}
    write_log(tmp_path / "results", logs | other)
    analyze([str(tmp_path)], tmp_path / "out")
    dom = parse(render(chromium, tmp_path / "out" / "report.html", tmp_path / "profile"))
    [body] = dom.find(lambda e: e.tag == "body")
    assert (body.attrs["data-figures"], body.attrs["data-figures-drawn"]) == ("4", "4")
    assert [e.all_text() for e in dom.find(lambda e: e.tag == "h2")] == [
        "digits", "fashion_mnist"]
    assert dom.by_id("script-errors").all_text() == ""


def test_hover_gives_ordinary_training_epochs_without_a_phase():
    from analysis.interactive import _hover

    rows = hand_made_log()
    ordinary, pretrained = rows["b0"][2], rows["r0"][2]
    last = {("s", "b0"): 3, ("s", "r0"): 4}
    assert _hover(ordinary, last).split("<br>")[1].endswith("evaluation 2, epoch 2.00")
    assert _hover(pretrained, last).split("<br>")[1].endswith(
        "evaluation 2, fine-tuning epoch 2.00")
