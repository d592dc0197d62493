"""`openrft grade`: the run-grader and validate-grader endpoints on the command line.

    openrft grade REQUEST.json          # {"grader", "model_sample", "item"} -> the run-grader response
    openrft grade - < REQUEST.json      # the same from stdin
    openrft grade --validate GRADER.json   # a grader (or {"grader": ...}) -> {"grader": ...}, exit 1 if invalid
    openrft grade --ready multilabel_f1    # print a ready-made grader's JSON

The answer is JSON on stdout; a bad request prints OpenAI's error object and exits with status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from openrft.errors import EXIT_BAD_INPUT


def _read_json(source: str) -> object:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise typer.BadParameter(f"{source}: cannot read: {exc.strerror}") from None
    where = "stdin" if source == "-" else source
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{where}: line {exc.lineno}: not JSON: {exc.msg}") from None
    except ValueError as exc:  # JSON that Python will not read, e.g. an integer of more than 4,300 digits
        raise typer.BadParameter(f"{where}: cannot read this JSON: {exc}") from None


def _fail(exc) -> None:
    error = {"error": {"message": str(exc), "type": "invalid_request_error", "param": exc.field or None,
                       "code": "invalid_grader"}}
    typer.echo(json.dumps(error, indent=2))
    raise typer.Exit(EXIT_BAD_INPUT)


def grade_command(
    request: str = typer.Argument(None, metavar="REQUEST.json", help="run-grader request file, or - for stdin"),
    validate: str = typer.Option(None, "--validate", metavar="GRADER.json",
                                 help="validate a grader (file or -) instead of running one"),
    ready: str = typer.Option(None, "--ready", metavar="NAME", help="print a ready-made grader's JSON"),
) -> None:
    """Run a grader on one model sample (OpenAI's run-grader request/response), or validate a grader."""
    from openrft.graders import GraderValidationError, ready_grader, ready_names, run_grader, validate_grader

    if ready:
        try:
            typer.echo(json.dumps(ready_grader(ready), indent=2))
        except KeyError:
            raise typer.BadParameter(f"no ready-made grader {ready!r}; one of {', '.join(ready_names())}") from None
        return
    if validate:
        body = _read_json(validate)
        if isinstance(body, dict) and "grader" in body and "type" not in body:
            body = body["grader"]
        try:
            typer.echo(json.dumps(validate_grader({"grader": body}), indent=2))
        except GraderValidationError as exc:
            _fail(exc)
        return
    if request is None:
        raise typer.BadParameter("give a request file (or - for stdin), --validate GRADER.json or --ready NAME")
    try:
        response = run_grader(_read_json(request))
    except GraderValidationError as exc:
        _fail(exc)
    typer.echo(json.dumps(response, indent=2))
