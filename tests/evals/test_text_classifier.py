"""The text-classifier baseline and the own-item vs other-items measure (evals.text_classifier, evals.metrics)."""

import pytest

LABELS = ["agriculture", "energy", "trade"]
WORDS = {"agriculture": "milk cows dairy farmers harvest", "energy": "wind turbines grid electricity",
         "trade": "customs duties imports tariffs"}


def row(labels, i=0, language=""):
    text = " ".join(WORDS[label] for label in labels) + f" act number {i} {language}"
    return {"messages": [{"role": "system", "content": "be brief"},
                         {"role": "user", "content": f"Classify this act into {', '.join(LABELS)}.\n\n{text}"}],
            "labels": labels, "id": f"{i}{language}"}


def test_the_classifier_learns_each_label_s_words_from_the_training_rows():
    from openrft.evals.text_classifier import text_classifier_predictions

    sets = [["agriculture"], ["energy"], ["trade"], ["agriculture", "trade"], ["energy", "trade"]]
    train = [row(labels, i) for i, labels in enumerate(sets * 4)]
    unseen = [row(["agriculture"], 100), row(["energy", "trade"], 101), row(["trade"], 102)]
    assert text_classifier_predictions(train, unseen, LABELS) == [["agriculture"], ["energy", "trade"], ["trade"]]


def test_the_classifier_answers_one_label_at_least_and_never_more_than_a_training_row_has():
    from openrft.evals.text_classifier import text_classifier_predictions

    single = [row([label], i) for i, label in enumerate(LABELS * 4)]
    both = row(["agriculture", "energy"], 50)  # the words of two labels, for a single-label task: one answer
    assert [len(p) for p in text_classifier_predictions(single, [both, row([], 51)], LABELS)] == [1, 1]
    # a label every training row has is always answered, one none has never
    always = [row(["trade", label], i) for i, label in enumerate(["agriculture", "energy"] * 4)]
    predicted = text_classifier_predictions(always, [row(["energy"], 60)], LABELS + ["fisheries"])
    assert "trade" in predicted[0] and "fisheries" not in predicted[0]
    assert text_classifier_predictions([], [row(["trade"])], LABELS) == [[]]


def test_own_vs_other_items_is_zero_for_answers_that_ignore_the_item_and_positive_for_ones_that_read_it():
    from openrft.evals.metrics import own_vs_other_items

    truth = [{"agriculture"}, {"energy"}, {"trade"}, {"agriculture", "trade"}, {"energy", "trade"}] * 4
    items = [i for i in range(len(truth)) for _ in range(2)]  # two runs per item, each item its own group
    exact = own_vs_other_items([(truth[i], truth[i]) for i in items], items, items, LABELS)
    assert exact["own"] == 1.0 and exact["other"] < 0.5 and exact["ci95"][0] > 0.3
    constant = own_vs_other_items([({"trade"}, truth[i]) for i in items], items, items, LABELS)
    assert constant["diff"] == pytest.approx(0.0, abs=1e-12) and constant["own"] > 0.4  # rewarded, but blind
    shifted = own_vs_other_items([(truth[(i + 1) % len(truth)], truth[i]) for i in items], items, items, LABELS)
    assert shifted["ci95"][1] < 0  # another item's answer fits worse than an average one
    # an act's translations (the same labels) are not "other" items: an answer that fits them shows no skill
    translated = [t for t in truth[:10] for _ in range(2)]
    rows = list(range(len(translated)))
    alone = own_vs_other_items([(translated[i], translated[i]) for i in rows], rows, rows, LABELS)
    acts = own_vs_other_items([(translated[i], translated[i]) for i in rows], rows, [i // 2 for i in rows], LABELS)
    assert acts["n_groups"] == 10 and alone["n_groups"] == 20 and acts["other"] < alone["other"]
    # groups of unequal size (an act in one language, another in three): a blind answer still scores exactly 0
    uneven = [["a", "a", "a", "b", "c", "c"], [{"agriculture"}, {"agriculture"}, {"agriculture"}, {"energy"},
                                               {"trade", "energy"}, {"trade", "energy"}]]
    for answer in ({"agriculture"}, {"energy"}, {"trade", "agriculture"}):
        blind = own_vs_other_items([(answer, t) for t in uneven[1]], list(range(6)), uneven[0], LABELS)
        assert blind["diff"] == pytest.approx(0.0, abs=1e-12) and blind["own"] == pytest.approx(blind["other"])
    with pytest.raises(ValueError, match="two groups"):
        own_vs_other_items([({"trade"}, {"trade"})] * 2, [0, 1], ["a", "a"], LABELS)
