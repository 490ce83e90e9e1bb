"""Optuna define-by-run search spaces and the named presets that use them."""

from search_spaces.presets import load_preset, preset_names
from search_spaces.space import (
    SEARCH_ONLY,
    baseline_points,
    beyond_data,
    define_space,
    replay_space,
    trial_settings,
)
from search_spaces.spec import SweepSpec, load_spec_file, parse_spec

__all__ = ["SEARCH_ONLY", "SweepSpec", "baseline_points", "beyond_data", "define_space",
           "load_preset", "load_spec_file", "parse_spec", "preset_names", "replay_space",
           "trial_settings"]
