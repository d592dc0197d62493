"""Load and check RFT JSONL files before any compute is spent.

A row is OpenAI's RFT training line (`../shared/docs/openai-rft-api.md` §2): `{"messages": [...],
<reference fields>}`. `messages` and `tools` are reserved; every other key is a reference field that
graders read as `{{ item.<key> }}`. The checks here follow that schema and the choices of §2.2:

- the file is UTF-8 JSONL, one JSON object per line, no blank lines;
- `messages` is a non-empty list of developer / user / assistant / tool messages (RFT has no `system`
  role), each with the keys its role allows and content of the right type; the last one is `user`,
  because the policy answers the trailing user turn (Azure requires it, OpenAI's examples all do it);
- `tools`, when present, is a list of Chat-Completions function tools with unique names;
- reference field names are addressable in a template (letters, digits, underscore);
- no empty rows, no exact duplicates, no two rows with the same messages but different references;
- given a grader, every `{{ item.x }}` it reads exists in every row;
- given the other file of the pair (`against`), no row is in both.

SFT and DPO rows (OpenAI's `supervised` and `dpo` formats) are checked by `openrft.data.formats` through the
same functions (`method=`); an upload's format is told by its first row's shape.

Every problem is collected (file, line, field, reason) so that a user fixes a file in one pass;
`load_rows` refuses a file with any problem.

Files are read line by line. Limits (each a problem, never a crash): a file of more than MAX_FILE_BYTES
(512 MiB, OpenAI's limit for a file) is refused before it is read; a line of more than MAX_LINE_BYTES
(8 MiB) is refused without being held whole; an integer of more than MAX_INT_DIGITS (100) digits,
`NaN`/`Infinity` and a float that overflows are refused, and so is a string holding a lone UTF-16
surrogate (`"\ud83d"`), which no tokenizer can encode. `check_upload` checks a file in memory that
does not grow with the rows' size (a 16-byte digest a row, for the duplicate checks) and keeps only
the first problems.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple

from openrft.errors import InputError

ROLES = ("developer", "user", "assistant", "tool")
# The keys of an RFT row that are the prompt, not reference fields: graders never see them in `item` (the one
# definition; `evals.rollout.grader_item` leaves them out).
RESERVED_KEYS = ("messages", "tools")
# The keys each role may carry besides `role` (Chat-Completions message shapes; `type: "message"` is the
# Responses-API spelling that OpenAI also accepts in RFT rows).
MESSAGE_KEYS = {
    "developer": {"content", "name", "type"},
    "user": {"content", "name", "type"},
    "assistant": {"content", "name", "type", "tool_calls", "weight", "refusal"},
    "tool": {"content", "tool_call_id", "type"},
}
CONTENT_PART_TYPES = {"text", "input_text", "image_url", "input_image"}
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_DEPTH = 100  # nesting levels a row may have (OpenAI rows need fewer than ten)
MAX_FILE_BYTES = 512 * 1024**2
MAX_LINE_BYTES = 8 * 1024**2
MAX_INT_DIGITS = 100
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # what a lone surrogate must be spelled as in UTF-8 JSON


class Problem(NamedTuple):
    """One thing wrong with a dataset: where (file, 1-based line; 0 = the whole file), which field, why."""

    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field or '(row)'}: {self.reason}"


class DatasetError(InputError, ValueError):
    """A dataset that cannot be used; `.problems` lists every problem found, not only the first."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the dataset:\n{shown}{more}")


class _BadNumber(InputError, ValueError):
    """A number the JSON reader refuses (too many digits, too large, NaN); caught and reported as a problem."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _BadNumber(f"an integer of {digits:,} digits (the limit is {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {text[:40]} is too large for a float")
    return value


def _refuse_constant(name: str) -> float:
    raise _BadNumber(f"{name} is not valid JSON")


def parse_line(text: str) -> Any:
    """json.loads with the number limits above (raises ValueError, JSONDecodeError or RecursionError)."""
    return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)


def _surrogate_field(value: Any) -> str | None:
    """The path of the first key or string holding a lone surrogate, or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return where or "(row)"
        elif isinstance(node, dict):
            for key, child in node.items():
                path = f"{where}.{key}" if where else str(key)
                try:
                    str(key).encode("utf-8")
                except UnicodeEncodeError:
                    return path.encode("utf-8", "backslashreplace").decode()
                stack.append((path, child))
        elif isinstance(node, list):
            stack.extend((f"{where}[{index}]", child) for index, child in enumerate(node))
    return None


