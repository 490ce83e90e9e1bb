"""The launcher: the `sweep` command, the Ray Tune Tuner it builds, and the Parquet result log."""
