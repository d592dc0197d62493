"""The service tests' shared fixture: a real `openrft serve` process over a home folder with the embedded model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedded_model):
    """One `openrft serve` per test module (tests.service.test_server.Server), stopped after it."""
    from tests.service.test_server import Server

    home = tmp_path_factory.mktemp("serve") / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / embedded_model.name).symlink_to(embedded_model)
    server = Server(home)
    yield server
    server.stop()
