"""Real records for the data tests: the EuroVoc acts and UNFAIR-ToS rows of the shared data folder."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def eurovoc_records(shared_data):
    """All EuroVoc act records (train + validation files), one per act and language, without prompts."""
    from openrft.tasks.eurovoc import read_acts

    return read_acts(shared_data / "eurovoc" / "train.jsonl") + read_acts(shared_data / "eurovoc" / "validation.jsonl")


@pytest.fixture(scope="session")
def eurovoc_train(shared_data):
    from openrft.tasks.eurovoc import read_acts

    return read_acts(shared_data / "eurovoc" / "train.jsonl")


@pytest.fixture(scope="session")
def unfair_train(shared_data):
    from openrft.tasks import get_task

    return get_task("unfair-tos").rows("train")
