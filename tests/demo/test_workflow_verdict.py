"""The workflow demo's verdict on made-up stage figures: the target (final model beyond the base model's CI for
every seed, and above the most-frequent baseline on macro-F1), the best stage, losing and failed stages."""

from __future__ import annotations

import pytest

BASELINES = {"most_frequent": {"reward": 0.54, "micro": {"precision": 0.5, "recall": 0.6, "f1": 0.54},
                               "macro": {"precision": 0.1, "recall": 0.2, "f1": 0.15}},
             "random": {"reward": 0.16, "micro": {"precision": 0.15, "recall": 0.17, "f1": 0.16},
                        "macro": {"precision": 0.16, "recall": 0.16, "f1": 0.13}}}


def score(stage, seed, reward, *, gain=None, ci=None, macro=0.1, micro=0.2, cpu=100.0, failed=False, macro_ci=None):
    from openrft.workflow_verdict import StageScore

    prf = lambda f1: {"precision": f1, "recall": f1, "f1": f1}  # noqa: E731
    if failed:
        return StageScore(stage=stage, seed=seed, prompt="short", model="", status="failed", error="boom")
    versus = macro - BASELINES["most_frequent"]["macro"]["f1"]
    macro_ci = macro_ci or [versus - 0.03, versus + 0.03]
    return StageScore(stage=stage, seed=seed, prompt="short", model="m", status="succeeded", reward=reward,
                      micro=prf(micro), macro=prf(macro), gain=gain, gain_ci95=ci,
                      macro_f1_vs_most_frequent=versus, macro_f1_vs_most_frequent_ci95=macro_ci,
                      gain_ci_above_zero=None if ci is None else ci[0] > 0,
                      gain_ci_below_zero=None if ci is None else ci[1] < 0, train_cpu_s=cpu, train_wall_s=cpu / 2)


def figures(final_ci_2=(0.02, 0.1), final_macro=0.2):
    base = [score("base", None, 0.15, gain=0.0, ci=[0.0, 0.0], macro=0.1, micro=0.15),
            score("base+prompt", None, 0.19, gain=0.04, ci=[0.01, 0.08], macro=0.12)]
    seeds = []
    for seed, ci_final in ((1, (0.05, 0.15)), (2, final_ci_2), (3, (0.04, 0.12))):
        seeds += [score("sft", seed, 0.12, gain=-0.03, ci=[-0.06, -0.01], cpu=80),
                  score("rft", seed, 0.25, gain=0.10, ci=[0.04, 0.16], macro=0.14, micro=0.25, cpu=300),
                  score("sft+rft", seed, 0.28, gain=0.13, ci=list(ci_final), macro=final_macro, micro=0.3, cpu=320)]
    return base + seeds


def test_the_target_is_met_when_the_final_model_clears_both_cis_every_seed():
    from openrft.workflow_verdict import by_stage, verdict

    stages = by_stage(figures())
    assert stages["rft"]["n"] == 3 and stages["rft"]["reward"] == {"mean": pytest.approx(0.25),
                                                                    "std": pytest.approx(0.0), "n": 3}
    assert stages["base"]["reward"]["std"] is None  # one eval: no spread
    v = verdict(stages, BASELINES, sft_train_cpu_s=80.0)
    assert v["target_met"] and v["target"]["beats_base_beyond_ci"] and v["target"]["beats_most_frequent_macro_f1"]
    assert v["target"]["replicated"]
    assert v["target"]["macro_f1_minus_most_frequent"] == pytest.approx(0.05)
    assert v["target"]["micro_f1_minus_most_frequent"] == pytest.approx(0.3 - 0.54)
    assert v["best_stage"] == "sft+rft" and v["best_trained_stage"] == "sft+rft"
    assert v["real_gain"] == ["base+prompt", "rft", "sft+rft"] and v["loses_to_base"] == ["sft"]
    text = "\n".join(v["text"])
    assert "target" in text and ": met" in text and "micro-F1 -0.240" in text
    assert "SFT 0.120 in 80 s CPU" in text and "also needs its SFT stage's 80 s CPU" in text
    assert "not the cheapest (SFT)" in text and "worse than the base model beyond the CI" in text


