"""Issue 20's attacks on the python-grader sandbox: one grade cannot reach the protocol, another grader's or
another caller's grades or the host.

The isolation unit is the *batch*: the grades of one `run_many` call (one source, one caller) that one worker
runs in one process in one turn. Files end with their grade; module state, threads and processes end with
their batch; nothing is shared between batches, so never between graders, requests or callers."""

from __future__ import annotations

import os
import platform
import threading
import time

import pytest

from openrft.graders import build_grader
from openrft.graders.sandbox import (
    MAX_ANSWER_BYTES,
    SandboxLimits,
    SandboxPool,
    SandboxUnavailable,
    _Worker,
    _WorkerGone,
    check_sandbox,
    sandbox_caller,
)

LIMITS = SandboxLimits(wall_time_s=2.0, cpu_time_s=2.0, memory_bytes=1024**3, grace_s=2.0, queue_timeout_s=20.0)
VICTIM = "def grade(sample, item):\n    return 0.1\n"
SAMPLE = {"output_text": "", "output_json": None, "output_tools": [], "choices": []}


@pytest.fixture(scope="module")
def pool():
    try:
        check_sandbox(LIMITS)
    except SandboxUnavailable as exc:
        pytest.skip(f"{exc} (scripts/setup_debian.sh installs bubblewrap)")
    with SandboxPool(workers=3, limits=LIMITS) as shared:
        yield shared.start()


def grade(pool, source, item=None):
    return build_grader({"type": "python", "name": "py", "source": source}, sandbox=pool).grade(SAMPLE, item or {})


def victim_rewards(pool, count=6):
    grader = build_grader({"type": "python", "name": "victim", "source": VICTIM}, sandbox=pool)
    return [g.reward for g in grader.grade_many([(SAMPLE, {})] * count)]


def test_forged_answers_on_the_protocol_descriptors_reach_nobody(pool):
    forger = ("import os\ndef grade(sample, item):\n    for fd in range(3, 64):\n        try:\n"
              "            os.write(fd, b'{\"reward\": 1.0}\\n' * 50)\n        except OSError:\n            pass\n"
              "    return 0.0\n")
    for _ in range(4):
        grade(pool, forger)
    assert victim_rewards(pool, 12) == [0.1] * 12


def test_the_protocol_descriptors_are_closed_and_the_worker_s_proc_files_closed_to_grades(pool):
    source = ("import os\ndef grade(sample, item):\n    reached = 0\n    for fd in (3, 4):\n        try:\n"
              "            os.fstat(fd)\n            reached += 1\n        except OSError:\n            pass\n"
              "    for name in ('fd/3', 'fd/4', 'mem', 'environ'):\n        try:\n"
              "            open(f'/proc/{os.getppid()}/{name}', 'rb').close()\n            reached += 10\n"
              "        except OSError:\n            pass\n    return reached\n")
    result = grade(pool, source)
    assert result.error_kind is None and result.reward == 0.0


def test_a_thread_started_with__thread_cannot_answer_later_requests(pool):
    source = ("import _thread, os, time\ndef forge():\n    while True:\n        for fd in range(3, 64):\n"
              "            try:\n                os.write(fd, b'{\"reward\": 1.0}\\n')\n            except OSError:\n"
              "                pass\n        time.sleep(0.001)\n"
              "def grade(sample, item):\n    _thread.start_new_thread(forge, ())\n    time.sleep(0.05)\n    return 0.0\n")
    grade(pool, source)  # it may forge its own answer (it could return 1.0 as well); nothing else
    assert victim_rewards(pool, 12) == [0.1] * 12


def test_module_state_does_not_outlive_a_batch(pool):
    source = ("import builtins, json\ndef grade(sample, item):\n    seen = getattr(json, 'openrft_seen', 0)\n"
              "    json.openrft_seen = seen + 1\n    builtins.openrft_seen = True\n    return seen\n")
    assert [grade(pool, source).reward for _ in range(6)] == [0.0] * 6
    check = "import builtins\ndef grade(sample, item):\n    return float(hasattr(builtins, 'openrft_seen'))\n"
    assert grade(pool, check).reward == 0.0


