"""The sandboxed worker: runs user `grade(sample, item)` functions, one JSON request per line.

This file runs *inside* the sandbox (see sandbox.py), as a script, with the standard library only:
the sandbox shows it nothing of openrft. It reads requests on stdin and answers on stdout, one JSON
object per line:

    request:  {"key": <source hash>, "source": <str, only the first time a key is sent>,
               "sample": {...}, "item": {...}}
    answer:   {"reward": <float>} or {"error": "runtime"|"server", "type": <code>, "details": <str>}
              with "recycle": true when this worker should be replaced (it left threads behind).

Before the first request it applies the resource limits given as a JSON argument (address space,
file size, processes, open files, no core dumps). Each call runs under a wall-clock alarm and a CPU
time limit, with the user's prints captured; afterwards stray processes are killed, the scratch
directory emptied and the working directory restored. A child forked by user code never answers.
"""

import builtins
import json
import math
import numbers
import os
import resource
import shutil
import signal
import sys
import threading
import time
import traceback

# The interpreter's folders (read-only binds). When the virtual environment lives under /tmp they sit inside
# the scratch space, and tidying must step around them: walking them after every call cost ~0.15 s a grade.
PROTECTED = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path) if p})


def _protected(path):
    return any(p == path or p.startswith(path + os.sep) for p in PROTECTED)


class GradeTimeout(BaseException):
    """Raised in user code when a call runs past its wall-clock or CPU time limit."""


def _on_alarm(signum, frame):
    raise GradeTimeout("wall-clock time limit exceeded")


def _on_cpu(signum, frame):
    raise GradeTimeout("CPU time limit exceeded")


def drop_privileges(uid):
    """As root (bwrap without a user namespace): become `uid`, losing every capability."""
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if os.geteuid() == 0 or os.getegid() == 0:
        raise SystemExit("the sandbox worker must not run as root")


def apply_limits(limits):
    """Hard resource limits for the whole worker; user code cannot raise them again."""
    for name, value in (("RLIMIT_AS", limits["memory_bytes"]), ("RLIMIT_FSIZE", limits["disk_bytes"]),
                        ("RLIMIT_NPROC", limits["max_processes"]), ("RLIMIT_NOFILE", limits["max_open_files"]),
                        ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))
    cpu_hard = int(limits["cpu_time_s"] * limits.get("cpu_hard_factor", 50)) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write raises OSError(EFBIG) instead


def user_traceback(exc):
    """The traceback of an exception without the worker's own frames (the user's code only)."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__
              and not frame.filename.endswith("/sandbox/worker.py")]
    text = "".join(traceback.format_list(frames[-8:]))
    return ("Traceback (most recent call last):\n" + text if text else "") + "".join(
        traceback.format_exception_only(type(exc), exc))


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(source, name):
    """Run the grader's source in a fresh namespace and return its `grade` function."""
    namespace = {"__name__": "grader", "__builtins__": builtins}
    exec(compile(source, name, "exec"), namespace)
    grade = namespace.get("grade")
    if not callable(grade):
        raise TypeError("the source must define a function grade(sample, item)")
    import inspect

    try:
        inspect.signature(grade).bind(None, None)
    except TypeError:
        raise TypeError(f"grade{inspect.signature(grade)} must take exactly two arguments (sample, item)") from None
    except ValueError:  # builtins without a signature: let the call decide
        pass
    return grade


def as_reward(value):
    """The float reward, or an error message for a non-number, NaN or infinity."""
    if not isinstance(value, numbers.Real):
        return None, f"grade returned {type(value).__name__} {value!r:.80}, expected a float"
    reward = float(value)
    if not math.isfinite(reward):
        return None, f"grade returned {reward}, expected a finite float"
    return reward, None