def test_one_seed_within_either_ci_fails_the_target():
    from openrft.workflow_verdict import by_stage, verdict

    crossing = verdict(by_stage(figures(final_ci_2=(-0.01, 0.1))), BASELINES)
    assert not crossing["target_met"] and crossing["target"]["beats_base_beyond_ci"] is False
    assert "sft+rft" not in crossing["real_gain"] and "CI above 0 for 2/3 seeds" in "\n".join(crossing["text"])
    below = verdict(by_stage(figures(final_macro=0.14)), BASELINES)
    assert below["target"]["beats_base_beyond_ci"] and below["target"]["beats_most_frequent_macro_f1"] is False
    assert not below["target_met"] and "NOT met" in "\n".join(below["text"])
    # a mean macro-F1 above the baseline's is not enough: the CI of one seed reaches below it
    close = verdict(by_stage(figures(final_macro=0.16)), BASELINES)
    assert close["target"]["macro_f1_minus_most_frequent"] == pytest.approx(0.01)
    assert close["target"]["beats_most_frequent_macro_f1"] is False and not close["target_met"]
    assert "macro-F1 CI above the baseline for 0/3" in "\n".join(close["text"])


def test_a_target_met_on_fewer_than_three_seeds_is_not_replicated_and_not_met():
    from openrft.workflow_verdict import by_stage, verdict

    two_seeds = [s for s in figures() if s.seed != 3]
    v = verdict(by_stage(two_seeds), BASELINES)
    assert v["target"]["beats_base_beyond_ci"] and v["target"]["beats_most_frequent_macro_f1"]
    assert not v["target"]["replicated"] and not v["target_met"]
    assert "NOT met (it holds on the 2 seeds run; a target needs 3: --seeds 3)" in "\n".join(v["text"])
    one_seed = verdict(by_stage([s for s in figures() if s.seed in (None, 1)]), BASELINES)
    assert not one_seed["target_met"] and "holds on the 1 seed run" in "\n".join(one_seed["text"])


def test_a_failed_stage_is_listed_and_a_missing_final_stage_fails_the_target():
    from openrft.workflow_verdict import by_stage, verdict

    rows = [s for s in figures() if s.stage != "sft+rft"] + [score("sft+rft", 1, 0, failed=True)]
    v = verdict(by_stage(rows), BASELINES)
    assert v["failed"] == {"sft+rft": [1]} and not v["target_met"]
    assert v["best_stage"] == "rft" and "has no held-out eval" in "\n".join(v["text"])
    assert verdict(by_stage([]), BASELINES)["best_stage"] is None


def test_the_every_label_baseline_is_put_beside_the_macro_f1_target():
    from openrft.workflow_verdict import by_stage, verdict

    every = {"reward": 0.29, "micro": {"precision": 0.17, "recall": 1.0, "f1": 0.29},
             "macro": {"precision": 0.17, "recall": 1.0, "f1": 0.27}}
    v = verdict(by_stage(figures(final_macro=0.2)), {**BASELINES, "every_label": every})
    assert v["target_met"] and v["target"]["beats_every_label_macro_f1"] is False  # met, and still below it
    assert "naming every label scores macro-F1 0.270" in "\n".join(v["text"])
    assert "+0.120 vs the most-frequent baseline" in "\n".join(v["text"]) and "is -0.070 from it" in "\n".join(v["text"])
    assert "beats_every_label_macro_f1" not in verdict(by_stage(figures()), BASELINES)["target"]


def test_a_stage_macro_f1_is_compared_with_the_most_frequent_labels_on_its_own_samples():
    from types import SimpleNamespace

    from openrft.evals.metrics import classification_metrics
    from openrft.workflow_verdict import macro_f1_vs_most_frequent

    labels = ["a", "b", "c", "d"]
    acts = [("x1", {"a", "b"}), ("x2", {"a"}), ("x3", {"c"}), ("x4", {"a", "d"}), ("x5", {"b", "c"})]
    answers = [{"a", "b"}, {"a"}, {"c"}, {"a"}, {"c"}]  # a model that reads the act

    def item(act, truth, answer):
        return SimpleNamespace(datasource_item={"act": act, "labels": sorted(truth)},
                               sample=SimpleNamespace(output_json={"labels": sorted(answer)}, input=[]))

    items = [item(act, truth, answer) for (act, truth), answer in zip(acts, answers) for _ in range(2)]
    result = SimpleNamespace(summary={"classification": {"per_label": dict.fromkeys(labels)}}, output_items=items)
    base = SimpleNamespace(summary={"baselines": {"most_frequent": {"example": ["a", "b"]}}})
    versus = macro_f1_vs_most_frequent(result, base, "act", "labels")
    truths = [t for _, t in acts for _ in range(2)]
    expected = (classification_metrics(list(zip([a for a in answers for _ in range(2)], truths)), labels)["macro"]["f1"]
                - classification_metrics([({"a", "b"}, t) for t in truths], labels)["macro"]["f1"])
    assert versus["diff"] == pytest.approx(expected) and versus["diff"] > 0 and versus["n_groups"] == 5
    assert macro_f1_vs_most_frequent(result, SimpleNamespace(summary={}), "act", "labels") is None  # no baseline
