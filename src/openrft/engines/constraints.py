"""What a sample may say next: the response_format's grammar, plus labels decoded as labels.

A `Constraint` follows one sample token by token. At each step `fill(bitmask, row)` writes the allowed
tokens into row `row` of an xgrammar bitmask, and `accept(token)` advances it. Both engines' samples and the
trainer's replay go through it, so the trainer rebuilds exactly the masks the sampler used (see sampling.py).

Two rules on top of the xgrammar grammar (structured.py):

- **Canonical labels.** A JSON grammar admits any tokenization of a string: "European Union" can be written
  "E", "uro", "p", "ean", … or repeated until the token cap. For a string whose schema is an `enum` of strings,
  once its opening quote is written, only the tokenizer's own tokenization of one of the enum values is
  allowed (a trie of token ids), then the closing quote. Choosing a label is then a handful of real choices
  the model makes with its usual tokens, not a spelling exercise.
- **uniqueItems.** For an array of such enum strings with `uniqueItems: true`, a value already in the array
  is taken out of the trie: the model cannot repeat a label (the parsed answer would fail the schema).

Where the enum values cannot be tokenized on their own (a value whose tokens merge with the quotes), the
trie is not used for that enum and the grammar alone applies. The rules work on the answer only: with a
reasoning segment they start after its closing tag. They follow the response_format's schema: an answer made
of tool calls (one that starts with `<`, engines/tools.py) is left to the grammar alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

from openrft.engines.sampling import pack_bitmask


@dataclass(frozen=True)
class ConstraintSpec:
    """What decides a completion's constraint, recorded on each Sample so that it can be replayed exactly:
    the xgrammar structural tag, the answer's JSON schema (for the enum sites) and the reasoning segment's
    closing tag after which the answer starts (None without reasoning)."""

    tag: str  # JSON of the structural tag (structured.structural_tag)
    schema: str | None  # JSON of the answer schema, or None for free text
    answer_after: str | None
    tool_calls: bool = False  # the answer may be tool calls (engines/tools.py): the label rules skip such answers


@dataclass
class _Node:
    children: dict[int, "_Node"] = field(default_factory=dict)
    value: str | None = None  # the enum value that ends here
    values: frozenset[str] = frozenset()  # every enum value below (for uniqueItems)


@dataclass(frozen=True)
class EnumSite:
    """An enum of strings in the schema: where it is (a path of keys, '*' for array items) and its trie."""

    path: tuple[str, ...]
    root: _Node
    unique: bool  # the enclosing array has uniqueItems: true


class Vocabulary:
    """Per-token text and the token sets the rules need, computed once per tokenizer."""

    def __init__(self, tokenizer, vocab_size: int):
        self.vocab_size = vocab_size
        self.words = (vocab_size + 31) // 32
        self.text = [""] * vocab_size
        for token_id in range(min(vocab_size, len(tokenizer))):
            self.text[token_id] = tokenizer.decode([token_id], skip_special_tokens=False,
                                                   clean_up_tokenization_spaces=False)
        self.tokenizer = tokenizer
        quote = [t for t, s in enumerate(self.text) if s.startswith('"')]
        self.closing_quote = self.packed(quote)

    def packed(self, token_ids) -> torch.Tensor:
        """A packed int32 bitmask row (xgrammar's layout: token t is bit t % 32 of word t // 32)."""
        bits = torch.zeros(self.vocab_size, dtype=torch.bool)
        bits[list(token_ids)] = True
        return pack_bitmask(bits)

    def canonical(self, value: str) -> list[int] | None:
        """The token ids the tokenizer writes for `value` inside a JSON array of strings, or None when a token
        would straddle a quote (the value is then not a run of whole tokens) or the value needs escapes."""
        if json.dumps(value) != f'"{value}"':
            return None
        text = f'["{value}"]'
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        pieces = [self.text[i] if i < self.vocab_size else "\0" for i in ids]
        if "".join(pieces) != text:
            return None
        begin, end, position, span = 2, 2 + len(value), 0, []
        for token, piece in zip(ids, pieces):
            start, position = position, position + len(piece)
            if position <= begin or start >= end:
                continue
            if start < begin or position > end:
                return None
            span.append(token)
        return span


def enum_sites(schema: dict | None, vocab: Vocabulary) -> list[EnumSite]:
    """Every enum-of-strings site of a JSON schema whose values all tokenize canonically."""
    sites: list[EnumSite] = []

    def walk(node: Any, path: tuple[str, ...], unique: bool) -> None:
        if not isinstance(node, dict):
            return
        values = node.get("enum")
        if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
            root = _trie(values, vocab)
            if root is not None:
                sites.append(EnumSite(path, root, unique))
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, path + (key,), False)
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + ("*",), bool(node.get("uniqueItems")))

    walk(schema or {}, (), False)
    return sites


def _trie(values: list[str], vocab: Vocabulary) -> _Node | None:
    root = _Node(values=frozenset(values))
    for value in values:
        ids = vocab.canonical(value)
        if not ids:
            return None
        node = root
        for token in ids:
            node = node.children.setdefault(token, _Node())
            node.values = node.values | {value}
        node.value = value
    return root


