"""openrft: reinforcement fine-tuning of open-weight language models on your own hardware."""

import os

# OpenMP threads that wait for work sleep instead of spinning. torch's CPU build uses libgomp, whose threads
# spin at the end of every parallel region; when other processes compete for the cores (a laptop doing other
# work, a test suite, two jobs) the spinning threads take the CPU the working ones need. benchmarks/omp_wait.py
# (2 cores): one decoding step of the embedded model is 1.5-1.7x faster with PASSIVE beside one busy process, and
# was 7-27x faster beside several; on an idle machine PASSIVE costs 7-10%. It must be set before torch
# loads libgomp, i.e. before torch is imported; OMP_WAIT_POLICY=ACTIVE in the environment keeps spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
