"""python graders (§3.7) in the sandbox: documented behaviour, and every attack of issue 3 ends in a
graded error with the pool still serving afterwards."""

import math
import os
import socket
import threading
import time

import pytest

from openrft.graders import build_grader, ready_grader
from openrft.graders.grade import Grade

from .conftest import json_sample, make_sample

EXACT = "def grade(sample, item) -> float:\n    return 1.0 if sample['output_text'] == item['answer'] else 0.0\n"


def python_grader(source, pool):
    return build_grader({"type": "python", "name": "py", "source": source}, sandbox=pool)


def assert_pool_serves(pool):
    grades = python_grader(EXACT, pool).grade_many([(make_sample("4"), {"answer": "4"}),
                                                    (make_sample("5"), {"answer": "4"})])
    assert [grade.reward for grade in grades] == [1.0, 0.0]
    assert all(grade.error_kind is None for grade in grades)


def test_documented_python_grader(pool):
    # §3.7: helpers, imports, classes and print are allowed; sample carries output_json
    source = ("import json\nfrom rapidfuzz import fuzz\n\nclass Scorer:\n    pass\n\n"
              "def helper(text):\n    return text.strip().lower()\n\n"
              "def grade(sample, item):\n    print('grading', item['id'])\n"
              "    answer = sample['output_json']['answer']\n"
              "    return fuzz.ratio(helper(answer), helper(item['answer'])) / 100\n")
    grade = python_grader(source, pool).grade(json_sample({"answer": " Paris "}), {"id": 1, "answer": "paris"})
    assert grade.reward == 1.0 and grade.error_kind is None and grade.type == "python"


def test_ints_and_numpy_floats_are_rewards(pool):
    source = "import numpy as np\ndef grade(sample, item):\n    return np.float64(0.25) + int(item['n'])\n"
    assert python_grader(source, pool).grade(make_sample(""), {"n": 1}).reward == 1.25


def test_grade_many_keeps_order_and_is_fast(pool):
    pairs = [(make_sample(str(i)), {"answer": str(i % 4)}) for i in range(400)]
    grader = python_grader(EXACT, pool)
    grader.grade_many(pairs[:10])  # load the source in the workers
    started = time.perf_counter()
    grades = grader.grade_many(pairs)
    per_grade = (time.perf_counter() - started) / len(pairs)
    assert [grade.reward for grade in grades] == [1.0 if i % 4 == i else 0.0 for i in range(400)]
    # a fork per grade: ~0.1-0.3 ms on an idle machine, tens of ms on a loaded 2-core one (tests run in parallel)
    assert per_grade < 0.05


def test_state_does_not_leak_through_the_scratch_directory(pool):
    writer = "import os\ndef grade(sample, item):\n    open('note.txt', 'w').write('x')\n    return len(os.listdir('.'))\n"
    reader = ("import os\ndef grade(sample, item):\n"
              "    return len(os.listdir('.')) + sum(name == 'note.txt' for name in os.listdir('/tmp'))\n")
    assert python_grader(writer, pool).grade(make_sample(), {}).reward == 1.0
    assert python_grader(reader, pool).grade(make_sample(), {}).reward == 0.0


def runtime_error(grade: Grade, words: str = "") -> None:
    assert grade.reward == 0.0
    assert grade.error_kind == "python_grader_runtime_error", grade.errors
    assert words in grade.errors["python_grader_runtime_error_details"]


def server_error(grade: Grade, kind: str) -> None:
    assert grade.reward == 0.0
    assert grade.error_kind == "python_grader_server_error", grade.errors
    assert grade.errors["python_grader_server_error_type"] == kind


@pytest.mark.parametrize("body, words", [
    ("    return 'a string'", "expected a float"),
    ("    return float('nan')", "nan"),
    ("    return float('inf')", "inf"),
    ("    return None", "NoneType"),
    ("    raise ValueError('bad input')", "ValueError: bad input"),
    ("    import sys\n    sys.exit()", "sys.exit"),
    ("    import sys\n    sys.exit(3)", "sys.exit(3)"),
    ("    return 1 / 0", "ZeroDivisionError"),
])
def test_bad_results_and_exceptions_are_runtime_errors(pool, body, words):
    runtime_error(python_grader(f"def grade(sample, item):\n{body}\n", pool).grade(make_sample(), {}), words)
    assert_pool_serves(pool)


