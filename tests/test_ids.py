"""Ids and fine-tuned model names: OpenAI's prefixes, unique, safe as file names; derived ids round-trip."""

from __future__ import annotations

import re

import pytest

from openrft import ids

RANDOM = [  # (function, OpenAI's prefix, random characters after it)
    (ids.job_id, "ftjob-", 24), (ids.event_id, "ftevent-", 24), (ids.checkpoint_id, "ftckpt_", 24),
    (ids.file_id, "file-", 24), (ids.eval_id, "eval_", 24), (ids.eval_run_id, "evalrun_", 24),
    (ids.output_item_id, "outputitem_", 24), (ids.chat_completion_id, "chatcmpl-", 24),
    (ids.response_id, "resp_", 32), (ids.message_id, "msg_", 32), (ids.reasoning_id, "rs_", 32),
    (ids.request_id, "req_", 32),
]


@pytest.mark.parametrize(("mint", "prefix", "length"), RANDOM, ids=[prefix for _, prefix, _ in RANDOM])
def test_random_ids_have_their_prefix_and_are_unique(mint, prefix, length):
    minted = [mint() for _ in range(2000)]
    pattern = re.compile(re.escape(prefix) + f"[A-Za-z0-9]{{{length}}}")
    assert all(pattern.fullmatch(one) for one in minted), minted[:3]
    assert len(set(minted)) == len(minted)
    assert all(ids.is_safe(one) for one in minted)  # they name run directories and stored files


def test_the_ids_of_a_job_are_derived_from_its_id():
    job = ids.job_id()
    tail = job.removeprefix("ftjob-")
    assert ids.job_eval_id(job) == f"eval_{tail}"
    assert ids.job_of_eval_id(ids.job_eval_id(job)) == job
    assert ids.job_of_eval_id("evalrun_abc") is None and ids.job_of_eval_id("file-abc") is None
    assert ids.results_file_id(job) == f"file-results-{tail}" == ids.results_file_id(job)
    assert ids.job_criterion_id("f1", job) == f"f1-{tail}"
    assert ids.criterion_id("f1").startswith("f1-") and ids.criterion_id("f1") != ids.criterion_id("f1")


def test_fine_tuned_model_names_follow_openai():
    name = ids.fine_tuned_model_name("default", "eurovoc", "ftjob-AbCdEfGh12345")
    assert name == "ft:default:openrft:eurovoc:AbCdEfGh"
    assert ids.fine_tuned_model_name("default", None, "ftjob-AbCdEfGh12345") == "ft:default:openrft::AbCdEfGh"
    # a job started from a fine-tuned model names the base of the chain
    assert ids.fine_tuned_model_name(name, "again", "ftjob-zzzzzzzz999") == "ft:default:openrft:again:zzzzzzzz"
    assert ids.checkpoint_model_name(name, 12) == f"{name}:ckpt-step-12"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", "a b", "x" * 65, "é"])
def test_is_safe_refuses_what_cannot_name_a_file(bad):
    assert not ids.is_safe(bad)
