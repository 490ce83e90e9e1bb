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
