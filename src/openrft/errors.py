"""openrft's exceptions: one base class, `OpenRFTError`, and two kinds below it.

Every exception class openrft defines derives from it, but one (the last paragraph); tests/test_errors.py checks:

    OpenRFTError
    ├── InputError      something the user gave cannot be used: a data file, a job file, a grader, a template,
    │                   a formula, a task option, a run directory. The message names the file, the line, the
    │                   field and the reason, so that the user fixes the input and runs again.
    │                   DatasetError, JobSpecError, GraderValidationError, TemplateError, FormulaError,
    │                   SplitError, PreferenceError, TaskError, EncodingError, RunFileError, PlaygroundError
    ├── RuntimeFailure  something openrft needs failed or is missing: a model, an engine, the grading
    │                   sandbox, a job that failed while it ran.
    │                   ModelError, EngineError, SandboxUnavailable, JobFailed
    ├── ExportError     an export that cannot be done (a bad option, or a full disk)
    └── APIError        an error answered to an HTTP client as OpenAI's error object (a 4xx or a 5xx)

Each class lives in the module that raises it and stays importable from there. A class that was also a
`ValueError` or a `RuntimeError` stays one, so that no existing `except ValueError` changes what it catches.

Inside a run, errors are values: a grader that cannot grade a sample returns a Grade with one of OpenAI's
error flags set (`openrft.graders.grade.ERROR_FLAGS`) instead of raising. An OpenRFTError is for what stops a
command; the command line catches it in one place (`openrft.cli`), prints one `error: <message>` line and
exits with status 2.

Exit statuses of the command line, one meaning each:
    0  done;
    1  done, and the answer is no: a job or demo that failed, a doctor that says stop;
    2  nothing done: bad input or a bad option (an OpenRFTError, a command's own refusal, click's usage errors).

One exception of openrft is not an OpenRFTError, on purpose: `graders.sandbox_worker.GradeTimeout` derives
from BaseException, so that a grader's own `except Exception` cannot swallow its time limit.
"""

from __future__ import annotations

EXIT_FAILED = 1  # the command ran and its result is negative
EXIT_BAD_INPUT = 2  # nothing was done: the input or an option cannot be used


class OpenRFTError(Exception):
    """The base of every exception openrft raises; the message says what is wrong and where."""


class InputError(OpenRFTError):
    """Something the user gave (a file, a field, an option) cannot be used; the message names file, line, field."""


class RuntimeFailure(OpenRFTError):
    """Something openrft needs (a model, an engine, the grading sandbox) failed or is missing, or a job failed."""
