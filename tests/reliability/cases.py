"""Counts of the generated cases the property tests ran, per parser (printed and saved at the end of a session).

Each property test calls `count(name)` once per generated case; `tests/reliability/conftest.py` prints
the totals and, when `OPENRFT_CASES_FILE` names a file, writes them there as JSON (the figures of
`docs/reliability.md`).
"""

from __future__ import annotations

import signal
from collections import Counter
from contextlib import contextmanager

CASES: Counter[str] = Counter()


def count(name: str) -> None:
    CASES[name] += 1


class Hang(BaseException):
    """A case that ran past its time limit (BaseException so that no `except Exception` swallows it)."""


@contextmanager
def no_hang(seconds: int = 20):
    """Fail a case that runs longer than `seconds` (SIGALRM: main thread only; a hang is a failure, not a wait)."""

    def alarm(signum, frame):
        raise Hang(f"the case ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