def _lines(handle) -> Iterator[tuple[int, bytes | None]]:
    """(1-based number, the line without its newline), or None for a line over MAX_LINE_BYTES (skipped unread)."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while rest := handle.readline(1 << 20):
                if rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        yield number, raw[:-1] if raw.endswith(b"\n") else raw


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict | None, Problem | None]]:
    """Parse a JSONL file line by line: (line number, object, None) or (line number, None, problem)."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        yield 0, None, Problem(name, 0, "", "file not found")
        return
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        yield 0, None, Problem(name, 0, "", f"the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} "
                                            f"({MAX_FILE_BYTES // 1024**2} MiB)")
        return
    any_line = False
    with path.open("rb") as handle:
        for number, raw in _lines(handle):
            any_line = True
            if raw is None:
                yield number, None, Problem(name, number, "", f"the line is longer than {MAX_LINE_BYTES:,} bytes "
                                                              f"({MAX_LINE_BYTES // 1024**2} MiB)")
                continue
            yield number, *_parse_row(raw, name, number)
    if not any_line:
        yield 0, None, Problem(name, 0, "", "the file is empty")


def _parse_row(raw: bytes, name: str, number: int) -> tuple[dict | None, Problem | None]:
    """One line's object, or the problem that keeps it from being a row."""
    def problem(reason: str, field: str = "") -> tuple[None, Problem]:
        return None, Problem(name, number, field, reason)

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return problem(f"not UTF-8 ({exc.reason} at byte {exc.start})")
    if not text.strip():
        return problem("empty line")
    try:
        value = parse_line(text)
    except json.JSONDecodeError as exc:
        return problem(f"not valid JSON: {exc.msg} (column {exc.colno})")
    except _BadNumber as exc:
        return problem(f"not a usable number: {exc}")
    except RecursionError:
        return problem("not valid JSON: nested too deeply")
    except ValueError as exc:  # any other refusal of the parser
        return problem(f"not valid JSON: {str(exc)[:200]}")
    if not isinstance(value, dict):
        return problem(f"a row must be a JSON object, got {_kind(value)}")
    if _too_deep(value):
        return problem(f"nested more than {MAX_DEPTH} levels deep")
    if SURROGATE_ESCAPE.search(raw):
        field = _surrogate_field(value)
        if field is not None:
            return problem("a lone UTF-16 surrogate (e.g. \\ud83d without its pair): not valid Unicode text", field)
    return value, None


def read_jsonl(path: str | Path) -> tuple[list[tuple[int, dict]], list[Problem]]:
    """Parse a JSONL file into (line number, object) pairs, collecting the lines that do not parse."""
    rows: list[tuple[int, dict]] = []
    problems: list[Problem] = []
    for number, row, problem in iter_jsonl(path):
        if problem is not None:
            problems.append(problem)
        elif row is not None:
            rows.append((number, row))
    return rows, problems


