"""Named presets: YAML files shipped in `search_spaces/presets/`."""

from __future__ import annotations

from importlib import resources

from common.errors import ConfigError
from search_spaces.spec import SweepSpec, load_yaml, parse_spec


def preset_names() -> list[str]:
    folder = resources.files("search_spaces") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def load_preset(name: str) -> SweepSpec:
    if name not in preset_names():
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(preset_names())}")
    text = (resources.files("search_spaces") / "presets" / f"{name}.yaml").read_text()
    return parse_spec(load_yaml(text), f"preset {name}")
