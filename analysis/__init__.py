"""Parquet result logs -> pandas; Pareto frontiers, hypervolume, FLOPs savings, plots. No Ray."""

from analysis.load import final_rows, is_baseline, load_results
from analysis.pareto import hypervolume, pareto_front, pareto_mask
from analysis.savings import flops_to_reach, headlines, savings_table

__all__ = ["final_rows", "flops_to_reach", "headlines", "hypervolume", "is_baseline",
           "load_results", "pareto_front", "pareto_mask", "savings_table"]
