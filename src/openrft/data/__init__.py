"""Datasets in OpenAI's RFT JSONL format: load and check, split by group, balance, describe.

- `load_rows(path)` / `check_file(path)`: validated rows, or every (file, line, field, reason) problem;
- `split_rows(rows, group_key=..., stratify=...)`: grouped, label-stratified, seeded splits;
- `balance_rows(rows, label_key=..., seed=...)`: a balanced, shuffled epoch (the trainer's epoch order);
- `dataset_stats(rows)`: label frequencies, imbalance ratio, labels per row, prompt token lengths.

Tasks (prompt + response_format + grader + loader) that produce such rows live in `openrft.tasks`.
"""

from openrft.data.balance import balance_rows, balance_weights
from openrft.data.labels import imbalance_ratio, label_counts, row_labels
from openrft.data.splits import SplitError, split_rows
from openrft.data.stats import dataset_stats, plot_stats, stats_tables
from openrft.data.validate import (
                                   DatasetError,
                                   Problem,
                                   check_file,
                                   check_rows,
                                   load_rows,
                                   read_jsonl,
                                   validate_rows,
                                   write_rows,
)

__all__ = [
    "DatasetError", "Problem", "SplitError", "balance_rows", "balance_weights", "check_file", "check_rows",
    "dataset_stats", "imbalance_ratio", "label_counts", "load_rows", "plot_stats", "read_jsonl", "row_labels",
    "split_rows", "stats_tables", "validate_rows", "write_rows",
]
