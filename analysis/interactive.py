"""report.html: the report in one self-contained page, its figures made interactive with plotly.

It says what report.md says (the same blocks, analysis.document), with these figures per
dataset in place of the PNGs: accuracy versus compute (every trial's curve, the final points
by strategy, the frontiers of pretraining and of ordinary training; hovering a point names its
configuration) and the compute saved per target accuracy. plotly.js is inlined once, so the
page opens offline. plotly is imported when a page is made, never by `import analysis`.

The page marks itself when every figure has been drawn (`data-figures-drawn` on <body> reaches
`data-figures`) and records any script error in `#script-errors`, so a browser can check it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.document import Block, to_html
from analysis.load import COMPUTE, final_rows, is_baseline, with_compute, write_atomic
from analysis.pareto import pareto_front
from analysis.savings import savings_band
from common.describe import describe_config
from common.records import FAILED

# The static figures' colours (matplotlib's tab10), so both reports read alike.
COLORS = {"none": "#000000", "random": "#1f77b4", "stratified": "#2ca02c",
          "class_mean": "#d62728", "kmeans": "#9467bd"}
OTHER = "#7f7f7f"
PRETRAINING_FRONTIER = "#ff7f0e"
GIGA = 1e9  # the x axis is in GFLOPs, as the report's text gives compute

# Run before plotly: any script error or rejected promise is written into the page.
_ERROR_TRAP = """<script>
window.reportErrors = [];
function reportError(text) {
  window.reportErrors.push(text);
  var box = document.getElementById("script-errors");
  if (box) { box.textContent = window.reportErrors.join("\\n"); box.hidden = false; }
}
window.addEventListener("error", function (e) {
  reportError("error: " + e.message + " (" + e.filename + ":" + e.lineno + ")");
});
window.addEventListener("unhandledrejection", function (e) {
  reportError("unhandled rejection: " + e.reason);
});
</script>"""

# Run by plotly after each figure is drawn (plotly's `post_script`; {plot_id} is the div's id).
_DRAWN = """var div = document.getElementById("{plot_id}");
div.setAttribute("data-drawn", "true");
var done = document.querySelectorAll("[data-drawn]").length;
document.body.setAttribute("data-figures-drawn", String(done));"""

_STYLE = """body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1em auto;
       padding: 0 1em; color: #222; }
.headline { font-size: 1.1em; font-weight: 600; }
.note { color: #555; }
#script-errors { color: #b00; white-space: pre-wrap; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tbody tr:nth-child(even) { background: #fafafa; }"""


def write_interactive_report(df: pd.DataFrame, savings: pd.DataFrame, path: str | Path,
                             top: list[Block],
                             sections: dict[str, tuple[list[Block], list[Block]]]) -> Path:
    """Write report.html for the log `df` (its savings table given) to `path`: the report's
    `top` blocks, then per dataset in `sections` its words (headline, caveat), its figures and
    its tables, as report.md has them (analysis.report)."""
    per_dataset = {}
    for dataset in sections:
        per_dataset[dataset] = [frontier_plot(df, dataset)]
        if (savings["dataset"] == dataset).any():
            per_dataset[dataset].append(savings_plot(savings, dataset))
    figures = [figure for plots in per_dataset.values() for figure in plots]
    divs = iter(_figure_divs(figures))
    body = ["<h1>Sweep report</h1>", *to_html(top), '<pre id="script-errors" hidden></pre>']
    for dataset, (words, tables) in sections.items():
        body.append(f'<h2 id="{html.escape(dataset)}">{html.escape(dataset)}</h2>')
        body += to_html(words)
        body += [next(divs) for _ in per_dataset[dataset]]
        body += to_html(tables)
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>Sweep report</title>\n"
            f"<style>\n{_STYLE}\n</style>\n{_ERROR_TRAP}\n</head>\n"
            f'<body data-figures="{len(figures)}" data-figures-drawn="0">\n'
            + "\n".join(body) + "\n</body>\n</html>\n")
    path = Path(path)
    write_atomic(path, page.encode())
    return path


def _figure_divs(figures: list[Any]) -> list[str]:
    """Each figure as a <div> with its script; plotly.js inlined once, before the first."""
    return [figure.to_html(full_html=False, include_plotlyjs=(i == 0), post_script=_DRAWN,
                           div_id=f"figure-{i}", config={"displaylogo": False})
            for i, figure in enumerate(figures)]


