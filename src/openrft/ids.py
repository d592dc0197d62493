"""Every id and fine-tuned model name openrft makes, one function per kind, in OpenAI's spellings.

Random ids are OpenAI's prefix and 24 random letters and digits (`secrets`, so that the ids of the service
cannot be guessed; 32 for the ids that OpenAI makes longer: requests and Responses objects):

    ftjob-…  ftevent-…  ftckpt_…  file-…  eval_…  evalrun_…  outputitem_…  chatcmpl-…  resp_…  msg_…  rs_…  req_…

Derived ids are a function of a job's id, so that they come out the same whenever they are asked for:

    eval_<job>                        the eval of an RFT job (its validation runs)   job_eval_id / job_of_eval_id
    file-results-<job>                the job's results file in the Files API        results_file_id
    <criterion>-<job>                 the job eval's testing criterion               job_criterion_id
    ft:<base>:openrft:<suffix>:<8>    the fine-tuned model (8 characters of <job>)   fine_tuned_model_name
    <fine-tuned model>:ckpt-step-N    a checkpoint of it                             checkpoint_model_name

where <job> is the job id without `ftjob-`. `is_safe` tells whether an id can name a file or a folder.
"""

from __future__ import annotations

import re
import secrets
import string

ALPHABET = string.ascii_letters + string.digits
LENGTH = 24
ORG = "openrft"  # the organisation part of fine-tuned model names (OpenAI's is the user's organisation)
JOB_PREFIX = "ftjob-"
EVAL_PREFIX = "eval_"
_SAFE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def random_id(prefix: str, length: int = LENGTH) -> str:
    """`prefix` + `length` random letters and digits, e.g. random_id("file-") -> "file-3kT9…"."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


def is_safe(object_id: str) -> bool:
    """Whether an id can name a file or folder: letters, digits, '-' and '_' only (no '/', no '..')."""
    return bool(_SAFE.match(object_id)) and object_id not in {".", ".."}


# --- fine-tuning ---

def job_id() -> str:
    return random_id(JOB_PREFIX)


def event_id() -> str:
    return random_id("ftevent-")


def checkpoint_id() -> str:
    """`ftckpt_…`: OpenAI's checkpoint ids take an underscore, unlike its job and event ids."""
    return random_id("ftckpt_")


def fine_tuned_model_name(base: str, suffix: str | None, job: str) -> str:
    """`ft:<base>:openrft:<suffix>:<8 characters of the job id>`. A job that starts from a fine-tuned model names
    the base model of the chain (as OpenAI does: `ft:gpt-4o-mini:org:suffix:id` for a model tuned from a tuned one)."""
    if base.startswith("ft:") and len(base.split(":")) > 2:
        base = base.split(":")[1]
    return f"ft:{base}:{ORG}:{suffix or ''}:{job.removeprefix(JOB_PREFIX)[:8]}"


def checkpoint_model_name(fine_tuned_model: str, step: int) -> str:
    """The name of the checkpoint at `step`: OpenAI's `<fine-tuned model>:ckpt-step-<step>`."""
    return f"{fine_tuned_model}:ckpt-step-{step}"


# --- files ---

def file_id() -> str:
    return random_id("file-")


def results_file_id(job: str) -> str:
    """The id of a job's results file (its metrics as CSV), the same every time it is asked for."""
    return f"file-results-{job.removeprefix(JOB_PREFIX)}"


# --- evals ---

def eval_id() -> str:
    return random_id(EVAL_PREFIX)


def eval_run_id() -> str:
    return random_id("evalrun_")


def output_item_id() -> str:
    return random_id("outputitem_")


def criterion_id(name: str) -> str:
    """The id of a testing criterion of an eval made through the API: its name and a random part."""
    return random_id(f"{name}-")


def job_eval_id(job: str) -> str:
    """The id of an RFT job's eval, whose runs are the job's validations: `eval_<job id without ftjob->`."""
    return EVAL_PREFIX + job.removeprefix(JOB_PREFIX)


def job_of_eval_id(eval_id: str) -> str | None:
    """The job id whose `job_eval_id` this is (whether that job exists is the caller's to check); None when it
    cannot be one."""
    if not eval_id.startswith(EVAL_PREFIX):
        return None
    return JOB_PREFIX + eval_id.removeprefix(EVAL_PREFIX)


def job_criterion_id(name: str, job: str) -> str:
    """The id of the one testing criterion (the job's grader) of a job's eval."""
    return f"{name}-{job.removeprefix(JOB_PREFIX)}"


# --- the service's answers ---

def chat_completion_id() -> str:
    return random_id("chatcmpl-")


def response_id() -> str:
    return random_id("resp_", 32)


def message_id() -> str:
    return random_id("msg_", 32)


def reasoning_id() -> str:
    return random_id("rs_", 32)


def request_id() -> str:
    return random_id("req_", 32)