@dataclass
class _Frame:
    kind: str  # "object" | "array"
    key: str | None = None  # the object's current key
    expect_key: bool = True
    seen: set[str] = field(default_factory=set)  # the array's values so far (for uniqueItems)


class _JsonLexer:
    """Follows the answer's JSON character by character: containers, keys, and which string is open."""

    def __init__(self):
        self.stack: list[_Frame] = []
        self.in_string = False
        self.escape = False
        self.is_key = False
        self.buffer: list[str] = []

    def path(self) -> tuple[str, ...]:
        return tuple("*" if f.kind == "array" else (f.key or "") for f in self.stack)

    def feed(self, char: str) -> str | None:
        """Advance by one character; returns "open" when a value string was just opened, "close:<value>"
        when one was just closed, else None."""
        if self.in_string:
            if self.escape:
                self.escape = False
                self.buffer.append(char)
            elif char == "\\":
                self.escape = True
            elif char == '"':
                self.in_string = False
                text = "".join(self.buffer)
                if self.is_key and self.stack:
                    self.stack[-1].key = text
                    return None
                if self.stack and self.stack[-1].kind == "array":
                    self.stack[-1].seen.add(text)
                return "close:" + text
            else:
                self.buffer.append(char)
            return None
        top = self.stack[-1] if self.stack else None
        if char == "{":
            self.stack.append(_Frame("object"))
        elif char == "[":
            self.stack.append(_Frame("array"))
        elif char in "}]":
            if self.stack:
                self.stack.pop()
        elif char == ":" and top is not None and top.kind == "object":
            top.expect_key = False
        elif char == "," and top is not None and top.kind == "object":
            top.expect_key = True
        elif char == '"':
            self.in_string, self.buffer = True, []
            self.is_key = top is not None and top.kind == "object" and top.expect_key
            return None if self.is_key else "open"
        return None


class Constraint:
    """One sample's constraint: an xgrammar matcher, and the canonical-label trie on enum sites."""

    def __init__(self, matcher, vocab: Vocabulary, sites: list[EnumSite], answer_after: str | None,
                 tool_calls: bool = False):
        self.matcher = matcher
        self.vocab = vocab
        self.sites = {site.path: site for site in sites}
        self.answer_after = answer_after  # the reasoning segment's closing tag; the rules start after it
        self.tool_calls = tool_calls  # an answer that starts with "<" is tool calls: no label rules then
        self.answer_started = False
        self.pending = ""  # text before the answer starts
        self.lexer = _JsonLexer()
        self.node: _Node | None = None  # inside an enum value: the trie node reached
        self.site: EnumSite | None = None
        self.excluded: frozenset[str] = frozenset()

    def fill(self, bitmask: torch.Tensor, row: int) -> None:
        """Write the tokens allowed next into `bitmask[row]`."""
        self.matcher.fill_next_token_bitmask(bitmask, row)
        if self.node is None:
            return
        allowed = [t for t, child in self.node.children.items() if child.values - self.excluded]
        rule = self.vocab.packed(allowed)
        if self.node.value is not None and self.node.value not in self.excluded:
            rule = rule | self.vocab.closing_quote
        narrowed = bitmask[row] & rule
        if bool(narrowed.any()):  # never leave a sample with no token at all (the grammar alone then rules)
            bitmask[row] = narrowed

    def accept(self, token: int) -> bool:
        """Advance by one sampled token; False when the grammar rejects it."""
        if not self.matcher.accept_token(token):
            return False
        text = self.vocab.text[token] if token < self.vocab.vocab_size else ""
        if self.node is not None:
            child = self.node.children.get(token)
            if child is not None:
                self.node = child
                for char in text:
                    self.lexer.feed(char)
                return True
            self.node, self.site = None, None  # the closing quote (or the grammar's own way out)
        if self.answer_after is not None:
            self.pending += text
            cut = self.pending.find(self.answer_after)
            if cut < 0:
                return True
            text = self.pending[cut + len(self.answer_after):]
            self.answer_after, self.pending = None, ""
        for position, char in enumerate(text):
            if not self.answer_started and not char.isspace():
                self.answer_started = True
                if self.tool_calls and char == "<":
                    self.sites = {}
            event = self.lexer.feed(char)
            if event == "open" and position == len(text) - 1:  # the token ends with a value's opening quote
                site = self.sites.get(self.lexer.path())
                if site is not None:
                    self.site, self.node = site, site.root
                    frame = self.lexer.stack[-1] if self.lexer.stack else None
                    self.excluded = frozenset(frame.seen) if site.unique and frame and frame.kind == "array" \
                        else frozenset()
        return True

    def is_terminated(self) -> bool:
        return self.matcher.is_terminated()


@lru_cache(maxsize=8)
def _vocabulary(tokenizer_key: int, tokenizer, vocab_size: int) -> Vocabulary:  # noqa: ARG001 - id() is the lru_cache key
    return Vocabulary(tokenizer, vocab_size)


def vocabulary(tokenizer, vocab_size: int) -> Vocabulary:
    """The (cached) Vocabulary of a tokenizer."""
    return _vocabulary(id(tokenizer), tokenizer, vocab_size)
