"""Entry point of one data-parallel training process:
`python -m torch.distributed.run … -m openrft.training.worker RUN_DIR`.

Only the main process (rank 0) owns the job's status; the others exit 0 when their part finished.
"""

import os
import sys

from openrft.dashboard import report_finished_job
from openrft.training import run_job

if __name__ == "__main__":
    job = run_job(sys.argv[1])
    if int(os.environ.get("RANK", "0")) != 0:
        sys.exit(0)
    report_finished_job(sys.argv[1], job["status"])
    sys.exit(0 if job["status"] in ("succeeded", "paused", "queued") else 1)
