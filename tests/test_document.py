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


def drawn_points(monkeypatch, draw) -> dict[str, tuple[list, bool]]:
    """What `draw()` scatters, by legend label: the points (sorted) and whether they are
    hollow."""
    from analysis import plots

    seen = {}
    real = plots._finish

    def finish(fig, ax, *args, **kwargs):
        for points in ax.collections:
            if points.get_offsets().size:
                seen[points.get_label()] = (sorted(points.get_offsets().tolist()),
                                            not points.get_facecolors()[:, 3].any())
        return real(fig, ax, *args, **kwargs)

    monkeypatch.setattr(plots, "_finish", finish)
    draw()
    return seen


def test_q_figure_shows_accuracy_where_pretraining_ended(tmp_path, monkeypatch):
    # Accuracy after pretraining at Q: only where pretraining ran its course. A trial stopped,
    # or still running, before its pretraining ended is drawn hollow, named so.
    import pandas as pd
    from test_analysis import record

    from analysis import plots

    def pretraining(trial, q, accuracies, strategy="random", finetune_epochs=5):
        return [record(trial, i, 10 * i, a, strategy=strategy, overdetermination_ratio=q,
                       pretrain_epochs=3, finetune_epochs=finetune_epochs)
                | {"phase": "pretrain"} for i, a in enumerate(accuracies)]

    def finetuned(rows, accuracy):
        return rows + [rows[-1] | {"evaluation": len(rows), "test_accuracy": accuracy,
                                   "phase": "finetune", "status": "finished",
                                   "pretrain_end": None}]

    done = pretraining("done", 1.0, [0.1, 0.4, 0.5])  # ended at 0.5, then fine-tuned to 0.9
    done[-1]["pretrain_end"] = "max_epochs"
    done = finetuned(done, 0.9)
    stopped = pretraining("stopped", 4.0, [0.1, 0.3, 0.35])  # stopped early at 0.35
    stopped[-1]["status"] = "stopped"
    going = pretraining("going", 0.4, [0.1, 0.2], strategy="class_mean")  # still running
    # a log from before pretrain_end: a trial that went on to fine-tune had ended pretraining
    old = finetuned(pretraining("old", 2.0, [0.1, 0.45]), 0.85)
    # no fine-tuning to do: pretraining was its whole run
    alone = pretraining("alone", 8.0, [0.1, 0.6], finetune_epochs=0)
    alone[-1]["status"] = "finished"
    df = pd.DataFrame(done + stopped + going + old + alone)
    seen = drawn_points(monkeypatch, lambda: plots.q_figure(df, "digits", tmp_path / "q.png"))
    assert seen == {
        "random": ([[1.0, 0.5], [2.0, 0.45], [8.0, 0.6]], False),
        "random (latest, stopped mid-pretraining)": ([[4.0, 0.35]], True),
        "class_mean (latest, running mid-pretraining)": ([[0.4, 0.2]], True)}
    assert (tmp_path / "q.png").stat().st_size > 0


def test_a_diverged_trial_is_drawn_final_at_its_last_value(tmp_path, monkeypatch):
    # A trial that diverged logs no training-set loss at its last row (status diverged); on
    # that loss's figure it ends at its last value, as ended, not as '(latest, running)'.
    import pandas as pd
    from test_analysis import record

    from analysis import plots

    losses = [2.3, 1.0, 0.5, float("nan")]
    diverged = [record("d", i, 10 * i, 0.1, strategy="random", train_sample_loss=loss)
                for i, loss in enumerate(losses)]
    diverged[-1]["status"] = "diverged"
    going = [record("g", i, 10 * i, 0.1, strategy="random", train_sample_loss=loss)
             for i, loss in enumerate(losses[:2])]  # still running
    df = pd.DataFrame(diverged + going)
    seen = drawn_points(monkeypatch, lambda: plots.frontier_figure(
        df, "digits", tmp_path / "f.png", "train_sample_loss"))
    assert seen == {"random (final)": ([[20.0, 0.5]], False),
                    "random (latest, running)": ([[10.0, 1.0]], True)}
