"""openrft: reinforcement fine-tuning of open-weight language models on your own hardware."""

import os

# OpenMP threads that wait for work sleep instead of spinning. torch's CPU build uses libgomp, whose threads
# spin at every parallel region's end; when other processes compete for the cores (a laptop doing other work,
# a test suite, two jobs) the spinning threads steal the CPU the working ones need, and a forward pass of the
# embedded model measured 8-27x slower (benchmarks/omp_wait.py). It must be set before torch loads libgomp,
# i.e. before torch is imported; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
