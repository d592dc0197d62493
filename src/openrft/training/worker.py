"""Entry point of one data-parallel training process:
`python -m torch.distributed.run … -m openrft.training.worker RUN_DIR`.

Only the main process (rank 0) owns the job's status; the others exit 0 when their part finished. The static report
is written by `openrft train --processes N` once the workers end (or by `openrft report RUN_DIR`).
"""

import os
import sys

from openrft.training import run_job

if __name__ == "__main__":
    job = run_job(sys.argv[1])
    if int(os.environ.get("RANK", "0")) != 0:
        sys.exit(0)
    sys.exit(0 if job["status"] in ("succeeded", "paused", "queued") else 1)