def test_print_output_is_kept_in_the_error_details(pool):
    grade = python_grader("def grade(sample, item):\n    print('looking at', item)\n    raise KeyError('x')\n",
                          pool).grade(make_sample(), {"k": 1})
    runtime_error(grade, "looking at {'k': 1}")


def test_opening_a_socket_fails(pool):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    source = ("import socket\ndef grade(sample, item):\n"
              f"    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n    return 1.0\n")
    try:
        runtime_error(python_grader(source, pool).grade(make_sample(), {}), "Connection refused")  # its own loopback
        with pytest.raises(socket.timeout):
            server.accept()  # nothing reached the host
    finally:
        server.close()
    source = "import socket\ndef grade(sample, item):\n    socket.getaddrinfo('pypi.org', 443)\n    return 1.0\n"
    runtime_error(python_grader(source, pool).grade(make_sample(), {}), "gaierror")
    assert_pool_serves(pool)


def test_writing_outside_the_temporary_directory_fails(pool, tmp_path):
    target = tmp_path / "escaped.txt"
    for path in (target, "/usr/escaped.txt", "/escaped.txt", os.path.realpath(__file__)):
        source = f"def grade(sample, item):\n    open({str(path)!r}, 'a').write('x')\n    return 1.0\n"
        runtime_error(python_grader(source, pool).grade(make_sample(), {}), "Error")
    assert not target.exists()
    assert not os.path.exists("/usr/escaped.txt") and not os.path.exists("/escaped.txt")
    assert_pool_serves(pool)


def test_host_files_are_not_visible(pool):
    for path in ("/etc/shadow", "/etc/passwd", os.path.realpath(__file__), os.path.expanduser("~/.bashrc")):
        source = f"def grade(sample, item):\n    return len(open({path!r}).read())\n"
        runtime_error(python_grader(source, pool).grade(make_sample(), {}), "No such file")
    assert_pool_serves(pool)


def test_the_parents_environment_is_not_visible(pool, monkeypatch):
    monkeypatch.setenv("OPENRFT_SECRET_FOR_TEST", "hunter2")
    source = "import os\ndef grade(sample, item):\n    return float(len(os.environ['OPENRFT_SECRET_FOR_TEST']))\n"
    runtime_error(python_grader(source, pool).grade(make_sample(), {}), "KeyError")
    source = f"import os\ndef grade(sample, item):\n    return len(open('/proc/{os.getpid()}/environ').read())\n"
    runtime_error(python_grader(source, pool).grade(make_sample(), {}), "No such file")
    source = ("import os\ndef grade(sample, item):\n    found = 0\n    for pid in os.listdir('/proc'):\n"
              "        try:\n            found += b'hunter2' in open(f'/proc/{pid}/environ', 'rb').read()\n"
              "        except OSError:\n            pass\n    return float(found)\n")
    grade = python_grader(source, pool).grade(make_sample(), {})
    assert grade.reward == 0.0 and grade.error_kind is None


def test_fork_in_a_loop(pool):
    source = "import os\ndef grade(sample, item):\n    while True:\n        os.fork()\n"
    grade = python_grader(source, pool).grade(make_sample(), {})
    assert grade.reward == 0.0 and grade.error_kind in ("python_grader_runtime_error", "python_grader_server_error")
    assert_pool_serves(pool)


def test_allocating_10_gb(pool):
    runtime_error(python_grader("def grade(sample, item):\n    block = bytearray(10 * 1024 ** 3)\n    return 1.0\n",
                                pool).grade(make_sample(), {}), "memory")
    assert_pool_serves(pool)