def _too_deep(value: Any) -> bool:
    """Whether a parsed row nests deeper than MAX_DEPTH (such rows would break every later json.dumps)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def check_row(row: dict, *, file: str = "<rows>", line: int = 0, method: str = "reinforcement") -> list[Problem]:
    """The problems of one row on its own (schema, roles, types, field names) in the format of `method`
    (reinforcement, supervised or dpo: openrft.data.formats)."""
    from openrft.data.formats import check_dpo_row, check_sft_row

    problems: list[Problem] = []

    def add(field: str, reason: str) -> None:
        problems.append(Problem(file, line, field, reason))

    if not row:
        add("", "empty row")
        return problems
    if method == "supervised":
        check_sft_row(row, add)
        return problems
    if method == "dpo":
        check_dpo_row(row, add)
        return problems
    if "messages" not in row:
        add("messages", "missing (every row needs the prompt as a list of messages)")
    else:
        _check_messages(row["messages"], add)
    if "tools" in row:
        found = len(problems)
        _check_tools(row["tools"], add)
        if len(problems) == found and row["tools"]:  # then as the engine will read them, with tool_choice
            _check_tool_use(row, add)
    for key in row:
        if key in RESERVED_KEYS:
            continue
        if not FIELD_NAME.match(key):
            add(key, "graders cannot address this reference field as {{ item.<key> }}: "
                     "use letters, digits and underscores, not starting with a digit")
    return problems


def _check_messages(messages: Any, add, *, field: str = "messages", allow_system: bool = False,
                    last_user: bool = True) -> None:
    """The messages of a row: roles, keys, content types. RFT prompts (the defaults) have no `system` role and
    end with the user's turn; SFT conversations and DPO inputs (openrft.data.formats) allow both."""
    if not isinstance(messages, list):
        add(field, f"must be a list of messages, got {_kind(messages)}")
        return
    if not messages:
        add(field, "empty: at least one user message is needed")
        return
    for i, message in enumerate(messages):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            add(where, f"a message must be an object, got {_kind(message)}")
            continue
        role = message.get("role")
        if role is None:
            add(f"{where}.role", "missing")
            continue
        if role == "system" and allow_system:
            role = "developer"  # the same keys and content rules
        elif role == "system":
            add(f"{where}.role", "RFT rows have no 'system' role: put instructions in a 'developer' "
                                 "message or at the start of the user message")
            continue
        if role not in ROLES:
            add(f"{where}.role", f"unknown role {role!r} (allowed: {', '.join(ROLES)})")
            continue
        for key in sorted(set(message) - MESSAGE_KEYS[role] - {"role"}):
            add(f"{where}.{key}", f"not a key of a {role} message")
        content = message.get("content")
        if role in ("developer", "user", "tool"):
            _check_content(content, f"{where}.content", add, required=True)
        else:  # assistant: content may be null when the turn only calls tools
            if content is None and not message.get("tool_calls"):
                add(f"{where}.content", "an assistant message needs content or tool_calls")
            elif content is not None:
                _check_content(content, f"{where}.content", add, required=False)
            weight = message.get("weight", 0)
            if isinstance(weight, bool) or weight not in (0, 1):
                add(f"{where}.weight", f"must be 0 or 1, got {weight!r}")
            if "tool_calls" in message and not isinstance(message["tool_calls"], list):
                add(f"{where}.tool_calls", f"must be a list, got {_kind(message['tool_calls'])}")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            add(f"{where}.tool_call_id", "a tool message needs the string id of the call it answers")
    last = messages[-1]
    if last_user and isinstance(last, dict) and last.get("role") in ROLES and last.get("role") != "user":
        add(f"{field}[{len(messages) - 1}].role",
            f"the last message must be the user's turn (the one the model answers), got {last.get('role')!r}")


def _check_content(content: Any, where: str, add, *, required: bool) -> None:
    if isinstance(content, str):
        if required and not content.strip():
            add(where, "empty text")
        return
    if isinstance(content, list):
        if not content:
            add(where, "empty list of content parts")
        for j, part in enumerate(content):
            part_where = f"{where}[{j}]"
            if not isinstance(part, dict):
                add(part_where, f"a content part must be an object, got {_kind(part)}")
                continue
            kind = part.get("type")
            if kind not in CONTENT_PART_TYPES:
                add(f"{part_where}.type", f"unsupported content part {kind!r} (allowed: "
                                          f"{', '.join(sorted(CONTENT_PART_TYPES))}; no audio or files in RFT)")
            elif kind in ("text", "input_text") and not isinstance(part.get("text"), str):
                add(f"{part_where}.text", "a text part needs a string 'text'")
        return
    if content is None:
        add(where, "missing")
    else:
        add(where, f"must be a string or a list of content parts, got {_kind(content)}")


def _check_tool_use(row: dict, add) -> None:
    """A row's `tools`, `tool_choice` and `parallel_tool_calls` as the engine reads them (openrft.engines.tools),
    so that a row the trainer would fail to sample is refused here."""
    from openrft.engines.base import EngineError
    from openrft.engines.tools import check_tools_grammar, tool_use

    if "parallel_tool_calls" in row and not isinstance(row["parallel_tool_calls"], bool):
        add("parallel_tool_calls", f"must be true or false, got {_kind(row['parallel_tool_calls'])}")
        return
    try:
        use = tool_use(row["tools"], row.get("tool_choice"), row.get("parallel_tool_calls"))
        if use is not None and use.constrained:  # the grammar of the calls is built for this row
            check_tools_grammar(use)
    except EngineError as exc:
        field, _, reason = str(exc).partition(": ")
        add(field, reason)


