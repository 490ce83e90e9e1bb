"""A trial's configuration in the paper's words, from a record or a trial's settings.

One function serves the progress lines, `sweep trial`'s header and the analysis report, so a
configuration reads the same everywhere:

    ordinary training for 12 epochs
    random pretraining on K=757 (52.7%, Q=2) for 10 epochs      (a record: K is known)
    random pretraining on Q=2 for 10 epochs                     (settings: K not yet derived)
    class_mean pretraining on one average image per class for 28 epochs
    random pretraining on K=757 (52.7%, Q=2) for 79.50 of 100 epochs (converged)
                                          (a record whose pretraining stopped at convergence)

and a record of a trial stopped there (or an earlier evaluation, as a frontier point):

    ordinary training stopped after 8.96 of 12 epochs
    random pretraining on K=757 (52.7%, Q=2) for 10 epochs, fine-tuning stopped after 2.70 of 20
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
        return _stopped(values)
    strategy = values.get("strategy", "none")
    if strategy == "none":
        epochs = values.get("finetune_epochs")
        return "ordinary training" + (f" for {_epochs(epochs)}" if _known(epochs) else "")
    fraction, q, k = (values.get(key) for key in
                      ("subset_fraction", "overdetermination_ratio", "subset_size"))
    if strategy == "class_mean":
        size = "one average image per class"
    elif _known(k):
        share = f"{fraction:.1%}, " if _known(fraction) else ""
        size = f"K={int(k)} ({share}Q={q:.3g})"
    elif _known(fraction):
        size = f"{fraction:.1%} of the training set"
    elif _known(q):
        size = f"Q={q:.3g}"
    else:
        size = "a small set"
    epochs, ran = values.get("pretrain_epochs"), values.get("pretrain_epochs_run")
    if _known(epochs) and _known(ran) and ran < epochs:  # stopped at convergence
        return f"{strategy} pretraining on {size} for {ran:.2f} of {int(epochs)} epochs (converged)"
    return f"{strategy} pretraining on {size}" + (
        f" for {_epochs(epochs)}" if _known(epochs) else "")


def _epochs(count: Any) -> str:
    return "1 epoch" if int(count) == 1 else f"{int(count)} epochs"


def _stopped(values: Mapping[str, Any]) -> str:
    """What a trial stopped at this record trained: how far into which phase, of how many
    epochs planned ('ordinary training stopped after 8.96 of 12 epochs')."""
    epoch, strategy = values["epoch"], values.get("strategy", "none")

    def of(planned: Any) -> str:
        return f"{epoch:.2f} of {int(planned)}" if _known(planned) else f"{epoch:.2f}"

    if strategy == "none":
        return f"ordinary training stopped after {of(values.get('finetune_epochs'))} epochs"
    if values.get("phase") == "finetune":
        pretrained = describe_config(dict(values, status=None))
        return (f"{pretrained}, fine-tuning stopped after "
                f"{of(values.get('finetune_epochs'))} epochs")
    small_set = describe_config(dict(values, status=None, pretrain_epochs=None))
    return (f"{small_set}, stopped after {of(values.get('pretrain_epochs'))} epochs, "
            "before fine-tuning")
