"""The sandboxed worker: runs the user's `grade(sample, item)` in a child process per batch of grades.

This file runs *inside* the sandbox (see sandbox.py), as a script, with the standard library only:
the sandbox shows it nothing of openrft. It reads batches on stdin and answers on stdout, one JSON
object per line:

    batch:    {"key": <source hash>, "source": <str, only the first time a key is sent>, "count": <n>,
               "seconds": <time budget>}, then n lines [sample, item] (the worker forwards them to the
               batch's process without parsing them; that process parses each when it runs its grade)
    answers:  n lines, in order: {"reward": <float>} or {"error": "runtime"|"server", "type": <code>,
              "details": <str>} or {"skipped": true} (not run: the batch ended early), each with "seconds",
              and "recycle": true when this worker should be replaced.

Before the first batch it applies the resource limits given as a JSON argument (address space,
file size, processes, open files, no core dumps), makes itself non-dumpable (processes of the same uid
cannot open its /proc files: its descriptors, its memory) and the subreaper of what its children leave.

The worker compiles each source once and imports the modules its top-level `import` statements name
(so that they are warm), but never runs user code itself. User code runs in a child forked for one
*batch*: the grades of one message, all of one source and one caller (see sandbox.py: a batch never mixes
graders, calls or callers). The child is forked ahead of its batch (so that the fork is not on its path):

- the child closes every descriptor but 0-2 and two fresh pipes (its batch in, one answer line per grade
  out) before it reads its batch: the worker's protocol descriptors are not reachable from user code;
- it runs in a new process group; each grade runs in a scratch directory of its own under /tmp (removed,
  with anything else the grade wrote to /tmp and /dev/shm, before the next grade), under a CPU-time limit
  and a wall-clock alarm, with the source loaded afresh (new globals); its answer carries its number;
- the worker reads at most MAX_ANSWER_BYTES of each answer, checks it (its number first) and sends it on;
  a grade that times out, crashes, writes too long a line or a line out of turn ends its batch there (the
  rest is answered "skipped", and the pool sends it again), as does the batch's time budget;
- after the batch the worker kills the child (its process group, then every process of the sandbox's
  uid), reaps them, and removes the batch's scratch directory and anything else written to /tmp and
  /dev/shm, making directories writable first (a mode-000 directory is removed too), before it reads the
  next batch.

Files of a grade end with it; module state, threads and processes of a grade end with its batch.
"""

import ast
import builtins
import ctypes
import functools
import gc
import importlib
import inspect
import itertools
import json
import math
import numbers
import os
import resource
import select
import shutil
import signal
import stat
import sys
import time
import traceback

MAX_ANSWER_BYTES = 64 * 1024  # one answer line from a grade's child (and from this worker to the pool)
MAX_DETAILS_CHARS = 10_000  # error details kept: escaped as JSON (6 bytes a character at most) they fit a line
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
# The interpreter's folders (read-only binds). When the virtual environment lives under /tmp they sit inside
# the scratch space, and tidying must step around them.
PROTECTED = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path) if p})


def _protected(path):
    return any(p == path or p.startswith(path + os.sep) for p in PROTECTED)


class GradeTimeout(BaseException):
    """Raised in user code when a call runs past its wall-clock or CPU time limit."""


def _on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise GradeTimeout("wall-clock time limit exceeded")


def _on_cpu(signum, frame):  # noqa: ARG001 - signal handler signature
    raise GradeTimeout("CPU time limit exceeded")


def drop_privileges(uid):
    """As root (bwrap without a user namespace): become `uid`, losing every capability."""
    if uid is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if os.geteuid() == 0 or os.getegid() == 0:
        raise SystemExit("the sandbox worker must not run as root")


def set_process_flags():
    """Not dumpable: same-uid processes (the grades) cannot open /proc/<worker>/fd, mem, environ. A child
    subreaper: the orphans of a grade become the worker's children, so it reaps them all after the grade."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 or libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("the sandbox worker could not set its process flags")


def apply_limits(limits):
    """Hard resource limits for the whole worker; user code cannot raise them again."""
    for name, value in (("RLIMIT_AS", limits["memory_bytes"]), ("RLIMIT_FSIZE", limits["disk_bytes"]),
                        ("RLIMIT_NPROC", limits["max_processes"]), ("RLIMIT_NOFILE", limits["max_open_files"]),
                        ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write raises OSError(EFBIG) instead


def cap_text(text, limit=MAX_DETAILS_CHARS):
    """`text` cut to `limit` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... (cut: {len(text):,} characters in all)"