def test_an_endless_loop_times_out(pool):
    started = time.perf_counter()
    server_error(python_grader("def grade(sample, item):\n    while True:\n        pass\n", pool)
                 .grade(make_sample(), {}), "timeout")
    assert time.perf_counter() - started < pool.limits.wall_time_s + pool.limits.grace_s + 1
    assert_pool_serves(pool)


def test_a_loop_that_swallows_the_timeout_is_killed(pool):
    # the worker kills the grade's process; the worker itself goes on
    source = ("def grade(sample, item):\n    while True:\n        try:\n            while True:\n"
              "                pass\n        except BaseException:\n            pass\n")
    replaced = pool.replaced
    started = time.perf_counter()
    server_error(python_grader(source, pool).grade(make_sample(), {}), "timeout")
    assert time.perf_counter() - started < pool.limits.wall_time_s + pool.limits.grace_s
    assert pool.replaced == replaced
    assert_pool_serves(pool)


def test_killing_the_parent(pool):
    # the grade's parent is its worker (same uid): killing it ends this grade only; the worker is replaced
    replaced = pool.replaced
    grade = python_grader("import os\ndef grade(sample, item):\n    os.kill(os.getppid(), 9)\n    return 1.0\n",
                          pool).grade(make_sample(), {})
    server_error(grade, "crashed")
    assert pool.replaced == replaced + 1
    assert_pool_serves(pool)


def test_a_grade_that_exits_is_crashed_and_the_worker_stays(pool):
    replaced = pool.replaced
    server_error(python_grader("import os\ndef grade(sample, item):\n    os._exit(1)\n", pool)
                 .grade(make_sample(), {}), "crashed")
    assert pool.replaced == replaced
    assert_pool_serves(pool)


def test_leftover_threads_end_with_their_grade(pool):
    source = ("import threading, time\ndef grade(sample, item):\n"
              "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n    return 0.5\n")
    counter = "import threading\ndef grade(sample, item):\n    return threading.active_count()\n"
    assert python_grader(source, pool).grade(make_sample(), {}).reward == 0.5
    assert python_grader(counter, pool).grade(make_sample(), {}).reward == 1.0
    assert_pool_serves(pool)


def test_wrong_signature_and_huge_source_past_validation(pool):
    # parse_grader rejects both (test_spec); the sandbox refuses them too if they reach it
    runtime_error(pool_grade(pool, "def grade(sample):\n    return 1.0\n"), "exactly two arguments")
    grade = pool_grade(pool, "def grade(sample, item):\n    return 1.0\n" + "#" * (1 << 20))
    runtime_error(grade, "the limit is 262,144")
    assert_pool_serves(pool)


def pool_grade(pool, source):
    from openrft.graders.python_grader import PythonGrader

    class Unchecked:  # a spec that skipped validation
        type, name = "python", "unchecked"

    Unchecked.source = source
    return PythonGrader(Unchecked, sandbox=pool).grade(make_sample(), {})


def test_concurrent_callers_share_the_pool(pool):
    grader = python_grader(EXACT, pool)
    results = {}

    def work(offset):
        results[offset] = [g.reward for g in grader.grade_many([(make_sample(str(i)), {"answer": str(offset)})
                                                                   for i in range(50)])]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for offset, rewards in results.items():
        assert rewards == [1.0 if i == offset else 0.0 for i in range(50)]


# --- the ready-made graders (python inside) ---

@pytest.mark.parametrize("predicted, reference, f1, precision, recall", [
    (["a", "b"], ["a", "b"], 1.0, 1.0, 1.0),
    (["a", "b", "c"], ["a", "b"], 0.8, 2 / 3, 1.0),
    (["a"], ["a", "b"], 2 / 3, 1.0, 0.5),
    (["x"], ["a"], 0.0, 0.0, 0.0),
    ([], [], 1.0, 1.0, 1.0),  # nothing to find, nothing predicted
    ([], ["a"], 0.0, 0.0, 0.0),  # empty prediction
    (["a"], [], 0.0, 0.0, 0.0),  # labels where none are expected
    ([" A ", "b", "b"], ["a", "B"], 1.0, 1.0, 1.0),  # case, spaces and duplicates do not count
])
def test_multilabel_f1(pool, predicted, reference, f1, precision, recall):
    grade = build_grader(ready_grader("multilabel_f1"), sandbox=pool).grade(json_sample({"labels": predicted}),
                                                                            {"labels": reference})
    assert grade.error_kind is None
    assert grade.reward == pytest.approx(f1)
    assert grade.sub_rewards == pytest.approx({"f1": f1, "precision": precision, "recall": recall})


