"""EuroVoc level-1 classification of EU legal acts (multi-label, 21 domains): the reference task.

Input: the text of an act (any of the 24 EU languages). Output: JSON `{"labels": [...]}` naming every
EuroVoc level-1 domain of the act; the response_format enforces the enum of the 21 domain names, and the
ready-made `multilabel_f1` grader scores the set against the row's `labels`.

Prompt choices, the same for training and evaluation because the prompt is in the row:

- one user message (RFT rows have no system role) with the instructions first, then the act;
- instructions in English for every language, naming the act's language; the answer uses the English
  domain names, so one grader and one label space serve all languages (the small default model follows
  English instructions far better than instructions in Maltese or Latvian);
- the act is cut by tokens of the embedded model's tokenizer so that the whole user message fits in
  `max_prompt_tokens` (default 384 for the short prompt, which keeps the 135M model fast on a CPU, and for
  a longer variant 384 plus its extra instruction tokens, so that every variant shows as much of the act);
  the row records
  `truncated`, the act's token count before the cut (`text_tokens`) and the message's (`prompt_tokens`).

Two input layouts are read: the JSONL layout of `../shared/data/eurovoc/` (one record per act and
language with `labels` as domain names) and the MultiEURLEX layout (one record per act, `text` as a
{language: text} map, `eurovoc_concepts.level_1` as EuroVoc concept ids).
"""

from __future__ import annotations

import json
from pathlib import Path

from openrft.data.validate import DatasetError, Problem, read_jsonl
from openrft.tasks.base import Task, TaskError, fit_text, json_labels_format, prompt_tokenizer, token_count

# The 21 EuroVoc domains: (code, EuroVoc concept id, name as used in the data's `labels`).
DOMAINS = [
    ("04", "100142", "politics"),
    ("08", "100143", "international relations"),
    ("10", "100144", "European Union"),
    ("12", "100145", "law"),
    ("16", "100146", "economics"),
    ("20", "100147", "trade"),
    ("24", "100148", "finance"),
    ("28", "100149", "social questions"),
    ("32", "100150", "education and communications"),
    ("36", "100151", "science"),
    ("40", "100152", "business and competition"),
    ("44", "100153", "employment and working conditions"),
    ("48", "100154", "transport"),
    ("52", "100155", "environment"),
    ("56", "100156", "agriculture, forestry and fisheries"),
    ("60", "100157", "agri-foodstuffs"),
    ("64", "100158", "production, technology and research"),
    ("66", "100159", "energy"),
    ("68", "100160", "industry"),
    ("72", "100161", "geography"),
    ("76", "100162", "international organisations"),
]
DOMAIN_NAMES = [name for _, _, name in DOMAINS]
DOMAIN_BY_CODE = {code: name for code, _, name in DOMAINS}
DOMAIN_BY_CONCEPT = {concept: (code, name) for code, concept, name in DOMAINS}
CODE_BY_NAME = {name: code for code, _, name in DOMAINS}
CONCEPT_BY_NAME = {name: concept for _, concept, name in DOMAINS}

# The 24 official EU languages (ISO 639-1), named in English in the prompt.
LANGUAGES = {
    "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French", "ga": "Irish", "hr": "Croatian",
    "hu": "Hungarian", "it": "Italian", "lt": "Lithuanian", "lv": "Latvian", "mt": "Maltese", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "sk": "Slovak", "sl": "Slovenian", "sv": "Swedish",
}
DEFAULT_MAX_PROMPT_TOKENS = 384
# Prompt variants (`prompt` option). "short": the domain names only (the default, and what the demo trains on).
# "described": each domain with a few EuroVoc terms of its own, so that the model has the knowledge of what a
# domain covers; its instructions are the same for every act and come first, the act's language after them.
PROMPTS = ("short", "described")
MIN_TEXT_TOKENS = 32
# 1 to 5 labels, as the prompt asks ("acts usually have 2 to 5"): 90% of the training acts have at most 5.
RESPONSE_FORMAT = json_labels_format("eurovoc_domains", DOMAIN_NAMES, min_items=1, max_items=5)
ANSWER_FORMAT = 'Answer with JSON only, in the form {"labels": ["<domain>", ...]}, using the exact domain names above.'


def domain_instructions() -> str:
    """The list of domains and the answer format, shared by the EuroVoc tasks."""
    listing = "\n".join(f"- {name}" for name in DOMAIN_NAMES)
    return f"The 21 EuroVoc domains:\n{listing}\n\n{ANSWER_FORMAT}"


def described_instructions() -> str:
    """The domains, each with six EuroVoc descriptors of its own (`eurovoc_offline.domain_terms`)."""
    from openrft.tasks.eurovoc_offline import domain_terms

    terms = domain_terms()
    listing = "\n".join(f"- {name}: {', '.join(terms[name])}" for name in DOMAIN_NAMES)
    return f"The 21 EuroVoc domains, each with a few of the EuroVoc terms it covers:\n{listing}\n\n{ANSWER_FORMAT}"


