"""Issue 20's bad inputs: refused at the door with file, line, field and reason (HTTP 400, `openrft data
check` exit 2), in bounded time and memory, without blocking the API; graders' own inputs bounded."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc

import pytest

from tests.reliability.conftest import AUTH, assert_openai_error


def row(**extra) -> dict:
    """A valid row whose prompt differs with its reference fields (no two rows conflict)."""
    return {"messages": [{"role": "user", "content": f"Label this: {sorted(extra.items())}"}], **extra}


def jsonl(*rows) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def upload(client, data: bytes, name: str = "train.jsonl"):
    return client.post("/v1/files", headers=AUTH, files={"file": (name, data)}, data={"purpose": "fine-tune"})


def refused(response) -> dict:
    error = assert_openai_error(response, 400)
    assert error["code"] in ("invalid_file_format", None) and error["param"] == "file", error
    return error


def test_a_5000_digit_integer_is_refused_with_its_line(client, data_home):
    data = jsonl(row(label="a")) + b'{"messages": [{"role": "user", "content": "x"}], "n": ' + b"7" * 5000 + b"}\n"
    error = refused(upload(client, data))
    assert [(p["file"], p["line"]) for p in error["problems"]] == [("train.jsonl", 2)]
    assert "5,000 digits" in error["problems"][0]["reason"]
    assert list((data_home / "files").iterdir()) == []


def test_a_lone_surrogate_is_refused_with_its_field(client):
    data = jsonl(row(label="a")) + b'{"messages": [{"role": "user", "content": "hi \\ud83d"}]}\n'
    error = refused(upload(client, data))
    assert [(p["line"], p["field"]) for p in error["problems"]] == [(2, "messages[0].content")]
    assert "surrogate" in error["problems"][0]["reason"]
    paired = jsonl(row(label="\U0001F600"))  # json.dumps writes the pair \ud83d\ude00: a valid emoji
    assert upload(client, paired).status_code == 200


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"1e999"])
def test_non_finite_numbers_are_refused(client, value):
    data = b'{"messages": [{"role": "user", "content": "x"}], "w": ' + value + b"}\n"
    error = refused(upload(client, data))
    assert error["problems"][0]["line"] == 1 and "number" in error["problems"][0]["reason"]


def test_many_bad_lines_give_a_short_error_with_the_count(client):
    data = b"not json\n" * 5000
    response = upload(client, data)
    error = refused(response)
    assert len(error["problems"]) == 100 and error["problem_count"] == 5000
    assert "and 4950 more" in error["message"]
    assert len(response.content) < 64 * 1024


def test_an_over_long_line_is_refused_without_being_read_whole(client, monkeypatch):
    from openrft.data import validate

    monkeypatch.setattr(validate, "MAX_LINE_BYTES", 4096)
    data = jsonl(row(label="a")) + jsonl(row(label="b" * 10_000)) + jsonl(row(label="c"))
    error = refused(upload(client, data))
    assert [p["line"] for p in error["problems"]] == [2]
    assert "longer than 4,096 bytes" in error["problems"][0]["reason"]


def test_an_over_long_upload_is_refused_while_it_streams_in(client, data_home, monkeypatch):
    from openrft.service import files

    monkeypatch.setattr(files, "MAX_UPLOAD_BYTES", 64 * 1024)
    response = upload(client, jsonl(*(row(label=str(n)) for n in range(5000))))
    assert "larger than 65,536 bytes" in assert_openai_error(response, 400)["message"]
    assert list((data_home / "files").iterdir()) == []


def test_a_sparse_1_gb_file_is_refused_unread(tmp_path):
    from openrft.data.validate import MAX_FILE_BYTES, check_upload, read_jsonl

    sparse = tmp_path / "sparse.jsonl"
    with sparse.open("wb") as out:
        out.truncate(1024**3)
    started = time.perf_counter()
    problems, total = check_upload(sparse)
    assert total == 1 and problems[0].line == 0 and f"{MAX_FILE_BYTES:,}" in problems[0].reason
    assert read_jsonl(sparse)[1] == problems
    assert time.perf_counter() - started < 1


def test_checking_an_upload_holds_one_line_not_the_file(tmp_path):
    from openrft.data.validate import check_upload

    big = tmp_path / "big.jsonl"
    with big.open("wb") as out:
        for n in range(2000):
            out.write(jsonl(row(label=str(n), document="lorem ipsum " * 1700)))  # ~20 kB a row, 40 MB
    tracemalloc.start()
    try:
        problems, total = check_upload(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (problems, total) == ([], 0)
    assert peak < 4 * 1024**2, peak  # the file is 40 MB


def test_an_upload_being_checked_does_not_block_the_api(client, monkeypatch):
    from openrft.data import validate

    real = validate.check_upload

    def slow_check(*args, **kwargs):
        time.sleep(2.0)  # a long check (a big file) that holds no lock of the server
        return real(*args, **kwargs)

    monkeypatch.setattr(validate, "check_upload", slow_check)
    uploaded = {}
    uploader = threading.Thread(target=lambda: uploaded.update(response=upload(client, jsonl(row(label="a")))))
    uploader.start()
    time.sleep(0.3)
    started = time.perf_counter()
    listed = client.get("/v1/files", headers=AUTH)
    waited = time.perf_counter() - started
    uploader.join()
    assert listed.status_code == 200 and uploaded["response"].status_code == 200
    assert waited < 1.0, waited


def test_data_check_refuses_a_huge_integer_with_exit_2_and_no_traceback(tmp_path):
    from typer.testing import CliRunner

    from openrft.cli import app

    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"messages": [{"role": "user", "content": "x"}], "n": ' + b"9" * 5000 + b"}\n")
    result = CliRunner().invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "train.jsonl:1: (row): not a usable number: an integer of 5,000 digits" in " ".join(result.output.split())
    assert "Traceback" not in result.output


# --- graders' own inputs ---

@pytest.mark.parametrize("formula", ["a + \u0661", "\u0661\u0662 * a", "a + \uff11"])
def test_formulas_refuse_unicode_digits(formula):
    from openrft.graders.formula import Formula, FormulaError

    with pytest.raises(FormulaError, match="unexpected character"):
        Formula(formula)


def test_formulas_refuse_huge_results():
    from openrft.graders.formula import Formula, FormulaError

    assert Formula("a * 1000").evaluate({"a": 1.0}) == 1000.0
    with pytest.raises(FormulaError, match="outside"):
        Formula("a * 1e300").evaluate({"a": 1.0})


def test_text_similarity_refuses_inputs_past_the_cap_at_once():
    from openrft.graders import build_grader
    from openrft.graders.text_similarity import MAX_TEXT_CHARS

    grader = build_grader({"type": "text_similarity", "name": "fuzzy", "input": "{{ sample.output_text }}",
                           "reference": "{{ item.reference }}", "evaluation_metric": "fuzzy_match"})
    long = "word " * 200_000  # 1 MB
    started = time.perf_counter()
    grade = grader.grade({"output_text": long, "choices": []}, {"reference": "words " * 200_000})
    assert time.perf_counter() - started < 1
    assert grade.reward == 0.0 and grade.error_kind == "other_error"
    assert f"{len(long):,} characters; the limit is {MAX_TEXT_CHARS:,}" in grade.message
    short = grader.grade({"output_text": "abc", "choices": []}, {"reference": "abc"})
    assert short.reward == 1.0 and short.error_kind is None


def test_the_judge_cache_is_keyed_on_the_resolved_model_and_bounded(tmp_path, monkeypatch):
    from openrft import engines
    from openrft.graders import model_graders

    monkeypatch.setenv("OPENRFT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("OPENRFT_JUDGE_BASE_URL", raising=False)
    monkeypatch.setattr(model_graders, "_judges", type(model_graders._judges)())

    class Judge:
        closed = False

        def close(self):
            self.closed = True

    built = []
    monkeypatch.setattr(engines, "get_engine", lambda name, **kwargs: built.append(name) or Judge())
    first = model_graders.default_judge_engine("default")
    assert model_graders.default_judge_engine("default ") is first
    assert model_graders.default_judge_engine(" default") is first
    assert len(built) == 1
    models = []
    for n in range(3):
        folder = tmp_path / f"model{n}"
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        models.append(model_graders.default_judge_engine(str(folder)))
    assert len(model_graders._judges) == model_graders.MAX_JUDGES
    assert first.closed and models[0].closed and not models[2].closed
    assert model_graders.default_judge_engine(str(tmp_path / "model2") + "/") is models[2]