def user_traceback(exc):
    """The traceback of an exception without the worker's own frames (the user's code only)."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__
              and not frame.filename.endswith("/sandbox/worker.py")]
    text = "".join(traceback.format_list(frames[-8:]))
    try:
        message = cap_text(str(exc), MAX_DETAILS_CHARS // 2)  # room for the frames and the output
    except BaseException:  # noqa: BLE001 - a __str__ that fails (or an int too large to print)
        message = "(the exception's message could not be shown)"
    return ("Traceback (most recent call last):\n" + text if text else "") + f"{type(exc).__name__}: {message}"


def compile_source(source, name):
    """The code object of a grader's source (compiling runs no user code)."""
    return compile(source, name, "exec")


def warm_imports(source):
    """Import, in the worker, the modules that the source's top-level `import` statements name."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    for name in names:
        if name not in sys.modules:
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = _Capture(0)
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - the grade's own import reports it
                pass
            finally:
                sys.stdout, sys.stderr = stdout, stderr


def takes_two_arguments(grade):
    """Whether grade(sample, item) binds; a plain function is checked from its code object (cheap in a child)."""
    code = getattr(grade, "__code__", None)
    if inspect.isfunction(grade) and code is not None:
        positional = code.co_argcount
        required = positional - len(grade.__defaults__ or ())
        varargs = bool(code.co_flags & inspect.CO_VARARGS)
        keyword_only = code.co_kwonlyargcount - len(grade.__kwdefaults__ or {})
        return required <= 2 and (positional >= 2 or varargs) and keyword_only == 0
    try:
        inspect.signature(grade).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # builtins without a signature: let the call decide
        pass
    return True


def load(code):
    """Run the grader's code in a fresh namespace and return its `grade` function."""
    namespace = {"__name__": "grader", "__builtins__": builtins}
    exec(code, namespace)
    grade = namespace.get("grade")
    if not callable(grade):
        raise TypeError("the source must define a function grade(sample, item)")
    if not takes_two_arguments(grade):
        try:
            shown = f"grade{inspect.signature(grade)}"
        except (TypeError, ValueError):
            shown = "grade"
        raise TypeError(f"{shown} must take exactly two arguments (sample, item)")
    return grade


def as_reward(value, max_abs):
    """The float reward, or an error message for a non-number, NaN, infinity or a value out of range."""
    if not isinstance(value, numbers.Real):
        return None, f"grade returned {type(value).__name__}, expected a float"
    try:
        reward = float(value)
    except (OverflowError, ValueError, TypeError) as exc:
        return None, f"grade returned a number that is not a float ({type(exc).__name__}: {exc})"
    if not math.isfinite(reward):
        return None, f"grade returned {reward}, expected a finite float"
    if abs(reward) > max_abs:
        return None, f"grade returned {reward!r}, outside the allowed range [-{max_abs:g}, {max_abs:g}]"
    return reward, None


def _writable(path):
    """Give the owner rwx on every directory under `path` (iteratively: a deep tree cannot recurse)."""
    stack = [path]
    while stack:
        folder = stack.pop()
        try:
            os.chmod(folder, 0o700)
            entries = list(os.scandir(folder))
        except OSError:
            continue
        stack.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))