def frontier_plot(df: pd.DataFrame, dataset: str) -> Any:
    """Accuracy vs compute (training + selection FLOPs, log x): trials' curves faint, final
    points by strategy (one legend entry each, toggling the strategy's curves too), and both
    frontiers as step lines."""
    import plotly.graph_objects as go

    df = with_compute(df)
    data = df[(df["dataset"] == dataset) & (df["train_flops"] > 0)]  # as analysis.plots
    fig = go.Figure()
    finals = final_rows(data)
    last = {(r["sweep"], r["trial_id"]): r["evaluation"] for r in finals.to_dict("records")}
    for strategy in sorted(data["strategy"].unique()):
        color = COLORS.get(strategy, OTHER)
        xs, ys = _curves(data[data["strategy"] == strategy])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", legendgroup=strategy,
                                 showlegend=False, hoverinfo="skip", opacity=0.3,
                                 line={"color": color, "width": 1}, name=f"{strategy} curves"))
        ends = finals[finals["strategy"] == strategy]
        name = "none (ordinary training)" if strategy == "none" else strategy
        fig.add_trace(_points(go, ends, last, name=name, legendgroup=strategy, mode="markers",
                              marker={"color": color, "size": 8}))
    for name, part, line in (
            ("frontier: pretraining", data[~is_baseline(data)],
             {"color": PRETRAINING_FRONTIER, "width": 2.5, "shape": "hv"}),
            ("frontier: ordinary training", data[is_baseline(data)],
             {"color": "#000000", "width": 1.8, "dash": "dash", "shape": "hv"})):
        front = pareto_front(part, x=COMPUTE, by=None, points="all")
        if not front.empty:
            fig.add_trace(_points(go, front, last, name=name, mode="lines+markers", line=line,
                                  marker={"color": line["color"], "size": 5},
                                  uid=frontier_uid(dataset, name)))
    fig.update_xaxes(type="log", dtick="D2", exponentformat="e",
                     title="GFLOPs: training + small-set selection (log scale)")
    fig.update_yaxes(title="test accuracy", tickformat=".0%")
    return _layout(fig, f"{dataset}: accuracy vs training compute ({len(finals)} trials; "
                        "click a legend entry to hide or show it)")


def frontier_uid(dataset: str, name: str) -> str:
    """The plotly trace id of a frontier (`name`: 'frontier: pretraining' or 'frontier: ordinary
    training'); the drawn SVG's trace group carries it in its class."""
    return f"{dataset}-{name.split(': ')[1].replace(' ', '-')}-frontier"


def _curves(rows: pd.DataFrame) -> tuple[list, list]:
    """Every trial's (FLOPs, accuracy) curve in one line trace, trials separated by gaps."""
    xs: list = []
    ys: list = []
    for _, trial in rows.sort_values("evaluation").groupby(["sweep", "trial_id"], sort=True):
        xs += [*(trial[COMPUTE] / GIGA).tolist(), None]
        ys += [*trial["test_accuracy"].tolist(), None]
    return xs, ys


def _points(go: Any, rows: pd.DataFrame, last: dict[tuple, int], **style: Any) -> Any:
    """A scatter trace of log rows whose hover names each row's configuration (`last`: each
    trial's last evaluation, so only a trial's latest row can say it is still running)."""
    return go.Scatter(x=(rows[COMPUTE] / GIGA).tolist(), y=rows["test_accuracy"].tolist(),
                      hovertext=[_hover(r, last) for r in rows.to_dict("records")],
                      hovertemplate="%{hovertext}<extra></extra>", **style)


def _hover(row: dict[str, Any], last: dict[tuple, int]) -> str:
    latest = last.get((row["sweep"], row["trial_id"])) == row["evaluation"]
    unfinished = latest and row["status"] in ("running", FAILED)
    how = describe_config(row) + (f" ({row['status']})" if unfinished else "")
    where = f"evaluation {row['evaluation']}"
    if _known(row.get("epoch")) and row.get("phase") in ("pretrain", "finetune"):
        phase = ("pretraining " if row["phase"] == "pretrain" else
                 "" if row.get("strategy") == "none" else "fine-tuning ")  # nothing to fine-tune
        where += f", {phase}epoch {row['epoch']:.2f}"
    seed = f"seed {int(row['seed'])}, " if _known(row.get("seed")) else ""
    return "<br>".join(html.escape(line) for line in (
        how, f"{seed}trial {row['trial_id']}, {where}",
        f"test accuracy {row['test_accuracy']:.2%}",
        _gflops_words(row)))