def _check_tools(tools: Any, add) -> None:
    if not isinstance(tools, list):
        add("tools", f"must be a list of function tools, got {_kind(tools)}")
        return
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            add(where, 'a tool must be {"type": "function", "function": {"name": ...}}')
            continue
        name = tool["function"].get("name")
        if not isinstance(name, str) or not name:
            add(f"{where}.function.name", "missing")
        elif name in seen:
            add(f"{where}.function.name", f"duplicate tool name {name!r}")
        else:
            seen.add(name)


class RowChecker:
    """Checks numbered rows one at a time: each row's own problems, duplicates and conflicts (kept as 16-byte
    digests, not rows), grader fields that are missing."""

    def __init__(self, *, file: str = "<rows>", item_fields: Iterable[str] = (), allow_duplicates: bool = False,
                 method: str = "reinforcement"):
        """`method`: the rows' format (reinforcement, supervised, dpo), or "auto": the first row's shape decides
        (openrft.data.formats.detect_method) and every row is checked in that format."""
        self.file, self.allow_duplicates, self.method = file, allow_duplicates, method
        self.item_fields = sorted(set(item_fields))
        self.seen_rows: dict[bytes, int] = {}
        self.seen_messages: dict[bytes, tuple[int, bytes]] = {}

    def check(self, line: int, row: dict) -> list[Problem]:
        file = self.file
        if self.method == "auto":
            from openrft.data.formats import detect_method

            self.method = detect_method(row)
        problems = check_row(row, file=file, line=line, method=self.method)
        if not row:
            return problems
        for name in self.item_fields:
            if name not in row:
                problems.append(Problem(file, line, name, f"the grader reads {{{{ item.{name} }}}} but this row has no "
                                                          f"'{name}'"))
        whole = _digest(row)
        if whole in self.seen_rows:
            if not self.allow_duplicates:
                problems.append(Problem(file, line, "", f"duplicate of line {self.seen_rows[whole]}"))
            return problems
        self.seen_rows[whole] = line
        if "messages" in row and self.method == "reinforcement":
            prompt = _digest(row["messages"])
            references = _digest({k: v for k, v in row.items() if k not in RESERVED_KEYS})
            if prompt in self.seen_messages and self.seen_messages[prompt][1] != references:
                problems.append(Problem(file, line, "messages", f"same prompt as line {self.seen_messages[prompt][0]} "
                                                                "but different reference fields (conflicting labels?)"))
            self.seen_messages.setdefault(prompt, (line, references))
        return problems


def check_rows(rows: list[tuple[int, dict]], *, file: str = "<rows>", item_fields: Iterable[str] = (),
               allow_duplicates: bool = False, method: str = "reinforcement") -> list[Problem]:
    """Problems of numbered rows: each row's own, duplicates and conflicts, grader fields that are missing.

    `item_fields` are the `item.<x>` names a grader reads; every row must have each of them.
    `allow_duplicates` accepts exact repeats (a deliberately oversampled file, e.g. a balanced export).
    """
    checker = RowChecker(file=file, item_fields=item_fields, allow_duplicates=allow_duplicates, method=method)
    return [problem for line, row in rows for problem in checker.check(line, row)]


def check_upload(path: str | Path, *, name: str | None = None, max_problems: int = 100) -> tuple[list[Problem], int]:
    """Check a file as it streams by: (the first `max_problems` problems, how many there are in all).

    Memory holds one line and a digest a row; problems are reported under `name` (the upload's file name).
    """
    file = name or str(path)
    checker = RowChecker(file=file, method="auto")  # an upload may hold rows of any of the three methods
    kept: list[Problem] = []
    total = 0
    for line, row, problem in iter_jsonl(path):
        if problem is not None:
            found = [problem._replace(file=file)]
        elif row is not None:
            found = checker.check(line, row)
        else:
            found = []
        total += len(found)
        kept.extend(found[: max(0, max_problems - len(kept))])
    return kept, total