def act_prompt(text: str, language: str, prompt: str = "short") -> str:
    """The user message for one act: instructions (in English, naming the act's language), then the act."""
    name = LANGUAGES.get(language, language)
    if prompt == "described":  # everything before "The act is written in" is the same for every act
        return ("Classify an EU legal act by its EuroVoc level-1 domains: name every domain it belongs to "
                f"(acts usually have 2 to 5).\n\n{described_instructions()}\n\n"
                f"The act is written in {name}; answer with the English domain names.\n\nAct:\n{text}")
    return ("Classify this EU legal act by its EuroVoc level-1 domains: name every domain it belongs to "
            f"(acts usually have 2 to 5). The act is written in {name}; answer with the English domain names.\n\n"
            f"{domain_instructions()}\n\nAct:\n{text}")


def default_max_prompt_tokens(prompt: str, tokenizer) -> int:
    """The `prompt` variant's default budget: the short prompt's, plus the variant's extra instruction tokens.

    Variants then differ in their instructions only, not in how much of the act they show (the described
    list of domains costs ~350 tokens; a fixed 640 left the act half the text the short prompt shows)."""
    extra = token_count(act_prompt("", "en", prompt), tokenizer) - token_count(act_prompt("", "en"), tokenizer)
    return DEFAULT_MAX_PROMPT_TOKENS + extra


def read_acts(path: str | Path) -> list[dict]:
    """Act records from either layout, as dicts with the shared layout's fields (one per act and language).

    Raises `DatasetError` listing every line whose record is unusable.
    """
    numbered, problems = read_jsonl(path)
    if problems:
        raise DatasetError(problems)
    records: list[dict] = []
    for line, row in numbered:
        reader = _from_multi_eurlex if "eurovoc_concepts" in row else _from_jsonl_layout
        got, row_problems = reader(row, str(path), line)
        records += got
        problems += row_problems
    if problems:
        raise DatasetError(problems)
    return records


def _from_jsonl_layout(row: dict, file: str, line: int) -> tuple[list[dict], list[Problem]]:
    problems = []
    for key, kind in (("id", str), ("celex_id", str), ("language", str), ("text", str), ("labels", list)):
        if not isinstance(row.get(key), kind):
            problems.append(Problem(file, line, key, f"missing or not a {kind.__name__}"))
    if problems:
        return [], problems
    unknown = [label for label in row["labels"] if label not in CODE_BY_NAME]
    if unknown:
        return [], [Problem(file, line, "labels", f"not EuroVoc domain names: {unknown}")]
    if not row["labels"]:
        return [], [Problem(file, line, "labels", "an act needs at least one domain")]
    record = dict(row)
    record.setdefault("label_codes", [CODE_BY_NAME[label] for label in row["labels"]])
    record.setdefault("label_ids", [CONCEPT_BY_NAME[label] for label in row["labels"]])
    return [record], []


def _from_multi_eurlex(row: dict, file: str, line: int) -> tuple[list[dict], list[Problem]]:
    """MultiEURLEX: {"celex_id", "publication_date", "eurovoc_concepts": {"level_1": [ids]}, "text": {lang: text}}."""
    concepts = row["eurovoc_concepts"].get("level_1") if isinstance(row["eurovoc_concepts"], dict) else None
    problems = []
    if not isinstance(row.get("celex_id"), str):
        problems.append(Problem(file, line, "celex_id", "missing or not a string"))
    if not isinstance(concepts, list) or not concepts:
        problems.append(Problem(file, line, "eurovoc_concepts.level_1", "missing or empty list of concept ids"))
    elif any(str(c) not in DOMAIN_BY_CONCEPT for c in concepts):
        unknown = [c for c in concepts if str(c) not in DOMAIN_BY_CONCEPT]
        problems.append(Problem(file, line, "eurovoc_concepts.level_1", f"not level-1 EuroVoc concept ids: {unknown}"))
    texts = row.get("text")
    if isinstance(texts, str) and isinstance(row.get("language"), str):
        texts = {row["language"]: texts}  # a single-language configuration
    if not isinstance(texts, dict) or not any(isinstance(t, str) and t.strip() for t in texts.values()):
        problems.append(Problem(file, line, "text", "expected a {language: text} map with at least one text"))
    if problems or not isinstance(concepts, list) or not isinstance(texts, dict):
        return [], problems
    pairs = sorted((CODE_BY_NAME[DOMAIN_BY_CONCEPT[str(c)][1]], str(c)) for c in set(concepts))
    codes = [code for code, _ in pairs]
    records = []
    for language, text in texts.items():
        if not isinstance(text, str) or not text.strip():
            continue  # MultiEURLEX leaves the languages an act was not translated into empty
        records.append({
            "id": f"{row['celex_id']}_{language}", "celex_id": row["celex_id"], "language": language, "text": text,
            "labels": [DOMAIN_BY_CODE[code] for code in codes], "label_codes": codes,
            "label_ids": [concept for _, concept in pairs], "source": "multi_eurlex",
            "label_origin": "gold_level_1", "publication_date": row.get("publication_date"),
            "orig_chars": len(text), "truncated": False,
        })
    return records, []