def test_files_under_a_mode_000_directory_do_not_survive(pool):
    writer = ("import os\ndef grade(sample, item):\n    for top in ('.', '/tmp', '/dev/shm'):\n"
              "        os.makedirs(f'{top}/hide/deeper', exist_ok=True)\n"
              "        open(f'{top}/hide/deeper/secret', 'w').write('previous grade')\n"
              "        os.chmod(f'{top}/hide/deeper', 0)\n        os.chmod(f'{top}/hide', 0)\n    return 1.0\n")
    reader = ("import os\ndef grade(sample, item):\n    left = 0\n    for top in ('.', '/tmp', '/dev/shm'):\n"
              "        for root, dirs, files in os.walk(top):\n"
              "            left += sum(1 for name in dirs + files if name in ('hide', 'deeper', 'secret'))\n"
              "    return left\n")
    for _ in range(3):  # each worker
        assert grade(pool, writer).reward == 1.0
        result = grade(pool, reader)
        assert result.error_kind is None and result.reward == 0.0


def test_a_big_file_in_tmp_is_freed_after_its_grade(pool):
    writer = ("import os\ndef grade(sample, item):\n    os.makedirs('/tmp/big', exist_ok=True)\n"
              "    with open('/tmp/big/blob', 'wb') as out:\n        out.write(b'x' * (200 * 1024 * 1024))\n"
              "    os.chmod('/tmp/big', 0)\n    os.statvfs('/tmp')\n    return 1.0\n")
    used = ("import os\ndef grade(sample, item):\n    s = os.statvfs('/tmp')\n"
            "    return (s.f_blocks - s.f_bfree) * s.f_frsize / 2**20\n")
    for _ in range(3):
        assert grade(pool, writer).reward == 1.0
        assert grade(pool, used).reward < 1.0  # MB still used in /tmp
    memfd = ("import os\ndef grade(sample, item):\n    fd = os.memfd_create('keep')\n"
             "    os.write(fd, b'x' * (64 * 1024 * 1024))\n    if os.fork() == 0:\n"
             "        import time\n        time.sleep(60)\n    return 1.0\n")
    assert grade(pool, memfd).reward == 1.0  # its forked holder is killed with the grade
    procs = "import os\ndef grade(sample, item):\n    return len([p for p in os.listdir('/proc') if p.isdigit()])\n"
    assert grade(pool, procs).reward == 3.0  # bwrap's init, the worker, this grade


@pytest.mark.skipif(platform.machine() != "x86_64", reason="system call numbers of x86-64")
def test_namespaces_mounts_ptrace_keyrings_and_bpf_are_refused(pool):
    source = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\ndef refused(result):\n"
              "    return result == -1 and ctypes.get_errno() in (1, 38)\n"  # EPERM, ENOSYS
              "def grade(sample, item):\n    checks = [\n"
              "        refused(libc.unshare(0x10000000)),\n"  # CLONE_NEWUSER
              "        refused(libc.unshare(0x00020000)),\n"  # CLONE_NEWNS
              "        refused(libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)),\n"  # clone(CLONE_NEWUSER | SIGCHLD)
              "        refused(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)),\n"
              "        refused(libc.ptrace(0, 0, None, None)),\n"  # PTRACE_TRACEME
              "        refused(libc.syscall(250, 0, 0, 0, 0, 0)),\n"  # keyctl
              "        refused(libc.syscall(321, 0, 0, 0)),\n"  # bpf
              "        refused(libc.syscall(323, 0)),\n"  # userfaultfd
              "    ]\n    return sum(checks)\n")
    result = grade(pool, source)
    assert result.error_kind is None and result.reward == 8.0


def test_threads_and_fork_still_work_under_the_filter(pool):
    source = ("import os, threading\ndef grade(sample, item):\n    box = []\n"
              "    worker = threading.Thread(target=box.append, args=(1,))\n    worker.start()\n    worker.join()\n"
              "    pid = os.fork()\n    if pid == 0:\n        os._exit(7)\n"
              "    return box[0] + os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n")
    assert grade(pool, source).reward == 8.0


