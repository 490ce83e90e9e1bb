"""Check a Ray cluster launcher config (`ray up FILE`) as the launcher would, before any cloud call.

Ray's JSON schema (`ray/autoscaler/ray-schema.json`), then Ray's own `prepare_config` and
`validate_config` (provider defaults merged in, head type among the node types, worker counts),
then this project's rules: the dashboard stays on localhost, and the result storage is named
once (SWEEP_STORAGE).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from common.errors import UserError


def check_cluster_config(path: str | Path) -> dict[str, Any]:
    """The config, checked; any problem is one `UserError` line naming the file."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (not UTF-8)") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    try:
        _check(config)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return config


def _check(config: dict[str, Any]) -> None:
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "top level"
        raise UserError(f"{where}: {e.message.splitlines()[0]}") from None
    import click

    if config["provider"].get("type") == "kuberay":  # Ray would blame a version mismatch
        raise UserError("provider: a KubeRay cluster is made by the KubeRay operator, not by "
                        "`ray up`")
    quiet = logging.getLogger("ray.autoscaler")  # it logs its defaults at INFO on stderr
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    said = io.StringIO()  # and prints its own verdict ("PANIC ...") before raising it
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            prepared = prepare_config(copy.deepcopy(config))
            validate_config(prepared)
    # Ray's verdicts on a config: an unknown provider type (NotImplementedError), a provider's
    # missing settings (click's exception), a provider this Ray cannot set up (RuntimeError)
    except (ValueError, KeyError, jsonschema.ValidationError, NotImplementedError,
            RuntimeError, click.ClickException) as e:
        words = (e.format_message() if isinstance(e, click.ClickException) else str(e))
        raise UserError((words.strip() or said.getvalue().strip() or type(e).__name__)
                        .splitlines()[0]) from None
    finally:
        quiet.setLevel(level)
    for name, node in prepared.get("available_node_types", {}).items():
        low, high = node.get("min_workers", 0), node.get("max_workers")
        if high is not None and low > high:
            raise UserError(f"available_node_types/{name}: min_workers ({low}) is above "
                            f"max_workers ({high})")
    head_commands = " ".join(config.get("head_start_ray_commands", []))
    if "--head" in head_commands and "--dashboard-host=127.0.0.1" not in head_commands:
        raise UserError("head_start_ray_commands: start the head with --dashboard-host=127.0.0.1 "
                        "(the dashboard must not listen on public addresses)")
    named = sum(command.count("SWEEP_STORAGE=") for command in config.get("setup_commands", []))
    if named != 1:
        raise UserError(f"setup_commands: name the result storage once (export SWEEP_STORAGE=...), "
                        f"found {named}")


def placeholders(config: dict[str, Any]) -> list[str]:
    """What the config still holds of the template's placeholders (YOUR-BUCKET): valid for Ray,
    but the cluster's sweeps would fail at their first write."""
    return sorted({word for command in config.get("setup_commands", [])
                   for word in command.replace("'", " ").replace('"', " ").split()
                   if "YOUR-" in word})
