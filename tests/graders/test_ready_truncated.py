"""The ready F1 grader must not pay for broken structured answers (found by `openrft doctor`: answers cut at
max_tokens scored more than parsed ones because labels were read out of the broken JSON)."""

import pytest

from openrft.graders import build_grader, ready_grader


def sample(text, parsed=None):
    return {"output_text": text, "output_json": parsed, "output_tools": [], "choices": []}


@pytest.mark.parametrize("name", ["multilabel_f1"])
def test_truncated_json_scores_zero_and_plain_text_lists_still_count(name):
    grader = build_grader(ready_grader(name))
    item = {"labels": ["TRADE", "ENERGY"]}
    cut = grader.grade(sample('{"labels": ["TRADE", "ENERGY", "AGRI'), item)
    assert cut.reward == 0.0
    parsed = grader.grade(sample('{"labels": ["TRADE"]}', {"labels": ["TRADE"]}), item)
    assert parsed.reward == pytest.approx(2 / 3)
    plain = grader.grade(sample("TRADE, ENERGY"), item)
    assert plain.reward == pytest.approx(1.0)