def test_unterminated_output_on_the_answer_pipe_is_cut_at_64_kb(pool):
    source = ("import os, stat\ndef grade(sample, item):\n    for fd in range(3, 64):\n        try:\n"
              "            if stat.S_ISFIFO(os.fstat(fd).st_mode):\n                os.write(fd, b'x' * (16 * 2**20))\n"
              "        except OSError:\n            pass\n    return 1.0\n")
    started = time.perf_counter()
    result = grade(pool, source)
    assert result.error_kind == "python_grader_server_error"
    assert result.errors["python_grader_server_error_type"] == "answer_too_long"
    assert time.perf_counter() - started < 3
    assert victim_rewards(pool, 3) == [0.1] * 3


def test_the_pool_reads_a_worker_line_in_linear_time_and_refuses_one_over_64_kb():
    read_end, write_end = os.pipe()
    worker = object.__new__(_Worker)
    worker.fd, worker.buffer, worker.scanned = read_end, bytearray(), 0

    def flood():
        try:
            for _ in range(64):
                os.write(write_end, b"y" * 65536)
        except OSError:
            pass

    writer = threading.Thread(target=flood, daemon=True)
    writer.start()
    started = time.perf_counter()
    with pytest.raises(_WorkerGone, match="over 65,536 bytes"):
        worker.read_line(time.monotonic() + 10)
    assert time.perf_counter() - started < 2
    assert len(worker.buffer) <= MAX_ANSWER_BYTES + 65536
    os.close(read_end)
    os.close(write_end)
    writer.join(5)


def test_a_30_mb_exception_message_comes_back_cut(pool):
    result = grade(pool, "def grade(sample, item):\n    raise ValueError('x' * (30 * 2**20))\n")
    details = result.errors["python_grader_runtime_error_details"]
    assert result.error_kind == "python_grader_runtime_error"
    assert "ValueError" in details and "31,457,280 characters in all" in details
    assert len(details) < 12_000


@pytest.mark.parametrize("value, words", [
    ("10**400", "OverflowError"), ("1e308", "outside the allowed range"), ("-2e6", "outside the allowed range"),
    ("float('inf')", "finite"), ("True + 1e300", "outside the allowed range"),
])
def test_huge_and_non_finite_rewards_are_runtime_errors(pool, value, words):
    result = grade(pool, f"def grade(sample, item):\n    return {value}\n")
    assert result.reward == 0.0 and result.error_kind == "python_grader_runtime_error", result.errors
    assert words in result.errors["python_grader_runtime_error_details"]


def test_sleeping_graders_of_one_caller_leave_a_worker_to_others(pool):
    sleeper = "import time\ndef grade(sample, item):\n    time.sleep(1.5)\n    return 1.0\n"
    background = threading.Thread(target=lambda: build_grader(
        {"type": "python", "name": "sleepy", "source": sleeper}, sandbox=pool).grade_many([(SAMPLE, {})] * 6))
    background.start()
    time.sleep(0.3)  # the sleepers hold their share (2 of the 3 workers)
    try:
        started = time.perf_counter()
        assert victim_rewards(pool, 4) == [0.1] * 4
        assert time.perf_counter() - started < 1.0
    finally:
        background.join()


def test_a_grade_that_cannot_get_a_worker_times_out_in_the_queue():
    limits = SandboxLimits(wall_time_s=3.0, cpu_time_s=3.0, memory_bytes=1024**3, grace_s=2.0, queue_timeout_s=0.5)
    try:
        check_sandbox(limits)
    except SandboxUnavailable as exc:
        pytest.skip(str(exc))
    sleeper = "import time\ndef grade(sample, item):\n    time.sleep(2.5)\n    return 1.0\n"
    with SandboxPool(workers=2, limits=limits) as small:
        small.start()
        hogs = [threading.Thread(target=lambda n=n: _as_caller(f"hog-{n}", small, sleeper)) for n in range(2)]
        for hog in hogs:
            hog.start()
        time.sleep(0.5)
        started = time.perf_counter()
        results = small.run_many(VICTIM, [(SAMPLE, {})] * 5)
        waited = time.perf_counter() - started
        for hog in hogs:
            hog.join()
    assert [r.error_type for r in results] == ["queue_timeout"] * 5
    assert waited < 1.5  # one wait for the batch, not one per grade


