"""The baseline a user would try before fine-tuning a language model: a linear text classifier.

TF-IDF of the prompt's words and word pairs (`TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`) and one
logistic regression per label (`class_weight="balanced"`, scikit-learn's other defaults), fitted on the
training file's rows. A row's answer is every label of probability 0.5 or more, at least the most probable one
and at most as many as the most labels a training row has (one for single-label tasks). Nothing is tuned: these
are the textbook settings, so the baseline is what an afternoon with scikit-learn gives, not a tuned system.

It reads what the model reads (the last user message, instructions and all: they are nearly the same in every
row, so they weigh little, though they dilute each row's length-normalised vector) and learns from the training
file (`run_eval(..., text_baseline=True)`, graded by the same grader as the model). A fine-tuned model below it
has not earned its cost.
"""

from __future__ import annotations

import numpy as np

from openrft.data.formats import last_user_text
from openrft.data.labels import labels_of

THRESHOLD = 0.5


def text_classifier_predictions(train_rows: list[dict], rows: list[dict], labels: list[str],
                                label_key: str = "labels") -> list[list[str]]:
    """Each of `rows`' predicted labels (see the module docstring), from a classifier fitted on `train_rows`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    truth = [set(labels_of(row, label_key)) & set(labels) for row in train_rows]
    if not train_rows or not rows:
        return [[] for _ in rows]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform([last_user_text(row) for row in train_rows])
    x = vectorizer.transform([last_user_text(row) for row in rows])
    probability = np.zeros((len(rows), len(labels)))
    for j, label in enumerate(labels):
        y = np.array([label in t for t in truth])
        if y.all() or not y.any():  # one class only: that class, for every row
            probability[:, j] = float(y.all())
            continue
        model = LogisticRegression(class_weight="balanced", max_iter=1000).fit(x_train, y)
        probability[:, j] = model.predict_proba(x)[:, 1]
    most = max(1, max(len(t) for t in truth))
    predictions = []
    for p in probability:
        order = list(np.argsort(-p, kind="stable")[:most])
        predictions.append([labels[j] for j in order if p[j] >= THRESHOLD] or [labels[order[0]]])
    return predictions
