"""RFT readiness: the doctor that checks a job before training, and the guards that watch it during training.

- `diagnose(job, rows=8) -> report`: samples a few training rows with the base model and the job's grader and
  returns one verdict (ok / warn / stop) per check with the reason, plus the job's time and token estimate
  (`openrft doctor JOB`); the checks are the small functions of `openrft.doctor.checks`.
- `check_step(history, reference_label_freq=...) -> warnings`: the reward-hacking guards the trainer runs after
  every step on its metrics history (`openrft.training.guards`).
"""

from openrft.doctor.report import diagnose
from openrft.training.guards import check_step, evaluate

__all__ = ["check_step", "diagnose", "evaluate"]