def _as_caller(name, pool, source, count=1):
    with sandbox_caller(name):
        pool.run_many(source, [(SAMPLE, {})] * count)


def test_a_caller_holds_at_most_its_share(pool):
    probe = "import time\ndef grade(sample, item):\n    time.sleep(0.3)\n    return 1.0\n"
    peak = []

    def watch(stop):
        while not stop.is_set():
            with pool._cond:
                peak.append(max(pool._held.values(), default=0))
            time.sleep(0.01)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    try:
        assert [r.reward for r in pool.run_many(probe, [(SAMPLE, {})] * 6)] == [1.0] * 6
    finally:
        stop.set()
        watcher.join()
    assert max(peak) == pool.share == pool.size - 1


def test_without_root_bwrap_disables_nested_user_namespaces_when_it_can(monkeypatch):
    # as root (these tests) the seccomp filter refuses unshare (above); otherwise bwrap's --disable-userns
    # is used too, where the installed bwrap has it
    from openrft.graders import sandbox

    if sandbox.bwrap_path() is None:
        pytest.skip("bubblewrap is not installed")
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    command = sandbox.sandbox_command(LIMITS, seccomp=7)
    assert command[command.index("--unshare-user"):].count("--disable-userns") == (
        "--disable-userns" in sandbox.bwrap_options())
    assert command[command.index("--seccomp") + 1] == "7"
    monkeypatch.setattr(sandbox, "bwrap_options", lambda: "")
    assert "--disable-userns" not in sandbox.sandbox_command(LIMITS)


STATEFUL = ("import json\ndef grade(sample, item):\n    seen = getattr(json, 'openrft_seen', [])\n"
            "    json.openrft_seen = seen + [item['who']]\n"
            "    return float(len(seen)) if all(who == item['who'] for who in seen) else -1.0\n")


def test_grades_of_different_callers_or_calls_never_share_a_process(pool):
    # the same source from two callers (and two calls of one caller) at once: a grade that sees another's
    # module state returns -1
    results = {}

    def run(who, caller):
        with sandbox_caller(caller):
            results[who] = pool.run_many(STATEFUL, [(SAMPLE, {"who": who})] * 40)

    runners = [threading.Thread(target=run, args=(who, caller))
               for who, caller in (("a1", "a"), ("a2", "a"), ("b", "b"))]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    for who, got in results.items():
        assert all(r.error is None and r.reward >= 0 for r in got), (who, [r for r in got if r.reward != 0][:3])


def test_module_state_may_carry_within_a_batch_and_never_past_it():
    try:
        check_sandbox(LIMITS)
    except SandboxUnavailable as exc:
        pytest.skip(str(exc))
    with SandboxPool(workers=2, limits=LIMITS, batch_seconds=30.0) as batched:
        first = [r.reward for r in batched.run_many(STATEFUL, [(SAMPLE, {"who": "x"})] * 8)]
        assert max(first) >= 1.0  # one worker (share 1): the 8 grades run in one process, one after another
        assert first == [float(n) for n in range(8)]
        assert [r.reward for r in batched.run_many(STATEFUL, [(SAMPLE, {"who": "y"})] * 3)] == [0.0, 1.0, 2.0]
    with SandboxPool(workers=2, limits=LIMITS, batch_grades=1) as per_grade:  # a process for every grade
        assert [r.reward for r in per_grade.run_many(STATEFUL, [(SAMPLE, {"who": "x"})] * 4)] == [0.0] * 4


def test_each_grade_of_a_batch_has_its_own_scratch_directory_and_empty_tmp(pool):
    # every grade looks for what earlier grades of its batch left (files under mode-000 directories
    # included) in its working directory, /tmp and /dev/shm, then leaves some itself
    source = ("import os\ndef grade(sample, item):\n    left = 0\n    for top in ('.', '/tmp', '/dev/shm'):\n"
              "        for root, dirs, files in os.walk(top):\n"
              "            left += sum(1 for name in dirs + files if name.startswith('left-'))\n"
              "    for top in ('.', '..', '/tmp', '/dev/shm'):\n"
              "        os.makedirs(f'{top}/left-dir/deeper', exist_ok=True)\n"
              "        open(f'{top}/left-dir/deeper/left-file', 'w').write('earlier grade')\n"
              "        os.chmod(f'{top}/left-dir', 0)\n"
              "    return left\n")
    results = pool.run_many(source, [(SAMPLE, {})] * 12)
    assert [(r.error, r.reward) for r in results] == [(None, 0.0)] * 12


