"""The baseline a user would try before fine-tuning a language model: a linear text classifier.

TF-IDF of the prompt's words and word pairs (`TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`) and one
logistic regression per label (`class_weight="balanced"`, scikit-learn's other defaults), fitted on the
training file's rows. A row's answer is every label of probability 0.5 or more, at least the most probable one
and at most as many as the most labels a training row has (one for single-label tasks). Nothing is tuned: these
are the textbook settings, so the baseline is what an afternoon with scikit-learn gives, not a tuned system.

It reads exactly what the model reads (the last user message, instructions and all: the instructions are the
same in every row and weigh nothing) and learns from the same training rows; on an eval it is graded by the same
grader (`evals.run`). A fine-tuned model below it has not earned its cost.
"""

from __future__ import annotations

import numpy as np

from openrft.data.labels import labels_of

THRESHOLD = 0.5


def row_text(row: dict) -> str:
    """The text of a row's last user message (the parts of type text, joined, for a list of content parts)."""
    users = [m for m in row.get("messages") or [] if m.get("role") == "user"]
    content = users[-1].get("content", "") if users else ""
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def text_classifier_predictions(train_rows: list[dict], rows: list[dict], labels: list[str],
                                label_key: str = "labels") -> list[list[str]]:
    """Each of `rows`' predicted labels (see the module docstring), from a classifier fitted on `train_rows`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    truth = [set(labels_of(row, label_key)) for row in train_rows]
    if not train_rows or not rows:
        return [[] for _ in rows]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform([row_text(row) for row in train_rows])
    x = vectorizer.transform([row_text(row) for row in rows])
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
        order = [j for j in np.argsort(-p, kind="stable")[:most]]
        predictions.append([labels[j] for j in order if p[j] >= THRESHOLD] or [labels[order[0]]])
    return predictions
