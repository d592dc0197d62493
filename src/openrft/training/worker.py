"""Entry point of one data-parallel training process: `python -m torch.distributed.run … -m openrft.training.worker RUN_DIR`."""

import sys

from openrft.training import run_job

if __name__ == "__main__":
    job = run_job(sys.argv[1])
    sys.exit(0 if job["status"] in ("succeeded", "paused", "queued") else 1)