def test_multilabel_f1_reads_labels_from_plain_text(pool):
    grader = build_grader(ready_grader("multilabel_f1"), sandbox=pool)
    for text in ("Labels: trade, agriculture", "- trade\n- agriculture\n", '["trade", "agriculture"]', "trade; agriculture"):
        grade = grader.grade(make_sample(text), {"labels": ["trade", "agriculture"]})
        assert grade.reward == 1.0, text


def test_multilabel_fbeta_weighs_recall(pool):
    grader = build_grader(ready_grader("multilabel_fbeta"), sandbox=pool)
    grade = grader.grade(json_sample({"labels": ["a", "b", "c", "d"]}), {"labels": ["a", "b"]})
    precision, recall = 0.5, 1.0
    assert grade.reward == pytest.approx(5 * precision * recall / (4 * precision + recall))


@pytest.mark.parametrize("answer, reward", [
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", 1.0),
    ("#### 72.0", 1.0),
    ("The answer is $72.", 1.0),
    ("so 70 at first, then 72 clips in total", 1.0),  # the last number counts
    ("#### 72 clips", 1.0),
    ("#### 71.5", 0.5),  # within 1 %: a rounding slip
    ("#### 70", 0.0),
    ("I do not know", 0.0),
])
def test_gsm8k_numeric(pool, answer, reward):
    item = {"answer": "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether.\n#### 72"}
    grade = build_grader(ready_grader("gsm8k_numeric"), sandbox=pool).grade(make_sample(answer), item)
    assert grade.error_kind is None and grade.reward == reward


def test_gsm8k_numeric_structured_and_with_commas(pool):
    grader = build_grader(ready_grader("gsm8k_numeric"), sandbox=pool)
    assert grader.grade(json_sample({"answer": 1234}), {"answer": "... #### 1,234"}).reward == 1.0
    assert grader.grade(json_sample({"answer": "1,234 dollars"}), {"answer": 1234}).reward == 1.0
    assert grader.grade(make_sample("-3/4"), {"answer": "#### -0.75"}).reward == 1.0
    assert not math.isnan(grader.grade(make_sample("#### 5"), {"answer": "no number"}).reward)


def test_workers_started_by_a_grading_thread_outlive_it(sandbox_limits):
    # bwrap's --die-with-parent follows the thread that started it: the pool starts workers from a
    # long-lived thread of its own, so grading threads that come and go do not take workers with them.
    from openrft.graders.sandbox import SandboxPool

    with SandboxPool(workers=2, limits=sandbox_limits) as fresh:
        grader = python_grader(EXACT, fresh)
        grader.grade_many([(make_sample("1"), {"answer": "1"})] * 4)  # workers start inside grading threads
        time.sleep(0.3)
        assert [grade.reward for grade in grader.grade_many([(make_sample("1"), {"answer": "1"})] * 4)] == [1.0] * 4
        assert fresh.replaced == 0
        assert all(worker.proc.poll() is None for worker in fresh._all)


def test_a_sandbox_that_cannot_start_is_a_graded_server_error_for_every_pair(monkeypatch):
    """Without bubblewrap (or when it cannot start), every pair gets python_grader_server_error, never a crash:
    the workers fail to start in the pool's threads and that failure reaches the grader."""
    from openrft.graders import sandbox

    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    with sandbox.SandboxPool(workers=2) as pool:
        grades = python_grader(EXACT, pool).grade_many([(make_sample("4"), {"answer": "4"})] * 3)
    assert [grade.reward for grade in grades] == [0.0, 0.0, 0.0]
    assert all(grade.error_kind == "python_grader_server_error" for grade in grades)
    assert "bubblewrap" in grades[0].message