def test_a_line_written_out_of_turn_ends_the_batch(pool):
    # each grade writes a forged answer line on its answer pipe before its real one: the forged line (not
    # numbered) is refused, and the batch ends there, so the real answer is never taken as the next grade's
    forger = ("import os, stat, fcntl\ndef grade(sample, item):\n    for fd in range(3, 64):\n        try:\n"
              "            if stat.S_ISFIFO(os.fstat(fd).st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_WRONLY:\n"
              "                os.write(fd, b'{\"reward\": 9.0}\\n')\n"
              "        except OSError:\n            pass\n    return 0.0\n")
    results = pool.run_many(forger, [(SAMPLE, {})] * 8)
    assert [r.error_type for r in results] == ["protocol"] * 8, [(r.reward, r.error_type) for r in results]
    assert victim_rewards(pool, 6) == [0.1] * 6


def test_a_forging_thread_in_a_batch_reaches_no_other_caller(pool):
    forger = ("import _thread, os, time\ndef forge():\n    while True:\n        for fd in range(3, 64):\n"
              "            try:\n                os.write(fd, b'{\"reward\": 1.0, \"n\": 1}\\n')\n"
              "            except OSError:\n                pass\n        time.sleep(0.001)\n"
              "def grade(sample, item):\n    _thread.start_new_thread(forge, ())\n    time.sleep(0.01)\n    return 0.0\n")
    background = threading.Thread(target=_as_caller, args=("forger", pool, forger, 30))
    background.start()
    try:
        with sandbox_caller("victim"):
            assert victim_rewards(pool, 30) == [0.1] * 30
    finally:
        background.join()


def test_a_failing_grade_ends_its_batch_and_the_rest_are_graded_in_a_fresh_one(pool):
    # crashes, timeouts and over-long answers in the middle of batches: every other grade still gets its own
    # reward, from a process its failed batch-mate never ran in (a grade sees no module state of a failed one)
    source = ("import json, os, time\ndef grade(sample, item):\n    kind = item['kind']\n"
              "    if getattr(json, 'openrft_failed', False):\n        return -1.0\n"
              "    if kind == 'exit':\n        json.openrft_failed = True\n        os._exit(3)\n"
              "    if kind == 'sleep':\n        json.openrft_failed = True\n"
              "        while True:\n            try:\n                time.sleep(10)\n            except BaseException:\n"
              "                pass\n"
              "    return item['value']\n")
    kinds = ["ok", "ok", "exit", "ok", "ok", "ok", "sleep", "ok", "exit", "ok", "ok", "ok"]
    items = [{"kind": kind, "value": float(number)} for number, kind in enumerate(kinds)]
    results = pool.run_many(source, [(SAMPLE, item) for item in items])
    for number, (kind, result) in enumerate(zip(kinds, results)):
        if kind == "ok":
            assert (result.error, result.reward) == (None, float(number)), (number, result)
        else:
            assert result.error == "server" and result.error_type == ("crashed" if kind == "exit" else "timeout")


def test_big_items_are_split_into_smaller_batches(pool, monkeypatch):
    from openrft.graders import sandbox

    monkeypatch.setattr(sandbox, "BATCH_BYTES", 300_000)
    sizes = []
    batch = pool._batch
    monkeypatch.setattr(pool, "_batch", lambda worker, key, source, pairs: sizes.append(len(pairs)) or batch(
        worker, key, source, pairs))
    source = "def grade(sample, item):\n    return float(len(item['text']) + item['n'])\n"
    items = [{"text": "x" * 100_000, "n": n} for n in range(10)]
    results = pool.run_many(source, [(SAMPLE, item) for item in items])
    assert [r.reward for r in results] == [100_000.0 + n for n in range(10)]
    assert sum(sizes) == 10 and max(sizes) == 3  # the pair that goes past 300 kB is the batch's last
