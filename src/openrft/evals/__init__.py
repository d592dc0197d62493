"""Evals: apples-to-apples evaluation with the training grader, variance studies and comparisons."""

from openrft.evals.compare import compare, comparison_table
from openrft.evals.rollout import Rollout, generate_and_grade, grader_item
from openrft.evals.run import EvalResult, load_eval, run_eval, write_eval

__all__ = ["EvalResult", "Rollout", "compare", "comparison_table", "generate_and_grade", "grader_item", "load_eval",
           "run_eval", "write_eval"]
