"""Parquet result logs -> pandas; Pareto frontiers, hypervolume, FLOPs savings, plots. No Ray."""