def _gflops_words(row: dict[str, Any]) -> str:
    """'5.18 GFLOPs of training', or with a selection's cost: '5.23 GFLOPs (5.18 of training,
    0.0445 selecting the small set)'."""
    selection = row.get("selection_flops")
    if not _known(selection) or not selection:
        return f"{row['train_flops'] / GIGA:.4g} GFLOPs of training"
    return (f"{row[COMPUTE] / GIGA:.4g} GFLOPs ({row['train_flops'] / GIGA:.4g} of training, "
            f"{selection / GIGA:.3g} selecting the small set)")


def _known(value: Any) -> bool:
    return value is not None and bool(pd.notna(value))


def savings_plot(savings: pd.DataFrame, dataset: str) -> Any:
    """Compute saved (ordinary training's FLOPs / pretraining's) per target accuracy (log y)."""
    import plotly.graph_objects as go

    data = savings[savings["dataset"] == dataset]
    reached = data[np.isfinite(data["pretrain_flops"]) & np.isfinite(data["savings"])
                   & (data["savings"] > 0)]
    fig = go.Figure()
    band, (bottom, top) = savings_band(reached)
    x = band["target_accuracy"].tolist()
    fig.add_trace(go.Scatter(  # the interval the evaluations allow, as a band
        x=x + x[::-1], y=band["savings_high"].tolist() + band["savings_low"].tolist()[::-1],
        fill="toself", fillcolor="rgba(255,127,14,0.18)", line={"width": 0}, hoverinfo="skip",
        name="interval: evaluations either side of each crossing"))
    fig.add_trace(go.Scatter(
        x=reached["target_accuracy"].tolist(), y=reached["savings"].tolist(),
        mode="lines+markers", name="pretraining's saving", line={"color": PRETRAINING_FRONTIER},
        hovertext=[_savings_hover(r) for r in reached.to_dict("records")],
        hovertemplate="%{hovertext}<extra></extra>"))
    for level, name, dash in ((1.0, "no saving", "dash"), (10.0, "the paper's claim: 10x", "dot")):
        fig.add_trace(go.Scatter(x=[data["target_accuracy"].min(), data["target_accuracy"].max()],
                                 y=[level, level], mode="lines", name=name, hoverinfo="skip",
                                 line={"color": "#000000" if level == 1 else OTHER,
                                       "width": 1, "dash": dash}))
    metric = data["metric"].iloc[0] if len(data) else "test_accuracy"
    fig.update_xaxes(title="target validation accuracy" if metric == "val_accuracy"
                     else "target test accuracy", tickformat=".0%")
    fig.update_yaxes(type="log", title="FLOPs of ordinary training / FLOPs with pretraining",
                     range=[np.log10(bottom), np.log10(top)])  # an open interval runs off it
    missed = data[~np.isfinite(data["pretrain_flops"])]
    note = (f"; not reached by pretraining above {missed['target_accuracy'].min():.1%}"
            if not missed.empty else "")
    return _layout(fig, f"{dataset}: compute saved by pretraining, by target{note}")


def _savings_hover(row: dict[str, Any]) -> str:
    return "<br>".join(html.escape(line) for line in (
        f"target {row['target_accuracy']:.2%}: saving {row['savings']:.2f}x "
        f"(interval {row['savings_low']:.2f}-{row['savings_high']:.2f}x from every run's "
        "evaluations either side" + ("" if row["resolved"] else ", not resolved") + ")",
        f"ordinary training {row['baseline_flops'] / GIGA:.4g} GFLOPs ({row['baseline_trial']})",
        f"pretraining {row['pretrain_flops'] / GIGA:.4g} GFLOPs ({row['pretrain_trial']})"))


def _layout(fig: Any, title: str) -> Any:
    fig.update_layout(title={"text": html.escape(title), "font": {"size": 15}},
                      template="plotly_white", height=520, hovermode="closest",
                      margin={"l": 70, "r": 20, "t": 60, "b": 60})
    return fig