def check_overlap(rows: list[tuple[int, dict]], other: list[tuple[int, dict]], *, file: str, other_file: str,
                  group_key: str | None = None) -> list[Problem]:
    """Rows of `file` whose prompt (or, with `group_key`, whose group) is also in `other_file`.

    The same row must not be in both the training and the validation file (OpenAI's rule); with a group key
    (EuroVoc: `celex_id`) a translation of a validation act in the training file is a leak too.
    """
    problems: list[Problem] = []
    other_prompts = {_canonical(row["messages"]): line for line, row in other if "messages" in row}
    other_groups = {_canonical(row[group_key]): line for line, row in other if group_key and group_key in row}
    for line, row in rows:
        if "messages" in row and _canonical(row["messages"]) in other_prompts:
            problems.append(Problem(file, line, "messages", f"the same prompt is in {other_file} line "
                                                            f"{other_prompts[_canonical(row['messages'])]}: a row "
                                                            "must not be in both training and validation files"))
        elif group_key and group_key in row and _canonical(row[group_key]) in other_groups:
            problems.append(Problem(file, line, group_key, f"group {row[group_key]!r} is also in {other_file} line "
                                                           f"{other_groups[_canonical(row[group_key])]}: a group must "
                                                           "not straddle training and validation"))
    return problems


def grader_item_fields(grader: dict | str | Path) -> tuple[set[str], list[Problem]]:
    """The top-level `item` fields a grader reads, or the problems of the grader itself.

    The grader may be a dict or a path to grader JSON; it is validated by `openrft.graders.parse_grader`
    and its fields come from `openrft.graders.template_variables` (templates, and python graders' source).
    """
    from openrft.graders import GraderValidationError, parse_grader, template_variables

    source = "<grader>"
    if not isinstance(grader, dict):
        source = str(grader)
        try:
            grader = json.loads(Path(grader).read_text())
        except FileNotFoundError:
            return set(), [Problem(source, 0, "", "grader file not found")]
        except json.JSONDecodeError as exc:
            return set(), [Problem(source, exc.lineno, "", f"not valid JSON: {exc.msg}")]
    try:
        spec = parse_grader(grader)
    except GraderValidationError as exc:
        return set(), [Problem(source, 0, field, reason) for field, reason in exc.problems]
    return set(template_variables(spec)), []


def check_file(path: str | Path, *, grader: dict | str | Path | None = None, against: str | Path | None = None,
               group_key: str | None = None, allow_duplicates: bool = False,
               method: str = "reinforcement") -> list[Problem]:
    """Every problem of a JSONL file (optionally against its grader and the other file of the pair), its rows
    in the format of `method` (reinforcement, supervised, dpo, or "auto": the first row's shape)."""
    rows, problems = read_jsonl(path)
    fields: set[str] = set()
    if grader is not None:
        fields, grader_problems = grader_item_fields(grader)
        problems += grader_problems
    problems += check_rows(rows, file=str(path), item_fields=fields, allow_duplicates=allow_duplicates, method=method)
    if against is not None:
        other, other_problems = read_jsonl(against)
        problems += [p for p in other_problems if p.line == 0]  # a missing other file; its own lines are its business
        problems += check_overlap(rows, other, file=str(path), other_file=str(against), group_key=group_key)
    return sorted(problems, key=lambda p: (p.file != str(path), p.file, p.line))


def load_rows(path: str | Path, *, grader: dict | str | Path | None = None, against: str | Path | None = None,
              group_key: str | None = None, allow_duplicates: bool = False,
              method: str = "reinforcement") -> list[dict]:
    """The rows of a JSONL file, refused with `DatasetError` (listing every problem) unless all are valid."""
    problems = check_file(path, grader=grader, against=against, group_key=group_key, allow_duplicates=allow_duplicates,
                          method=method)
    if problems:
        raise DatasetError(problems)
    return [row for _, row in read_jsonl(path)[0]]


def validate_rows(rows: list[dict], *, source: str = "<rows>", item_fields: Iterable[str] = (),
                  allow_duplicates: bool = False, method: str = "reinforcement") -> list[dict]:
    """Check rows built in memory (a task's rows) the same way as a file; raise `DatasetError` on problems."""
    problems = check_rows(list(enumerate(rows, start=1)), file=source, item_fields=item_fields,
                          allow_duplicates=allow_duplicates, method=method)
    if problems:
        raise DatasetError(problems)
    return rows


def write_rows(rows: Iterable[dict], path: str | Path) -> Path:
    """Write rows as UTF-8 JSONL (one object per line), creating the folder; atomic on the same filesystem, also
    when several processes write the same file at once (each writes its own temporary file; the last rename wins)."""
    import os
    import uuid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _digest(value: Any) -> bytes:
    """A 16-byte digest of a value's canonical JSON (what the duplicate checks remember of a row)."""
    return hashlib.blake2b(_canonical(value).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
