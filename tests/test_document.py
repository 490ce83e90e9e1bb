"""The report's blocks (analysis.document) as Markdown and as HTML, and the FLOPs axis of the
static figures read in GFLOPs."""

from __future__ import annotations

import matplotlib

from analysis.document import Para, Table, markdown, to_html

matplotlib.use("Agg")

BLOCKS = [Para("Answer: <b> & more", strong=True), Para("a note"),
          Table("Rows:", ("name", "value"), (("a|b", "1"), ("<x>", "2 & 3")))]


def test_markdown_bolds_headlines_and_escapes_a_pipe_in_a_cell():
    assert markdown(BLOCKS) == [
        "**Answer: <b> & more**", "", "a note", "", "Rows:", "", "| name | value |",
        "|---|---|", "| a\\|b | 1 |", "| <x> | 2 & 3 |", ""]


def test_html_escapes_every_text_and_keeps_the_table_whole():
    assert to_html(BLOCKS) == [
        '<p class="headline">Answer: &lt;b&gt; &amp; more</p>', '<p class="note">a note</p>',
        '<p class="note">Rows:</p>',
        "<table>\n<thead><tr><th>name</th><th>value</th></tr></thead>\n<tbody>\n"
        "<tr><td>a|b</td><td>1</td></tr>\n<tr><td>&lt;x&gt;</td><td>2 &amp; 3</td></tr>\n"
        "</tbody>\n</table>"]


def test_frontier_axis_ticks_read_in_gflops():
    import matplotlib.pyplot as plt

    from analysis.plots import GFlopsFormatter

    fig, ax = plt.subplots()
    ax.plot([4e7, 2e10], [0.1, 0.9])
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(GFlopsFormatter())
    fig.canvas.draw()
    low, high = ax.get_xlim()
    labels = [t.get_text() for t in ax.get_xticklabels()
              if low <= t.get_position()[0] <= high and t.get_text()]
    plt.close(fig)
    assert labels == ["0.1", "1", "10"]


def test_a_running_trials_latest_point_is_not_labelled_final(tmp_path, monkeypatch):
    # a sweep analysed while it runs (or after an interruption): its running trials' latest
    # points are drawn hollow under their own legend entry
    import pandas as pd
    from test_analysis import PRE, record

    from analysis import plots

    going = [record("going", i, 30 * i, 0.2 * i, strategy="random", subset_size=50,
                    subset_fraction=0.5, overdetermination_ratio=2.0, pretrain_epochs=3)
             for i in range(3)]  # its last row: running
    done = [dict(r) for r in PRE]
    done[-1]["status"] = "finished"
    legends = []
    real = plots._finish

    def finish(fig, ax, *args, **kwargs):
        legends.append(ax.get_legend_handles_labels()[1])
        return real(fig, ax, *args, **kwargs)

    monkeypatch.setattr(plots, "_finish", finish)
    failed = [dict(r, trial_id="failed") for r in going]
    failed[-1]["status"] = "failed"
    plots.frontier_figure(pd.DataFrame(done + going + failed), "digits", tmp_path / "f.png")
    assert "random (final)" in legends[0] and "random (latest, running)" in legends[0]
    assert "random (latest, failed)" in legends[0]
    assert (tmp_path / "f.png").stat().st_size > 0