def tidy(workdir, pid):
    """After a call: kill what user code left running, empty the scratch space, go back to workdir."""
    try:
        os.kill(-1, signal.SIGKILL)  # every process of this sandbox but init and ourselves
    except (ProcessLookupError, PermissionError):
        pass
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    for folder in (workdir, "/tmp", "/dev/shm"):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(folder, entry)
            if path == workdir or _protected(path):
                continue
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass
    try:
        os.chdir(workdir)
    except OSError:
        pass


def call(grade, sample, item, limits):
    """Run one grade under the per-call limits; return the answer dict."""
    captured = _Capture(limits.get("max_output_chars", 4000))
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGXCPU, _on_cpu)
    soft = int(cpu_seconds() + limits["cpu_time_s"]) + 1
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))
    signal.setitimer(signal.ITIMER_REAL, limits["wall_time_s"])
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = captured
    try:
        value = grade(sample, item)
        answer = None
    except GradeTimeout as exc:
        answer = {"error": "server", "type": "timeout", "details": str(exc)}
    except MemoryError:
        answer = {"error": "runtime", "type": "memory", "details": "MemoryError: the memory limit was exceeded"}
    except SystemExit as exc:
        answer = {"error": "runtime", "type": "exit", "details": f"grade called sys.exit({exc.code!r})"}
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is a graded error
        answer = {"error": "runtime", "type": "exception", "details": user_traceback(exc)}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout, sys.stderr = stdout, stderr
    if answer is None:
        reward, problem = as_reward(value)
        answer = {"reward": reward} if problem is None else {"error": "runtime", "type": "bad_return", "details": problem}
    if "error" in answer and captured.text:
        answer["details"] += "\n--- output ---\n" + captured.text
    return answer


class _Capture:
    """A stand-in for sys.stdout/stderr that keeps the first characters printed."""

    def __init__(self, limit):
        self.limit, self.parts, self.size = limit, [], 0

    def write(self, text):
        if self.size < self.limit:
            self.parts.append(str(text)[: self.limit - self.size])
            self.size += len(self.parts[-1])
        return len(text)

    def flush(self):
        pass

    @property
    def text(self):
        return "".join(self.parts)


def main():
    limits = json.loads(sys.argv[1])
    pid = os.getpid()
    workdir = os.getcwd()
    # The protocol gets private copies of stdin/stdout; fd 0 and 1 then point where user code cannot
    # disturb the protocol (os.write(1, ...) ends up in stderr, which the pool discards).
    requests = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    apply_limits(limits)
    drop_privileges(limits.get("run_as_uid"))
    loaded = {}
    answers.write(json.dumps({"ready": True, "pid": pid, "python": sys.version.split()[0]}).encode() + b"\n")
    for line in requests:
        started = time.perf_counter()
        request = json.loads(line)
        key = request["key"]
        answer = None
        if "source" in request:
            signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limits["wall_time_s"])
            try:
                loaded[key] = load(request["source"], f"<grader {key[:12]}>")
            except GradeTimeout as exc:
                answer = {"error": "server", "type": "timeout", "details": f"loading the source: {exc}"}
            except BaseException as exc:  # noqa: BLE001 - a source that fails to load is a graded error
                answer = {"error": "runtime", "type": "load", "details": user_traceback(exc)}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if answer is None:
            grade = loaded.get(key)
            if grade is None:
                answer = {"error": "server", "type": "unknown_source", "details": f"source {key[:12]} not loaded"}
            else:
                answer = call(grade, request["sample"], request["item"], limits)
        if os.getpid() != pid:  # a child forked by user code: never answer, never linger
            os._exit(0)
        tidy(workdir, pid)
        if threading.active_count() > 1 or cpu_seconds() > resource.getrlimit(resource.RLIMIT_CPU)[1] / 2:
            answer["recycle"] = True  # threads left behind, or half of the worker's lifetime CPU spent
        answer["seconds"] = time.perf_counter() - started
        answers.write(json.dumps(answer).encode() + b"\n")
        if answer.get("recycle"):
            os._exit(0)


if __name__ == "__main__":
    main()
