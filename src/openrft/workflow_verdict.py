"""The workflow demo's figures and verdict (`openrft.workflow` runs the stages).

Per stage and seed (`StageScore`): held-out reward, micro and macro P/R/F1, the paired gain over stage 1 (the base
model with the default prompt) with its 95% bootstrap CI clustered by group (`openrft.demo.judge`, the RFT demo's
rule), its macro-F1 minus the most-frequent baseline's on the same samples with the same kind of CI
(`evals.metrics.macro_f1_difference`), how much better its answers fit their own act than the other acts
(`evals.metrics.own_vs_other_items`, with its CI), and the wall and CPU time of its training and of its held-out
eval. Per stage over seeds: mean ± std (ddof 1; None for one seed).

The verdict (`verdict`), in the RFT demo's terms:

- a stage's gain is real when its CI lies above 0 for every seed, and it loses to the base model when the CI
  lies below 0 for any seed (reported, never dropped);
- the best stage is the one with the highest mean held-out reward (chosen on the held-out rows, so a description
  of this run, not a model selection);
- the target is met when the final model (`sft+rft`, the workflow's end product) beats the base model's reward
  and the most-frequent-labels baseline's macro-F1, each beyond its CI for every seed, on `REPLICATION_SEEDS` (3)
  seeds or more (on fewer it is "not replicated", which is not met); how far its micro-F1 is from that baseline
  is stated either way, and so is the macro-F1 of naming every label (high without skill);
- whether a stage's answers read the item: own − other items and the number of seeds whose CI lies above 0 (with
  none, nothing shows that its answers depend on the item: a reward gain can come from the label frequencies);
- the text classifier (`evals.text_classifier`: TF-IDF + logistic regression on the whole training file, the
  baseline a user would try before fine-tuning) is paired against the final model per seed, like the base model;
- SFT, RFT and SFT→RFT are compared by reward beside their training wall and CPU time (SFT→RFT costs the SFT
  stage plus its own RFT job), so the reader can judge them at equal CPU time; with the `rft-long` stage
  (`--equal-cpu`) `equal_cpu` pairs SFT→RFT against RFT alone at about the same CPU time, seed by seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from openrft.workflow import JOB_VALIDATION, STAGE_TITLES, STAGES, TRAINED

FINAL = "sft+rft"
REPLICATION_SEEDS = 3  # the target is met only when it holds for this many training seeds or more


@dataclass
class StageScore:
    """One stage of one seed on the held-out rows."""

    stage: str
    seed: int | None
    prompt: str
    model: str
    status: str
    error: str | None = None
    note: str = ""
    reward: float | None = None
    micro: dict | None = None  # precision, recall, f1
    macro: dict | None = None
    gain: float | None = None  # reward − the base stage's, paired over the same rows
    gain_ci95: list[float] | None = None
    gain_ci_above_zero: bool | None = None
    gain_ci_below_zero: bool | None = None
    beats_most_frequent_baseline: bool | None = None  # the gain's CI lower end above the baseline's difference
    # macro-F1 − the most-frequent baseline's, on the same samples, with its 95% CI clustered by group
    macro_f1_vs_most_frequent: float | None = None
    macro_f1_vs_most_frequent_ci95: list[float] | None = None
    # sample F1 of the answers on their own item minus on other groups' items, with its CI (evals.metrics.
    # own_vs_other_items): 0 for answers that ignore the item, however well they score
    own_vs_other_items: float | None = None
    own_vs_other_items_ci95: list[float] | None = None
    # reward − the text classifier's (the base stage's eval graded it), paired over the same rows, with its CI
    reward_vs_text_classifier: float | None = None
    reward_vs_text_classifier_ci95: list[float] | None = None
    truncated_share: float | None = None
    parse_error_share: float | None = None
    train_wall_s: float = 0.0
    train_cpu_s: float = 0.0
    eval_wall_s: float = 0.0
    eval_cpu_s: float = 0.0
    run_dir: str | None = None
    eval_dir: str | None = None


def _prf(classification: dict | None, avg: str) -> dict | None:
    if not classification or avg not in classification:
        return None
    return {k: classification[avg][k] for k in ("precision", "recall", "f1")}


def stage_score(run, base_result, group_key: str | None, label_key: str, records: str,
                console: Console) -> StageScore:
    """A `StageRun` as figures; the paired gain over `base_result` (None: this is the base stage)."""
    from openrft.demo import judge

    score = StageScore(stage=run.stage, seed=run.seed, prompt=run.prompt, model=run.model, status=run.status,
                       error=run.error, note=run.note, train_wall_s=run.train.wall, train_cpu_s=run.train.cpu,
                       eval_wall_s=run.evaluation.wall, eval_cpu_s=run.evaluation.cpu,
                       run_dir=str(run.run_dir) if run.run_dir else None,
                       eval_dir=str(run.eval_dir) if run.eval_dir else None)
    if run.result is None:
        return score
    summary = run.result.summary
    c = summary.get("classification")
    score.reward, score.micro, score.macro = summary["reward"]["mean"], _prf(c, "micro"), _prf(c, "macro")
    score.truncated_share = (summary.get("tokens") or {}).get("truncated_share")
    score.parse_error_share = (summary.get("errors") or {}).get("sample_parse_error_rate")
    other = (c or {}).get("other_items")
    if other:
        score.own_vs_other_items, score.own_vs_other_items_ci95 = other["diff"], list(other["ci95"])
    if base_result is not None and run.result is not base_result:
        what = f"{STAGE_TITLES[run.stage]}" + (f", seed {run.seed}" if run.seed is not None else "")
        j = judge(base_result, run.result, group_key, f"{what}: held out ({records})", console)
        score.gain, score.gain_ci95 = j["gain"], list(j["gain_ci95"])
        score.gain_ci_above_zero, score.gain_ci_below_zero = j["gain_ci_above_zero"], j["gain_ci95"][1] < 0
        score.beats_most_frequent_baseline = j["beats_most_frequent_baseline"]
    elif base_result is not None:  # the base stage itself, or stage 2 when it reuses stage 1's eval
        score.gain, score.gain_ci95 = 0.0, [0.0, 0.0]
        score.gain_ci_above_zero, score.gain_ci_below_zero = False, False
    versus = macro_f1_vs_most_frequent(run.result, base_result or run.result, group_key, label_key)
    if versus:
        score.macro_f1_vs_most_frequent, score.macro_f1_vs_most_frequent_ci95 = versus["diff"], versus["ci95"]
    text = versus_text_classifier(run.result, base_result or run.result, group_key)
    if text:
        score.reward_vs_text_classifier, score.reward_vs_text_classifier_ci95 = text["diff"], list(text["ci95"])
    return score


def versus_text_classifier(result, base_result, group_key: str | None) -> dict | None:
    """`result`'s reward minus the text classifier's (graded in `base_result`'s eval on the same rows, its per-item
    rewards in `item_means`), paired over the rows with the CI clustered by group (`demo.paired_gain`); None
    when the base eval has no text classifier."""
    from dataclasses import replace

    from openrft.demo import paired_gain

    text = (base_result.summary.get("baselines") or {}).get("text_classifier") or {}
    if not text.get("item_means"):
        return None
    items = [{**item, "mean": m} for item, m in zip(base_result.summary["items"], text["item_means"])]
    classifier = replace(base_result, summary={**base_result.summary, "items": items})  # the base eval, its scores
    return paired_gain(classifier, result, group_key, "a stage vs the text classifier")


def macro_f1_vs_most_frequent(result, base_result, group_key: str | None, label_key: str) -> dict | None:
    """`result`'s macro-F1 minus the most-frequent baseline's (its labels as the base run graded them) on the same
    samples, with the CI clustered by group (`metrics.macro_f1_difference`); None without label figures."""
    from openrft.data.labels import labels_of
    from openrft.data.splits import group_of
    from openrft.evals.metrics import macro_f1_difference, predicted_labels

    baseline = (base_result.summary.get("baselines") or {}).get("most_frequent") or {}
    labels = list(((result.summary.get("classification") or {}).get("per_label") or {}))
    if not baseline.get("example") or not labels or not result.output_items:
        return None
    top = set(baseline["example"])
    truth = [set(labels_of(item.datasource_item, label_key)) for item in result.output_items]
    answers = [predicted_labels(item.sample.output_json) for item in result.output_items]
    groups = [group_of({**item.datasource_item, "messages": item.sample.input}, group_key)
              for item in result.output_items]
    return macro_f1_difference(list(zip(answers, truth)), [(top, t) for t in truth], groups, labels)


def baselines_of(base_summary: dict) -> dict:
    """The baselines that the base stage's eval graded on the held-out rows (the model-free ones and the text
    classifier)."""
    out = {}
    for name, b in (base_summary.get("baselines") or {}).items():
        c = b.get("classification")
        out[name] = {"reward": b["reward"]["mean"], "micro": _prf(c, "micro"), "macro": _prf(c, "macro")}
    return out


def _spread(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values)}


def by_stage(scores: list[StageScore]) -> dict:
    """Per stage over its seeds: mean ± std of reward, gain, micro/macro F1 and times; CI counts."""
    out = {}
    for stage in STAGES:
        done = [s for s in scores if s.stage == stage and s.reward is not None]
        tried = [s for s in scores if s.stage == stage]
        out[stage] = {
            "n": len(done), "tried": len(tried), "failed": [s.seed for s in tried if s.reward is None],
            "reward": _spread([s.reward for s in done if s.reward is not None]),
            "gain": _spread([s.gain for s in done if s.gain is not None]),
            "micro_f1": _spread([s.micro["f1"] for s in done if s.micro]),
            "macro_f1": _spread([s.macro["f1"] for s in done if s.macro]),
            "ci_above_zero": sum(bool(s.gain_ci_above_zero) for s in done),
            "ci_below_zero": sum(bool(s.gain_ci_below_zero) for s in done),
            "macro_f1_vs_most_frequent": _spread([s.macro_f1_vs_most_frequent for s in done
                                                  if s.macro_f1_vs_most_frequent is not None]),
            "macro_ci_above_most_frequent": sum(bool(s.macro_f1_vs_most_frequent_ci95
                                                     and s.macro_f1_vs_most_frequent_ci95[0] > 0) for s in done),
            "own_vs_other_items": _spread([s.own_vs_other_items for s in done if s.own_vs_other_items is not None]),
            "own_ci_above_other": sum(bool(s.own_vs_other_items_ci95 and s.own_vs_other_items_ci95[0] > 0)
                                      for s in done),
            "reward_vs_text_classifier": _spread([s.reward_vs_text_classifier for s in done
                                                  if s.reward_vs_text_classifier is not None]),
            "text_classifier_ci": [(s.seed, s.reward_vs_text_classifier, s.reward_vs_text_classifier_ci95)
                                   for s in done if s.reward_vs_text_classifier_ci95],
            "train_wall_s": _spread([s.train_wall_s for s in done]),
            "train_cpu_s": _spread([s.train_cpu_s for s in done]),
            "eval_wall_s": _spread([s.eval_wall_s for s in done]),
        }
    return out


def equal_cpu(runs: list, group_key: str | None) -> list[dict]:
    """Per seed that has both: SFT→RFT's held-out reward minus the `rft-long` stage's (RFT alone, trained about as
    long), paired over the same rows with the CI clustered by group, beside the training CPU each cost (SFT→RFT's
    with its SFT stage's)."""
    from openrft.demo import paired_gain
    from openrft.runs.events import read_metrics

    by = {(run.stage, run.seed): run for run in runs}
    out = []
    for long in (run for run in runs if run.stage == "rft-long" and run.result is not None):
        final, sft = by[(FINAL, long.seed)], by[("sft", long.seed)]
        if final.result is None:
            continue
        d = paired_gain(long.result, final.result, group_key,
                        f"{STAGE_TITLES[FINAL]} vs {STAGE_TITLES[long.stage]}, seed {long.seed}")
        steps = read_metrics(long.run_dir) if long.run_dir is not None else []
        out.append({"seed": long.seed, "diff": d["diff"], "ci95": list(d["ci95"]),
                    "final_cpu_s": sft.train.cpu + final.train.cpu, "rft_long_cpu_s": long.train.cpu,
                    "rft_long_steps": steps[-1].step if steps else None})
    return out


def verdict(stages: dict, baselines: dict, sft_train_cpu_s: float | None = None,
            equal: list[dict] | None = None) -> dict:
    """The verdict on `by_stage`'s figures and the baselines (see the module docstring)."""
    mf = baselines.get("most_frequent") or {}
    ran = {k: v for k, v in stages.items() if v["n"]}
    lines = []
    if not ran:
        return {"best_stage": None, "target_met": False, "text": ["no stage produced a held-out eval"]}
    best = max(ran, key=lambda k: ran[k]["reward"]["mean"])
    lines.append(f"best stage on the held-out rows: {STAGE_TITLES[best]} (reward {ran[best]['reward']['mean']:.3f})")
    real = [k for k, v in ran.items() if k != "base" and v["gain"] and v["ci_above_zero"] == v["n"]]
    losing = [k for k, v in ran.items() if k != "base" and v["ci_below_zero"]]
    lines.append("gain over the base model beyond the 95% CI (every seed): "
                 + (", ".join(STAGE_TITLES[k] for k in real) or "no stage"))
    if losing:
        lines.append("worse than the base model beyond the CI (some seed): " + ", ".join(
            f"{STAGE_TITLES[k]} ({ran[k]['ci_below_zero']}/{ran[k]['n']} seeds)" for k in losing))
    failed = {k: v["failed"] for k, v in stages.items() if v["failed"]}
    if failed:
        lines.append("failed or skipped: " + ", ".join(f"{STAGE_TITLES[k]} (seeds {v})" for k, v in failed.items()))
    final = ran.get(FINAL)
    target: dict[str, Any] = {"final_stage": FINAL, "beats_base_beyond_ci": None, "beats_most_frequent_macro_f1": None,
                              "micro_f1_minus_most_frequent": None, "macro_f1_minus_most_frequent": None,
                              "replicated": final is not None and final["n"] >= REPLICATION_SEEDS}
    if final:
        target["beats_base_beyond_ci"] = final["ci_above_zero"] == final["n"]
        mf_macro = (mf.get("macro") or {}).get("f1")
        mf_micro = (mf.get("micro") or {}).get("f1")
        if final["macro_f1"] and mf_macro is not None:
            target["macro_f1_minus_most_frequent"] = final["macro_f1"]["mean"] - mf_macro
        if final["macro_f1_vs_most_frequent"]:  # beyond the CI (same samples, clustered by group) for every seed
            target["beats_most_frequent_macro_f1"] = final["macro_ci_above_most_frequent"] == final["n"]
        if final["micro_f1"] and mf_micro is not None:
            target["micro_f1_minus_most_frequent"] = final["micro_f1"]["mean"] - mf_micro
    on_every_seed = bool(target["beats_base_beyond_ci"] and target["beats_most_frequent_macro_f1"])
    met = on_every_seed and bool(target["replicated"])
    if final:
        outcome = ("met" if met else "NOT met" if not on_every_seed else
                   f"NOT met (it holds on the {final['n']} seed{'s' if final['n'] > 1 else ''} run; a target needs "
                   f"{REPLICATION_SEEDS}: --seeds {REPLICATION_SEEDS})")

        def signed(x):
            return "—" if x is None else f"{x:+.3f}"

        lines.append(f"target ({STAGE_TITLES[FINAL]}: beats the base model's reward and the most-frequent baseline's "
                     f"macro-F1, each beyond its 95% CI for every seed of {REPLICATION_SEEDS} or more): " + outcome
                     + f" — reward CI above 0 for {final['ci_above_zero']}/{final['n']} seeds, macro-F1 CI above "
                     f"the baseline for {final['macro_ci_above_most_frequent']}/{final['n']}; macro-F1 "
                     f"{signed(target['macro_f1_minus_most_frequent'])} and micro-F1 "
                     f"{signed(target['micro_f1_minus_most_frequent'])} vs the most-frequent baseline")
        every = (baselines.get("every_label") or {}).get("macro") or {}
        if every.get("f1") is not None and final["macro_f1"]:
            target["beats_every_label_macro_f1"] = final["macro_f1"]["mean"] > every["f1"]
            lines.append(f"caveat: naming every label scores macro-F1 {every['f1']:.3f} (recall 1 in every class), "
                         f"{every['f1'] - (mf.get('macro') or {}).get('f1', 0.0):+.3f} vs the most-frequent baseline, "
                         f"without telling one item from another; {STAGE_TITLES[FINAL]} is "
                         f"{final['macro_f1']['mean'] - every['f1']:+.3f} from it")
    else:
        lines.append(f"target: NOT met ({STAGE_TITLES[FINAL]} has no held-out eval)")
    measured = {k: v for k, v in ran.items() if v["own_vs_other_items"]}
    if measured:
        lines.append("answers that fit their own item better than the other items (own − other items, CI above 0): "
                     + "; ".join(f"{STAGE_TITLES[k]} {v['own_vs_other_items']['mean']:+.3f}, {v['own_ci_above_other']}"
                                 f"/{v['n']} seed{'s' if v['n'] > 1 else ''}" for k, v in measured.items())
                     + (". With 0 seeds there is no evidence that a stage's answers depend on the item: a reward gain "
                        "it has came from which labels it names" if any(not v["own_ci_above_other"]
                                                                        for v in measured.values()) else ""))
    text = baselines.get("text_classifier") or {}
    if text.get("reward") is not None:
        versus = (final or {}).get("text_classifier_ci") or []
        target["final_reward_minus_text_classifier"] = None if not final else final["reward"]["mean"] - text["reward"]
        lines.append(f"a text classifier (TF-IDF + logistic regression on the whole training file) scores reward "
                     f"{text['reward']:.3f}, micro-F1 {_f((text.get('micro') or {}).get('f1'))}, macro-F1 "
                     f"{_f((text.get('macro') or {}).get('f1'))}"
                     + ("" if not versus else f"; {STAGE_TITLES[FINAL]} − it (paired, per seed): " + "; ".join(
                         f"{d:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" for _, d, ci in versus)
                        + f", CI above 0 for {sum(ci[0] > 0 for _, _, ci in versus)}/{len(versus)} seeds, below 0 "
                          f"for {sum(ci[1] < 0 for _, _, ci in versus)}/{len(versus)}"))
    trained = {k: ran[k] for k in TRAINED if k in ran}
    if trained:
        best_trained = max(trained, key=lambda k: trained[k]["reward"]["mean"])
        cheapest = min(trained, key=lambda k: trained[k]["train_cpu_s"]["mean"])
        parts = [f"{STAGE_TITLES[k]} {v['reward']['mean']:.3f} in {v['train_cpu_s']['mean']:.0f} s CPU "
                 f"({v['train_wall_s']['mean']:.0f} s wall)" for k, v in trained.items()]
        extra = ("" if sft_train_cpu_s is None or FINAL not in trained else
                 f"; {STAGE_TITLES[FINAL]} also needs its SFT stage's {sft_train_cpu_s:.0f} s CPU")
        lines.append(f"trained stages, held-out reward and training time: {'; '.join(parts)}{extra}. Best: "
                     f"{STAGE_TITLES[best_trained]}" + ("" if best_trained == cheapest else
                                                         f", not the cheapest ({STAGE_TITLES[cheapest]})"))
    else:
        best_trained = None
    if equal:
        above = sum(e["ci95"][0] > 0 for e in equal)
        below = sum(e["ci95"][1] < 0 for e in equal)
        lines.append(f"at about equal CPU time, {STAGE_TITLES[FINAL]} − {STAGE_TITLES['rft-long']} (paired, per seed): "
                     + "; ".join(f"{e['diff']:+.3f} [{e['ci95'][0]:+.3f}, {e['ci95'][1]:+.3f}] ({e['final_cpu_s']:.0f} "
                                 f"vs {e['rft_long_cpu_s']:.0f} s CPU"
                                 + (f", {e['rft_long_steps']} steps" if e.get("rft_long_steps") else "") + ")"
                                 for e in equal)
                     + f"; CI above 0 for {above}/{len(equal)} seeds, below 0 for {below}/{len(equal)}")
    return {"best_stage": best, "best_trained_stage": best_trained, "real_gain": real, "loses_to_base": losing,
            "failed": failed, "target": target, "target_met": met, "text": lines}


def summarize(runs: list, held, plan, *, choice, console: Console) -> dict:
    """The whole run's figures: held-out set, prompt choice, baselines, every stage's scores, per-stage spread,
    the verdict."""
    base_run = runs[0]
    base_result = base_run.result
    scores = [stage_score(run, base_result, held.group_key, plan.label_key, held.records, console) for run in runs]
    baselines = baselines_of(base_result.summary) if base_result is not None else {}
    stages = by_stage(scores)
    sft = [s.train_cpu_s for s in scores if s.stage == "sft" and s.reward is not None]
    equal = equal_cpu(runs, held.group_key)
    first = next(iter(held.rows.values()))
    return {
        "task": plan.task.name, "budget": asdict(plan.budget), "seeds": plan.seeds, "max_steps": plan.max_steps,
        "output_dir": str(plan.out),
        "held_out": {"records": held.records, "rows": len(first), "groups": held.n_groups, "group_key": held.group_key,
                     "runs": plan.runs, "ids": [r.get("id") for r in first],
                     "excluded_groups": {"validation": len(held.excluded_validation_groups),
                                         "training": held.training_groups}},
        "prompt_choice": {"chosen": choice.chosen, "validation_reward": choice.rewards,
                          "versus_default": choice.versus_default,
                          "rows": f"the jobs' validation rows ({JOB_VALIDATION}, every seed)"},
        "baselines": baselines,
        "scores": [asdict(s) for s in scores],
        "stages": stages,
        "equal_cpu": equal,
        "verdict": verdict(stages, baselines, float(np.mean(sft)) if sft else None, equal),
    }


def write_summary(summary: dict, path: Path) -> None:
    """`workflow.json`, written whole (a temporary file renamed over it)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str))
    tmp.replace(path)


def _f(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _prf_cell(d: dict | None) -> str:
    return "—" if not d else " / ".join(_f(d[k]) for k in ("precision", "recall", "f1"))


def print_summary(summary: dict, console: Console) -> None:
    """Every stage and seed (reward, micro and macro P/R/F1, gain with its CI, times), the baselines, the
    across-seed spread when there are several seeds, and the verdict."""
    held = summary["held_out"]
    table = Table("stage", "seed", "prompt", "reward", "micro P / R / F1", "macro P / R / F1",
                  "gain vs base [95% CI by group]", "own − other items [CI]", "train wall (CPU) s", "eval wall s",
                  title=f"held out: {held['records']} × {held['runs']} runs",
                  caption="gain: paired reward difference to 'base, default prompt' on the same rows; own − other "
                          "items: the answers' F1 on their own item minus on the other items")
    for s in summary["scores"]:
        if s["reward"] is None:
            table.add_row(STAGE_TITLES[s["stage"]], str(s["seed"] or "—"), s["prompt"], f"[red]{s['status']}[/]",
                          s["error"] or "", "", "", "", "", "")
            continue
        gain = "—" if s["gain"] is None else (
            f"{s['gain']:+.3f} [{s['gain_ci95'][0]:+.3f}, {s['gain_ci95'][1]:+.3f}]" if s["stage"] != "base" else "")
        trained = f"{s['train_wall_s']:.0f} ({s['train_cpu_s']:.0f})" if s["stage"] in TRAINED else "—"
        own = "—" if s.get("own_vs_other_items") is None else (
            f"{s['own_vs_other_items']:+.3f} [{s['own_vs_other_items_ci95'][0]:+.3f}, "
            f"{s['own_vs_other_items_ci95'][1]:+.3f}]")
        table.add_row(STAGE_TITLES[s["stage"]], "—" if s["seed"] is None else str(s["seed"]), s["prompt"],
                      _f(s["reward"]), _prf_cell(s["micro"]), _prf_cell(s["macro"]), gain, own, trained,
                      f"{s['eval_wall_s']:.0f}")
    for name, b in summary["baselines"].items():
        table.add_row(f"baseline: {name.replace('_', '-')}", "—", "—", _f(b["reward"]), _prf_cell(b["micro"]),
                      _prf_cell(b["macro"]), "", "", "", "")
    console.print(table)
    if len(summary["seeds"]) > 1:
        spread = Table("stage", "seeds", "reward", "gain", "CI > 0", "micro F1", "macro F1", "train wall s",
                       title=f"mean ± std over seeds {summary['seeds']}")
        for stage, v in summary["stages"].items():
            if not v["n"]:
                continue
            cells = []
            for key in ("reward", "gain"):
                m = v[key]
                cells.append("—" if m is None else f"{m['mean']:+.3f}" + ("" if m["std"] is None else
                                                                           f" ± {m['std']:.3f}"))
            f1 = ["—" if v[k] is None else f"{v[k]['mean']:.3f}" + ("" if v[k]["std"] is None else
                                                                      f" ± {v[k]['std']:.3f}")
                  for k in ("micro_f1", "macro_f1")]
            spread.add_row(STAGE_TITLES[stage], str(v["n"]), *cells, f"{v['ci_above_zero']}/{v['n']}", *f1,
                           _f(v["train_wall_s"]["mean"], 0) if stage in TRAINED else "—")
        console.print(spread)
    if summary["prompt_choice"]["validation_reward"]:
        console.print("prompt chosen on validation: " + ", ".join(
            f"{p} {r:.3f}" for p, r in summary["prompt_choice"]["validation_reward"].items())
            + f" → {summary['prompt_choice']['chosen']}" + "".join(
                f"; {p} − default {d['diff']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
                for p, d in (summary["prompt_choice"].get("versus_default") or {}).items()))
    colour = "green" if summary["verdict"]["target_met"] else "yellow"
    for line in summary["verdict"]["text"]:
        console.print(f"[{colour}]{line}[/]")
    timing = summary.get("timing") or {}
    if timing:
        console.print(f"total wall time {timing['total_wall_s']:.0f} s (prompt choice "
                      f"{timing['prompt_choice_wall_s']:.0f} s); workflow.json and workflow.png in "
                      f"{summary['output_dir']}")


def _stage_prompt(summary: dict, stage: str) -> str | None:
    return next((s["prompt"] for s in summary["scores"] if s["stage"] == stage), None)


def workflow_chart(summary: dict, path: Path) -> Path:
    """One PNG: micro and macro F1 of every stage on the held-out rows (bars; mean ± std over seeds), the
    baselines (model-free and the text classifier) as horizontal lines, and above each stage its reward gain over
    the base model with the 95% CI clustered by group (green: above 0, red: below 0, grey: neither)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [k for k in STAGES if summary["stages"][k]["n"]]
    fig, ax = plt.subplots(figsize=(10, 5))
    x = np.arange(len(stages))
    width = 0.38
    colours = {"micro_f1": "tab:blue", "macro_f1": "tab:orange"}
    for i, key in enumerate(("micro_f1", "macro_f1")):
        means = [(summary["stages"][k][key] or {}).get("mean", np.nan) for k in stages]
        stds = [(summary["stages"][k][key] or {}).get("std") or 0.0 for k in stages]
        ax.bar(x + (i - 0.5) * width, means, width, yerr=stds if any(stds) else None, capsize=3,
               color=colours[key], label=f"{key.split('_')[0]} F1")
    styles = {"most_frequent": "--", "random": ":", "every_label": "-.", "text_classifier": "-"}
    for name, b in summary["baselines"].items():
        for key in ("micro", "macro"):
            if b.get(key):
                ax.axhline(b[key]["f1"], color=colours[f"{key}_f1"], linestyle=styles.get(name, "-."), linewidth=1.2,
                           label=f"{name.replace('_', '-')} {key} F1 ({b[key]['f1']:.2f})")
    top = 0.0
    for i, k in enumerate(stages):
        v = summary["stages"][k]
        seeds = [s for s in summary["scores"] if s["stage"] == k and s["reward"] is not None]
        height = max((v[key] or {}).get("mean", 0.0) + ((v[key] or {}).get("std") or 0.0)
                     for key in ("micro_f1", "macro_f1"))
        top = max(top, height)
        if k == "base":
            text, colour = f"reward {v['reward']['mean']:.3f}", "black"
        elif k == "base+prompt" and len(seeds) == 1 and seeds[0]["prompt"] == _stage_prompt(summary, "base"):
            text, colour = f"the default prompt\n({seeds[0]['prompt']}) was chosen", "grey"
        elif len(seeds) == 1 and seeds[0]["gain_ci95"]:
            s = seeds[0]
            text = f"Δreward {s['gain']:+.3f}\n[{s['gain_ci95'][0]:+.3f}, {s['gain_ci95'][1]:+.3f}]"
            colour = "tab:green" if s["gain_ci_above_zero"] else "tab:red" if s["gain_ci_below_zero"] else "grey"
        else:
            g = v["gain"]
            text = (f"Δreward {g['mean']:+.3f}" + ("" if g["std"] is None else f" ± {g['std']:.3f}")
                    + f"\nCI > 0: {v['ci_above_zero']}/{v['n']} seeds")
            colour = ("tab:green" if v["ci_above_zero"] == v["n"] else "tab:red" if v["ci_below_zero"] else "grey")
        ax.text(i, height + 0.02, text, ha="center", va="bottom", fontsize=8, color=colour,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})  # readable over lines
    ax.set_xticks(x, [STAGE_TITLES[k].replace(", ", ",\n") for k in stages])  # two lines: six stages fit side by side
    ax.set_ylim(0, max(0.8, top + 0.2))
    ax.set_ylabel("held-out F1")
    held = summary["held_out"]
    n = len(summary["seeds"])
    ax.set_title(f"{summary['task']}: every stage on the same held-out rows ({held['records']} × {held['runs']} runs"
                 + (f"; mean ± std over {n} seeds" if n > 1 else "") + ")", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
