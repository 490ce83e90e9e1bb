"""A trial's configuration in the paper's words, from a record or a trial's settings.

One function serves the progress lines, `sweep trial`'s header and the analysis report, so a
configuration reads the same everywhere:

    ordinary training for 12 epochs
    random pretraining on K=757 (52.7%, Q=2) for 10 epochs      (a record: K is known)
    random pretraining on Q=2 for 10 epochs                     (settings: K not yet derived)
    class_mean pretraining on one average image per class for 28 epochs
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def describe_config(values: Mapping[str, Any]) -> str:
    """The configuration; for a record of a trial stopped early, what it actually trained."""
    if values.get("status") == "stopped" and _known(values.get("epoch")):
        phase = "fine-tuning" if values.get("phase") == "finetune" else "pretraining"
        planned = dict(values, status=None)
        return (f"{describe_config(planned)}, stopped early after {values['epoch']:.2f} epochs "
                f"of {phase}")
    strategy = values.get("strategy", "none")
    if strategy == "none":
        epochs = values.get("finetune_epochs")
        return "ordinary training" + (f" for {int(epochs)} epochs" if _known(epochs) else "")
    fraction, q, k = (values.get(key) for key in
                      ("subset_fraction", "overdetermination_ratio", "subset_size"))
    if strategy == "class_mean":
        size = "one average image per class"
    elif _known(k):
        share = f"{fraction:.1%}, " if _known(fraction) else ""
        size = f"K={int(k)} ({share}Q={q:.3g})"
    elif _known(fraction):
        size = f"{fraction:.1%} of the training set"
    else:
        size = f"Q={q:.3g}"
    epochs = values.get("pretrain_epochs")
    return f"{strategy} pretraining on {size}" + (
        f" for {int(epochs)} epochs" if _known(epochs) else "")
