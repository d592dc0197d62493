"""One base class for openrft's exceptions, and one place where the command line turns them into an error line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest
from typer.testing import CliRunner

import openrft
from openrft.cli import app
from openrft.errors import InputError, OpenRFTError, RuntimeFailure

# Modules that cannot be imported as a library: `python -m openrft` runs the command line, Alembic's migration
# environment runs migrations.
NOT_IMPORTABLE = ("openrft.__main__", "openrft.service.migrations")
# Exceptions that must not be an OpenRFTError (documented in openrft/errors.py).
NOT_OPENRFT_ERRORS = {"openrft.graders.sandbox_worker.GradeTimeout"}  # BaseException: user code cannot catch it


def openrft_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of openrft, by its qualified name."""
    found = {}
    for module_info in pkgutil.walk_packages(openrft.__path__, "openrft."):
        if module_info.name.startswith(NOT_IMPORTABLE):
            continue
        module = importlib.import_module(module_info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_exception_of_openrft_is_an_openrft_error():
    found = openrft_exceptions()
    assert len(found) >= 20  # the walk did find them (21 classes when this test was written)
    assert NOT_OPENRFT_ERRORS <= set(found)
    outside = sorted(name for name, cls in found.items()
                     if not issubclass(cls, OpenRFTError) and name not in NOT_OPENRFT_ERRORS)
    assert outside == []


def test_errors_are_grouped_by_what_the_user_can_do_and_keep_their_old_bases():
    from openrft.dashboard.rundata import RunDirError
    from openrft.data import DatasetError, SplitError
    from openrft.engines import EngineError
    from openrft.graders import GraderValidationError
    from openrft.graders.formula import FormulaError
    from openrft.graders.sandbox import SandboxUnavailable
    from openrft.graders.templating import TemplateError
    from openrft.models import ModelError
    from openrft.spec import JobSpecError
    from openrft.tasks import TaskError
    from openrft.training.loop import JobFailed

    for cls in (DatasetError, JobSpecError, GraderValidationError, TemplateError, FormulaError, SplitError,
                TaskError, RunDirError):
        assert issubclass(cls, InputError) and not issubclass(cls, RuntimeFailure), cls
    for cls in (ModelError, EngineError, SandboxUnavailable, JobFailed):
        assert issubclass(cls, RuntimeFailure) and not issubclass(cls, InputError), cls
    # callers that catch ValueError / RuntimeError catch what they caught before
    for cls in (DatasetError, GraderValidationError, FormulaError, SplitError, TaskError, RunDirError):
        assert issubclass(cls, ValueError), cls
    assert issubclass(SandboxUnavailable, RuntimeError)


def test_the_cli_prints_one_error_line_and_exits_2_for_an_openrft_error(tmp_path):
    missing = tmp_path / "missing.yaml"
    result = CliRunner().invoke(app, ["train", str(missing)])  # load_job_body raises JobSpecError
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [f"error: {missing}: cannot read job file: No such file or directory"]


def test_the_one_handler_covers_nested_commands_and_runtime_failures(monkeypatch):
    from openrft import models
    from openrft.data import commands as data_commands
    from openrft.data import validate

    def refuse(*args, **kwargs):
        raise models.ModelError("/nowhere/model: no config.json [here]")

    monkeypatch.setattr(models, "resolve_model", refuse)
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 2
    assert result.output == "error: /nowhere/model: no config.json [here]\n"  # printed as it is: no markup

    def bad_rows(*args, **kwargs):
        raise validate.DatasetError([validate.Problem("f.jsonl", 3, "labels", "missing")])

    monkeypatch.setattr(data_commands, "_load", bad_rows)  # `openrft data …` is a group inside the root group
    nested = CliRunner().invoke(app, ["data", "stats", "f.jsonl", "--no-tokens"])
    assert nested.exit_code == 2 and nested.output.startswith("error: 1 problem(s) in the dataset:")


def test_other_exceptions_are_not_turned_into_an_error_line(monkeypatch):
    from openrft import models

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(models, "resolve_model", crash)
    result = CliRunner().invoke(app, ["models"])
    assert isinstance(result.exception, RuntimeError)  # a bug keeps its traceback
    assert "error: a bug" not in result.output


@pytest.mark.parametrize("cls", [InputError, RuntimeFailure])
def test_the_two_kinds_are_openrft_errors(cls):
    assert issubclass(cls, OpenRFTError) and str(cls("what and where")) == "what and where"


def test_resuming_a_folder_that_is_not_a_run_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and result.exception is not None and not isinstance(result.exception, OSError)
    unboxed = " ".join(re.sub(r"[\u2500-\u257f]", " ", result.output).split())  # without rich's box and wrapping
    assert "Invalid value for --resume:" in unboxed and "not a job run directory (no job.json)" in unboxed