def remove(path):
    """Remove a file or a whole tree, whatever the modes its owner gave it."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    try:
        if stat.S_ISDIR(mode):
            try:
                os.rmdir(path)  # the common case: an empty directory
                return
            except OSError:
                pass
            _writable(path)
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


def in_sandbox():
    """Whether this process is the worker inside its sandbox: pid 2 of its own PID namespace (under bwrap's
    init), not root. kill(-1) and emptying /tmp are only safe there: outside they reach the host."""
    return os.getpid() == 2 and os.getppid() == 1 and os.geteuid() != 0


def kill_leftovers(pid):
    """Kill the grade's process group, then (in the sandbox only) every process this uid can signal."""
    targets = [(pid, os.killpg)]
    if in_sandbox():
        targets.append((-1, os.kill))
    for target, how in targets:
        try:
            how(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def reap():
    """Wait for every child left (all were sent SIGKILL): no zombie of a grade outlives it."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def tidy(workdir, sandboxed, keep=()):
    """Empty the scratch space (the working directory, /tmp, /dev/shm; in the sandbox only: outside it they are
    the host's) but the paths in `keep`, and go back to workdir."""
    for folder in (workdir, "/tmp", "/dev/shm") if sandboxed else ():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(folder, entry)
            if path == workdir or path in keep or _protected(path):
                continue
            remove(path)
    try:
        os.chdir(workdir)
    except OSError:
        pass


def call(grade_code, sample, item, limits):
    """In the child: load the code, run one grade under the per-call limits; return the answer dict."""
    captured = _Capture(limits.get("max_output_chars", 4000))
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGXCPU, _on_cpu)
    # RLIMIT_CPU counts the process's whole life: the limit of this grade is what its batch used so far plus
    # cpu_time_s (the hard limit stays: it could not be raised again for the next grade of the batch)
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(used.ru_utime + used.ru_stime + limits["cpu_time_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.getrlimit(resource.RLIMIT_CPU)[1]))
    signal.setitimer(signal.ITIMER_REAL, limits["wall_time_s"])
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = captured
    loaded = False
    try:
        grade = load(grade_code)
        loaded = True
        value = grade(sample, item)
        answer = None
    except GradeTimeout as exc:
        answer = {"error": "server", "type": "timeout", "details": str(exc)}
    except MemoryError:
        answer = {"error": "runtime", "type": "memory", "details": "MemoryError: the memory limit was exceeded"}
    except SystemExit as exc:
        answer = {"error": "runtime", "type": "exit", "details": f"grade called sys.exit({exc.code!r:.200})"}
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is a graded error
        answer = {"error": "runtime", "type": "exception" if loaded else "load", "details": user_traceback(exc)}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout, sys.stderr = stdout, stderr
    if answer is None:
        reward, problem = as_reward(value, limits["max_abs_reward"])
        answer = ({"reward": reward} if problem is None
                  else {"error": "runtime", "type": "bad_return", "details": problem})
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


def encode(answer):
    """One answer line, the details cut so that it stays under MAX_ANSWER_BYTES."""
    if isinstance(answer.get("details"), str):
        answer["details"] = cap_text(answer["details"])
    return json.dumps(answer).encode() + b"\n"


def child(compiled, limits, scratch, request_fd, answer_fd, sandboxed, keep):
    """The process of one batch's grades, forked before its batch arrives: never returns.

    It closes every descriptor but its two pipes (the protocol's fds 3 and 4 included) before it reads
    the batch line its worker forwards, and runs user code only after that. Each grade loads the source
    afresh (new globals) and runs in a scratch directory of its own, removed with anything else written to
    /tmp and /dev/shm before the next grade; its answer line carries its number in the batch (`n`).
    """
    me = os.getpid()
    try:
        os.setpgid(0, 0)
        low, high = sorted((request_fd, answer_fd))
        os.closerange(3, low)
        os.closerange(low + 1, high)
        os.closerange(high + 1, limits["max_open_files"] + 1)
        os.chdir(scratch)
        with os.fdopen(request_fd, "rb") as requests:  # all of it before any grade (the worker's write ends)
            line = requests.readline()
            if not line:  # the worker ended, or did not need this process
                return
            request = json.loads(line)
            pairs = [requests.readline() for _ in range(request["count"])]
        code = compiled.get(request["key"])
        if code is None:  # forked before its worker compiled this source (which compiled without error)
            code = compile_source(request["source"], f"<grader {request['key'][:12]}>")
        compiled.clear()  # other graders' code is none of this batch's business
        for number, pair in enumerate(pairs):
            sample, item = json.loads(pair)  # parsed when its grade runs: a batch cut short parses no more
            workdir = os.path.join(scratch, str(number))
            os.mkdir(workdir, 0o700)
            os.chdir(workdir)
            data = encode(dict(call(code, sample, item, limits), n=number))
            if os.getpid() != me:  # a process forked by user code never answers
                return
            view = memoryview(data)
            while view:
                view = view[os.write(answer_fd, view):]
            remove(workdir)
            tidy(scratch, sandboxed, keep)
    finally:
        os._exit(0)


def sanitize(answer, limits, number):
    """An answer from a child (user code could have written it) reduced to a well-formed one; it must carry
    the number of its request within the batch (`n`): a line written out of turn is a protocol error."""
    if not isinstance(answer, dict):
        return {"error": "server", "type": "protocol", "details": "the grade's answer is not a JSON object"}
    if answer.get("n") != number or isinstance(answer.get("n"), bool):
        return {"error": "server", "type": "protocol", "details": "the grade's answer is out of turn"}
    if "reward" in answer and "error" not in answer:
        reward, problem = as_reward(answer["reward"], limits["max_abs_reward"])
        if problem is None:
            return {"reward": reward}
        return {"error": "runtime", "type": "bad_return", "details": problem}
    error = answer.get("error") if answer.get("error") in ("runtime", "server") else "server"
    kind = answer.get("type") if isinstance(answer.get("type"), str) else "protocol"
    details = answer.get("details") if isinstance(answer.get("details"), str) else "the grade's answer is malformed"
    return {"error": error, "type": kind[:40], "details": details}


class AnswerReader:
    """Answer lines from a batch's process, in order: at most MAX_ANSWER_BYTES each, each byte searched once."""

    def __init__(self, fd, pidfd):
        self.fd, self.pidfd = fd, pidfd
        self.buffer, self.scanned = bytearray(), 0

    def line(self, deadline, before_waiting):
        """The next line, or None and why ("timeout", "crashed", "too_long"); `before_waiting()` is called
        before every wait (the worker sends the answers it holds then)."""
        exited = False
        while (end := self.buffer.find(b"\n", self.scanned)) < 0:
            self.scanned = len(self.buffer)
            if self.scanned > MAX_ANSWER_BYTES:
                return None, "too_long"
            readable, _, _ = select.select([self.fd, self.pidfd], [], [], 0)
            if not readable:
                before_waiting()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, "timeout"
                readable, _, _ = select.select([self.fd, self.pidfd], [], [], left)
                if not readable:
                    continue
            if self.fd in readable:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except BlockingIOError:
                    return None, "crashed"
                if not chunk:
                    return None, "crashed"
                self.buffer += chunk
            elif self.pidfd in readable:
                if exited:  # exited and nothing left in the pipe
                    return None, "crashed"
                exited = True
                os.set_blocking(self.fd, False)  # read what it wrote before it died, then stop
                deadline = time.monotonic() + 0.05
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        self.scanned = 0
        if len(line) > MAX_ANSWER_BYTES:
            return None, "too_long"
        return line, None


class Grade:
    """The process of one batch, forked ahead of its batch: its pid (None once reaped), a pidfd, the worker's
    ends of its pipes and its scratch directory."""

    def __init__(self, pid, request_fd, answer_fd, scratch):
        self.pid, self.request_fd, self.answer_fd, self.scratch = pid, request_fd, answer_fd, scratch
        self.pidfd = os.pidfd_open(pid)


def start_grade(compiled, limits, number, workdir):
    """Fork the process of the next batch (it waits for its batch line), in a fresh scratch directory."""
    scratch = os.path.join("/tmp", f"grade-{number}")
    remove(scratch)
    os.mkdir(scratch, 0o700)
    request_read, request_write = os.pipe()
    answer_read, answer_write = os.pipe()
    gc.freeze()  # the worker's objects stay out of the child's collections: fewer pages copied on write
    sandboxed = in_sandbox()
    pid = os.fork()
    if pid == 0:
        os.close(request_write)
        os.close(answer_read)
        child(compiled, limits, scratch, request_read, answer_write, sandboxed, keep=(workdir,))
    os.close(request_read)
    os.close(answer_write)
    return Grade(pid, request_write, answer_read, scratch)


def failure_answer(grade, failure, limits, first):
    """Kill the batch's process after a grade that gave no answer, and say why."""
    kill_leftovers(grade.pid)
    _, status, usage = os.wait4(grade.pid, 0)
    grade.pid = None
    if failure == "timeout" or (first and usage.ru_utime + usage.ru_stime >= limits["cpu_time_s"]):
        return {"error": "server", "type": "timeout", "details": "the grade ran past its time limit and was killed"}
    if failure == "too_long":
        return {"error": "server", "type": "answer_too_long",
                "details": f"the grade's answer line is over {MAX_ANSWER_BYTES:,} bytes"}
    how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
           else f"exit status {os.waitstatus_to_exitcode(status)}")
    return {"error": "server", "type": "crashed", "details": f"the grade's process ended without an answer ({how})"}


def run_batch(grade, lines, count, limits, seconds, send):
    """Forward the batch's lines to its process and `send` each grade's (sanitized) answer on, in order.

    A grade that fails to answer (time limit, crash, answer too long) or answers out of turn or in a
    malformed line ends the batch there; so does the time budget `seconds` once a grade ends past it. The
    grades not run are answered {"skipped": true} (the pool sends them again in another batch).
    """
    started = batch_started = time.perf_counter()
    try:
        view = memoryview(lines)
        while view:
            view = view[os.write(grade.request_fd, view):]
    except OSError:
        pass  # it died before reading: no answer below
    reader = AnswerReader(grade.answer_fd, grade.pidfd)
    held = []  # answers not sent yet: sent together when the worker would wait

    def flush():
        send(held)
        held.clear()

    for number in range(count):
        data, failure = reader.line(time.monotonic() + limits["wall_time_s"] + 0.5, flush)
        if data is None:
            answer = failure_answer(grade, failure, limits, number == 0)
        else:
            try:
                answer = sanitize(json.loads(data), limits, number)
            except (ValueError, RecursionError):
                answer = {"error": "server", "type": "protocol", "details": "the grade's answer is not JSON"}
        now = time.perf_counter()
        answer["seconds"], started = now - started, now
        held.append(answer)
        ended = data is None or answer.get("type") == "protocol"
        if number + 1 < count and (ended or now - batch_started >= seconds):
            held.extend({"skipped": True} for _ in range(count - number - 1))
            break
    flush()


def end_grade(grade, workdir):
    """End a batch: kill its process and all it started, reap them, remove every file they wrote."""
    if grade.pid is not None:
        kill_leftovers(grade.pid)
        os.waitpid(grade.pid, 0)
    for fd in (grade.request_fd, grade.answer_fd, grade.pidfd):
        os.close(fd)
    reap()
    remove(grade.scratch)
    tidy(workdir, in_sandbox())


def thread_count():
    """Threads of this process, as the kernel counts them (threads started with _thread included)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def send_answers(answers, recycle, batch_answers):
    """Write answer lines to the pool in one write (with "recycle" when this worker is to be replaced)."""
    if batch_answers:
        answers.write(b"".join(encode(dict(answer, recycle=True) if recycle else answer) for answer in batch_answers))


def main():
    if os.getpid() != 2 or os.getppid() != 1:
        raise SystemExit("the sandbox worker runs only inside its sandbox (see sandbox.py)")
    limits = json.loads(sys.argv[1])
    workdir = os.getcwd()
    # The protocol gets private copies of stdin/stdout; fd 0 and 1 then point where nothing can disturb the
    # protocol (os.write(1, ...) ends up in stderr, which the pool discards). Children close both copies.
    requests = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    apply_limits(limits)
    drop_privileges(limits.get("run_as_uid"))
    set_process_flags()
    compiled = {}
    answers.write(json.dumps({"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]}).encode() + b"\n")
    grade = None
    for number in itertools.count():
        if grade is None:
            grade = start_grade(compiled, limits, number, workdir)
        line = requests.readline()
        if not line:
            return
        request = json.loads(line)
        key, count = request["key"], request["count"]
        pairs = b"".join(requests.readline() for _ in range(count))  # parsed by the batch's process only
        problem = None
        if "source" in request:
            try:
                compiled[key] = compile_source(request["source"], f"<grader {key[:12]}>")
                warm_imports(request["source"])
            except BaseException as exc:  # noqa: BLE001 - a source that does not compile is a graded error
                problem = {"error": "runtime", "type": "load", "details": user_traceback(exc)}
        recycle = thread_count() > 1  # an import started a thread in the worker: replace it after this batch
        if problem is None and key not in compiled:
            problem = {"error": "server", "type": "unknown_source", "details": f"source {key[:12]} not loaded"}

        send = functools.partial(send_answers, answers, recycle)
        if problem is not None:
            send([dict(problem, seconds=0.0) for _ in range(count)])
        else:
            run_batch(grade, line + pairs, count, limits, request.get("seconds", math.inf), send)
            end_grade(grade, workdir)  # after the last answer is on its way: the pool goes on meanwhile
            grade = None
        if recycle:
            os._exit(0)


if __name__ == "__main__":
    main()
