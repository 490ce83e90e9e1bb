"""Optuna define-by-run search spaces and the named presets that use them."""