def acts_to_rows(records: list[dict], *, max_prompt_tokens: int | None = None, prompt: str = "short",
                 tokenizer=None) -> list[dict]:
    """Render act records into RFT rows with the `prompt` variant, cutting each act so the user message fits
    `max_prompt_tokens` (default: the variant's, `default_max_prompt_tokens`)."""
    if prompt not in PROMPTS:
        raise TaskError(f"task eurovoc: unknown prompt {prompt!r} (prompts: {', '.join(PROMPTS)})")
    tokenizer = tokenizer or prompt_tokenizer()
    max_prompt_tokens = max_prompt_tokens or default_max_prompt_tokens(prompt, tokenizer)
    overhead: dict[str, int] = {}
    rows = []
    for record in records:
        language = record["language"]
        if language not in overhead:
            overhead[language] = token_count(act_prompt("", language, prompt), tokenizer)
        budget = max_prompt_tokens - overhead[language]
        if budget < MIN_TEXT_TOKENS:
            raise TaskError(f"max_prompt_tokens={max_prompt_tokens} leaves {budget} tokens for the act after the "
                            f"{overhead[language]} tokens of instructions: use at least "
                            f"{overhead[language] + MIN_TEXT_TOKENS}")
        text, text_tokens, cut = fit_text(record["text"], budget, tokenizer)
        message = act_prompt(text, language, prompt)
        prompt_tokens = token_count(message, tokenizer)
        while prompt_tokens > max_prompt_tokens:  # the cut marker and token merges at the seams can add a few
            budget -= prompt_tokens - max_prompt_tokens
            text, text_tokens, cut = fit_text(record["text"], budget, tokenizer)
            message = act_prompt(text, language, prompt)
            prompt_tokens = token_count(message, tokenizer)
        row: dict = {"messages": [{"role": "user", "content": message}]}
        row.update({key: value for key, value in record.items() if key not in ("text", "truncated")})
        row["source_truncated"] = bool(record.get("truncated", False))  # cut by characters in the source data
        row["truncated"] = cut or row["source_truncated"]
        row["text_tokens"] = text_tokens
        row["prompt_tokens"] = prompt_tokens
        rows.append(row)
    return rows


def _shared_file(split: str) -> Path:
    from openrft.paths import shared_data_dir

    folder = shared_data_dir()
    if folder is None or not (folder / "eurovoc").is_dir():
        raise TaskError("task eurovoc needs the real data folder (../shared/data/eurovoc beside the checkout, or "
                        "$OPENRFT_DATA_DIR); without it use the task 'eurovoc-offline', or pass path=... to a "
                        "file in the EuroVoc JSONL or MultiEURLEX layout")
    return folder / "eurovoc" / f"{split}.jsonl"


def load(split: str, *, max_prompt_tokens: int | None = None, prompt: str = "short",
         languages: list[str] | None = None, limit: int | None = None, path: str | None = None) -> list[dict]:
    """Rows of one split with the `prompt` variant: the shared folder's `<split>.jsonl`, or `path` (either
    layout) when given."""
    records = read_acts(path or _shared_file(split))
    if languages:
        records = [r for r in records if r["language"] in set(languages)]
    if limit is not None:
        records = records[:limit]
    return acts_to_rows(records, max_prompt_tokens=max_prompt_tokens, prompt=prompt)


def labels_file_domains(folder: Path) -> list[tuple[str, str, str]]:
    """The (code, concept_id, name) triples of a data folder's `labels.json` (to check DOMAINS against)."""
    return [(d["code"], d["concept_id"], d["name"]) for d in json.loads((folder / "labels.json").read_text())]


def task() -> Task:
    from openrft.paths import shared_data_dir

    folder = shared_data_dir()
    return Task(
        name="eurovoc",
        description="EU legal acts -> their EuroVoc level-1 domains (multi-label, 21 classes, 23 languages)",
        loader=load,
        grader_name="multilabel_f1",
        labels=DOMAIN_NAMES,
        response_format=RESPONSE_FORMAT,
        label_key="labels",
        group_key="celex_id",
        source=f"real acts in {folder / 'eurovoc'}" if folder else "real acts (data folder not found)",
        options={"max_prompt_tokens": None, "prompt": "short", "languages": None, "limit": None, "path": None},
        prompts=PROMPTS,
    )
