"""Shared test fixtures: one data directory per checkout, the embedded model, the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Keep the converted embedded model between test runs (the conversion takes ~30 s); tests that write
# runs, files or a store use their own tmp_path through the `home` fixture.
os.environ.setdefault("OPENRFT_HOME", str(REPO / ".openrft-test"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("OPENRFT_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow test: run with OPENRFT_SLOW=1 or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The embedded default model, converted once into the shared cache."""
    from openrft.models import resolve_model

    return resolve_model("default").path


@pytest.fixture()
def home(tmp_path, monkeypatch, embedded_model) -> Path:
    """A private OPENRFT_HOME for one test, sharing the converted model cache."""
    path = tmp_path / "home"
    (path / "models").mkdir(parents=True)
    (path / "models" / embedded_model.name).symlink_to(embedded_model)
    monkeypatch.setenv("OPENRFT_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real labelled data folder; tests that need it skip when it is absent."""
    from openrft.paths import shared_data_dir

    path = shared_data_dir()
    if path is None:
        pytest.skip("real data folder not found: set OPENRFT_DATA_DIR or put shared/data beside the checkout")
    return path
