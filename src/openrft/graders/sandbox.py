"""The Python-grader sandbox: a pool of warm worker processes, each confined by bubblewrap.

User code never runs in the openrft process. Each worker is `python -I sandbox_worker.py` started
under bubblewrap (`bwrap`, Debian package `bubblewrap`; scripts/setup_debian.sh installs it) with:

- new PID, network, IPC, UTS and cgroup namespaces: no network (a loopback of its own only), no view
  of the host's processes; an unprivileged uid without capabilities (as root, a uid of its own per
  worker, dropped to before the first request; otherwise a user namespace maps uid 65534);
- a filesystem made of read-only binds of what Python needs (/usr, the Python installation, the
  virtual environment with its packages, the worker script) on a read-only root; /tmp (the working
  directory) and /dev/shm are private tmpfs mounts of bounded size; nothing else of the host, so
  /etc/shadow, home directories, the source tree and the data do not exist inside;
- an empty environment (a few fixed variables), a new session (no terminal), and death with the pool;
- a seccomp filter (built with libseccomp through `pyseccomp`, handed to bwrap's `--seccomp`) that
  refuses the system calls graders never need (namespaces, mounts, ptrace, keyrings, bpf, ...);
- resource limits set by the worker before it reads a request (address space, file size,
  processes, open files, no core dumps) and, per grade, a wall-clock alarm and a CPU-time limit.

User code runs in a child process that the worker forks for one *batch* (see sandbox_worker.py): the
grades one `run_many` call sends to one worker in one turn, at most `batch_grades` of them and for about
`batch_seconds` — always one source and one caller. The batch's process is killed, with everything it
started and wrote, when the batch ends: nothing of one batch (module state, threads, processes, files) is
left for the next, and grades of different graders, requests or callers never share a process. Within a
batch each grade loads the source afresh and gets a scratch directory of its own (emptied, with /tmp and
/dev/shm, before the next grade); imported modules' state, threads and processes can outlive a grade until
its batch ends. `batch_grades=1` gives every grade a process of its own (14-21 times slower; docs/sandbox.md).
Requests and answers cross a pipe as JSON lines of at most MAX_ANSWER_BYTES. A worker that dies or hangs
past its deadline is killed and replaced; the pool goes on.

Callers share the pool fairly: one caller (a `run_many` call, or every call made inside one
`sandbox_caller(name)` block) holds at most `share` workers at once (all but one), a free worker goes
to the waiting caller that holds the fewest when a batch ends, and a grade that waits longer than
`queue_timeout_s` for a worker is a server error (`queue_timeout`) instead of a stall.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import contextvars
import errno
import functools
import hashlib
import itertools
import json
import math
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from openrft.errors import RuntimeFailure
from openrft.graders.formula import MAX_ABS_REWARD

WORKER_SCRIPT = Path(__file__).resolve().parent / "sandbox_worker.py"
SANDBOX_UID = 65534  # "nobody" inside the sandbox's user namespace (when openrft does not run as root)
UID_BASE = 600000  # as root, worker k of process p runs as UID_BASE + (p % 4096) * 64 + k
UIDS_PER_PROCESS = 64
MAX_ANSWER_BYTES = 64 * 1024  # one answer line from a worker (sandbox_worker.MAX_ANSWER_BYTES)
# A batch: the grades of one run_many call that one worker runs in one process, in one turn of the pool. It
# ends after BATCH_GRADES grades or the first grade that ends past BATCH_SECONDS (so that slow graders give
# their worker back after every grade, as they did before batches).
BATCH_GRADES = 256
BATCH_SECONDS = 0.25
BATCH_BYTES = 4 * 1024**2  # a batch's (sample, item) pairs as JSON: past this, the rest wait for the next batch
# System calls that graders never need; the seccomp filter makes them fail with EPERM.
REFUSED_SYSCALLS = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev",
    "pidfd_getfd", "kcmp", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
    "swapoff", "acct", "quotactl", "open_by_handle_at", "name_to_handle_at", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "syslog", "iopl", "ioperm", "vhangup", "lookup_dcookie",
    "fanotify_init", "sethostname", "setdomainname", "settimeofday", "clock_settime", "adjtimex",
    "clock_adjtime",
)
# clone() flags that would make a new namespace: refused as well (clone3 gets ENOSYS, so that the C
# library falls back to clone, whose flags a filter can read).
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)


class SandboxUnavailable(RuntimeFailure, RuntimeError):
    """The sandbox cannot start here (bubblewrap missing or namespaces not allowed)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one python grade. Defaults are OpenAI's: 2 minutes, 2 GB RAM, 1 GB disk, 256 kB source."""

    wall_time_s: float = 120.0
    cpu_time_s: float = 120.0
    memory_bytes: int = 2 * 1024**3  # address space (RLIMIT_AS)
    disk_bytes: int = 1024**3  # size of /tmp and of any one file written (RLIMIT_FSIZE)
    shm_bytes: int = 64 * 1024**2  # size of /dev/shm
    max_processes: int = 32  # processes and threads of the sandbox user (RLIMIT_NPROC)
    max_open_files: int = 256
    max_source_bytes: int = 256 * 1024
    grace_s: float = 2.0  # how long past wall_time_s the pool waits before killing the worker
    max_abs_reward: float = MAX_ABS_REWARD  # a reward outside [-1e6, 1e6] is a runtime error (bad_return)
    queue_timeout_s: float = 30.0  # how long a grade may wait for a free worker (then: queue_timeout)


@dataclass
class SandboxResult:
    """What one python grade came to: a reward, or an error of kind 'runtime' or 'server'."""

    reward: float | None = None
    error: str | None = None  # "runtime" (the user's code failed) | "server" (the sandbox failed)
    error_type: str | None = None  # exception, bad_return, memory, exit, load, timeout, crashed, ...
    details: str | None = None
    seconds: float = 0.0


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def source_key(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


@functools.lru_cache(maxsize=1)
def seccomp_program() -> bytes:
    """The BPF program of the sandbox's seccomp filter, built by libseccomp (through pyseccomp).

    Everything is allowed but REFUSED_SYSCALLS and clone() with a namespace flag (EPERM), and clone3
    (ENOSYS).
    """
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # OSError: libseccomp itself is missing
        raise SandboxUnavailable(f"the sandbox's seccomp filter needs libseccomp and pyseccomp: {exc}") from None
    refuse = seccomp.ERRNO(errno.EPERM)
    program = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in REFUSED_SYSCALLS:
        try:
            program.add_rule(refuse, name)
        except (OSError, RuntimeError, ValueError):  # not a system call of this architecture
            continue
    for flag in NAMESPACE_FLAGS:
        program.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    program.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as out:
        program.export_bpf(out)
        out.seek(0)
        return out.read()


def seccomp_fd() -> int:
    """A pipe's read end holding the seccomp program, for one bwrap to read (the caller closes it)."""
    program = seccomp_program()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, program)  # a few kB: fits the pipe's buffer
    finally:
        os.close(write_end)
    return read_end


@functools.lru_cache(maxsize=1)
def bwrap_options() -> str:
    """The text of `bwrap --help` (to know which options the installed bubblewrap has)."""
    try:
        return subprocess.run([bwrap_path() or "bwrap", "--help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _python_roots() -> list[str]:
    """The folders Python needs to start and import the installed packages, outside /usr."""
    roots = set()
    for folder in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                   os.path.dirname(os.path.realpath(sys.executable))):
        real = os.path.realpath(folder)
        if not real.startswith("/usr/"):
            roots.add(real)
        if folder != real and not folder.startswith("/usr/"):
            roots.add(folder)
    # keep the outermost folders only
    return sorted(root for root in roots if not any(root != other and root.startswith(other + "/") for other in roots))


def sandbox_command(limits: SandboxLimits, uid: int = SANDBOX_UID, seccomp: int | None = None) -> list[str]:
    """The bwrap command line that starts one worker; `seccomp` is a descriptor holding the filter.

    As root, bwrap keeps the host's user namespace (a root-mapped user namespace would exempt the
    sandbox from the process limit) and the worker drops to the unprivileged `uid` before it reads a
    request. As any other user, bwrap maps the sandbox's uid 65534 onto that user in a new user namespace,
    with `--disable-userns` where the installed bwrap has it. In both cases the seccomp filter refuses
    unshare() and clone() with namespace flags.
    """
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable("python graders need bubblewrap (bwrap): run scripts/setup_debian.sh "
                                 "or apt-get install bubblewrap")
    as_root = os.geteuid() == 0
    command = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if as_root:
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # dropped with the uid, before any request
    else:
        command += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        if "--disable-userns" in bwrap_options():
            command += ["--disable-userns"]
    if seccomp is not None:
        command += ["--seccomp", str(seccomp)]
    command += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        target = Path("/") / link
        if target.is_symlink():
            command += ["--symlink", os.readlink(target), f"/{link}"]
        elif target.is_dir():
            command += ["--ro-bind", str(target), f"/{link}"]
    command += ["--perms", "0755", "--dir", "/etc"]
    for name in ("ld.so.cache", "localtime"):  # the dynamic loader's cache; the time zone
        command += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # The private /tmp comes before the interpreter's folders, so that a virtual environment that lives under
    # /tmp is bound on top of it instead of hidden by it.
    command += ["--perms", "1777", "--size", str(limits.disk_bytes), "--tmpfs", "/tmp"]
    roots = _python_roots()
    parents = sorted({str(parent) for root in roots for parent in Path(root).parents
                      if str(parent) not in ("/", "/tmp")})
    for parent in parents:  # bwrap would copy the host's modes (e.g. /root is 0700): make them traversable
        if not parent.startswith("/usr"):
            command += ["--perms", "0755", "--dir", parent]
    for root in roots:
        command += ["--ro-bind", root, root]
    command += ["--ro-bind", str(WORKER_SCRIPT), "/sandbox/worker.py",
                "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(limits.shm_bytes), "--tmpfs", "/dev/shm",
                "--perms", "1777", "--dir", "/tmp/work", "--chdir", "/tmp/work",
                "--remount-ro", "/",
                "--clearenv"]
    for name, value in (("HOME", "/tmp/work"), ("TMPDIR", "/tmp"), ("PATH", "/usr/bin:/bin"), ("LANG", "C.UTF-8"),
                        ("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONHASHSEED", "0"), ("OMP_NUM_THREADS", "1"),
                        ("OPENBLAS_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("NUMEXPR_NUM_THREADS", "1")):
        command += ["--setenv", name, value]
    worker_config = dict(asdict(limits), run_as_uid=uid if as_root else None)
    command += [sys.executable, "-I", "/sandbox/worker.py", json.dumps(worker_config)]
    return command


class _Uids:
    """Host uids for workers when openrft runs as root: one per live worker, none shared.

    Separate uids keep workers from signalling each other and give each its own process count
    (RLIMIT_NPROC counts per uid). Process p uses UID_BASE + (p % 4096) * 64 + k, k < 64.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._used: set[int] = set()

    def take(self) -> int:
        with self._lock:
            offset = next((k for k in range(UIDS_PER_PROCESS) if k not in self._used), None)
            if offset is None:
                raise SandboxUnavailable(f"more than {UIDS_PER_PROCESS} sandbox workers in one process")
            self._used.add(offset)
        return UID_BASE + (os.getpid() % 4096) * UIDS_PER_PROCESS + offset

    def give_back(self, uid: int) -> None:
        with self._lock:
            self._used.discard((uid - UID_BASE) % UIDS_PER_PROCESS)


_uids = _Uids()
take_uid, release_uid = _uids.take, _uids.give_back


_probe_lock = threading.Lock()
_probe_result: dict[SandboxLimits, str | None] = {}


def check_sandbox(limits: SandboxLimits | None = None) -> None:
    """Start the sandbox once with a trivial program; raise SandboxUnavailable with the reason if it fails."""
    limits = limits or SandboxLimits()
    with _probe_lock:
        if limits not in _probe_result:
            problem: str | None
            try:
                program = seccomp_fd()
            except SandboxUnavailable as exc:
                problem = str(exc)
            else:
                probe = sandbox_command(limits, seccomp=program)[:-4] + [sys.executable, "-I", "-c", "print('ok')"]
                try:
                    done = subprocess.run(probe, capture_output=True, text=True, timeout=60, env={},
                                          pass_fds=(program,))
                    problem = None if done.returncode == 0 and done.stdout.strip() == "ok" else (
                        f"bwrap exited {done.returncode}: {done.stderr.strip()[-500:]}")
                except (OSError, subprocess.TimeoutExpired) as exc:
                    problem = str(exc)
                finally:
                    os.close(program)
            _probe_result[limits] = problem
        problem = _probe_result[limits]
    if problem:
        raise SandboxUnavailable(f"the python-grader sandbox cannot start here: {problem}")


class _WorkerGone(RuntimeFailure):
    def __init__(self, kind: str, details: str):
        super().__init__(details)
        self.kind, self.details = kind, details


class _Spawner:
    """Starts worker processes from one long-lived thread.

    bwrap's --die-with-parent is the kernel's parent-death signal, which fires when the *thread* that
    started the process ends; workers started from a short-lived grading thread would die with it.
    """

    def __init__(self):
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, command: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="openrft-sandbox-spawner", daemon=True)
                self._thread.start()
        answer: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put((command, pass_fds, answer))
        result = answer.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _serve(self) -> None:
        while True:
            command, pass_fds, answer = self._requests.get()
            try:
                answer.put(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, env={}, close_fds=True, pass_fds=pass_fds))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                answer.put(exc)


_spawner = _Spawner()


class _Worker:
    """One sandboxed worker process and its pipe ends."""

    def __init__(self, limits: SandboxLimits):
        self.uid = _uids.take() if os.geteuid() == 0 else SANDBOX_UID
        try:
            program = seccomp_fd()
            try:
                self.proc = _spawner.popen(sandbox_command(limits, self.uid, seccomp=program), pass_fds=(program,))
            finally:
                os.close(program)
        except BaseException:
            _uids.give_back(self.uid)
            raise
        assert self.proc.stdout is not None  # spawned with stdout=PIPE
        self.fd = self.proc.stdout.fileno()
        self.buffer = bytearray()
        self.scanned = 0  # bytes of `buffer` already searched for a newline
        self.loaded: set[str] = set()
        self.ready = False
        self.grades = 0

    def wait_ready(self, timeout: float) -> None:
        if not self.ready:
            hello = self.read_line(time.monotonic() + timeout)
            if not hello.get("ready"):
                raise _WorkerGone("crashed", f"unexpected greeting {hello!r}")
            self.ready = True

    def read_line(self, deadline: float) -> dict:
        """The next answer line (each byte is searched once; a line over MAX_ANSWER_BYTES is refused)."""
        while (end := self.buffer.find(b"\n", self.scanned)) < 0:
            self.scanned = len(self.buffer)
            if self.scanned > MAX_ANSWER_BYTES:
                raise _WorkerGone("protocol", f"the worker sent a line over {MAX_ANSWER_BYTES:,} bytes")
            left = deadline - time.monotonic()
            if left <= 0:
                raise _WorkerGone("timeout", "the grade ran past its time limit; the worker was killed")
            readable, _, _ = select.select([self.fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                code = self.proc.poll()
                raise _WorkerGone("crashed", f"the worker process died (exit status {code})")
            self.buffer += chunk
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 1]
        self.scanned = 0
        if len(line) > MAX_ANSWER_BYTES:
            raise _WorkerGone("protocol", f"the worker sent a line over {MAX_ANSWER_BYTES:,} bytes")
        try:
            answer = json.loads(line)
        except (ValueError, RecursionError):
            raise _WorkerGone("protocol", f"the worker sent a line that is not JSON: {line[:200]!r}") from None
        if not isinstance(answer, dict):
            raise _WorkerGone("protocol", f"the worker sent {type(answer).__name__}, not an object")
        return answer

    def send(self, message: bytes) -> None:
        assert self.proc.stdin is not None  # spawned with stdin=PIPE
        try:
            self.proc.stdin.write(message)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerGone("crashed", f"the worker process is gone ({exc})") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            assert stream is not None  # spawned with stdin=PIPE and stdout=PIPE
            try:
                stream.close()
            except OSError:
                pass
        if self.proc.poll() is not None and os.geteuid() == 0:
            _uids.give_back(self.uid)  # its namespace, and every process in it, is gone


_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("openrft_sandbox_caller", default=None)


@contextlib.contextmanager
def sandbox_caller(name: str) -> Iterator[None]:
    """Grades run inside this block count as one caller's (a job, an eval run) for the pool's fair share."""
    token = _caller.set(name)
    try:
        yield
    finally:
        _caller.reset(token)


class _QueueTimeout(RuntimeFailure):
    """No worker came free for a grade before its deadline."""


class SandboxPool:
    """Warm sandboxed workers that run python graders; thread-safe; replaces workers that die.

    `run_many` spreads (sample, item) pairs over at most `share` workers, one request in flight per
    worker, taking a worker for each batch (at most `batch_grades` grades, about `batch_seconds`) so that
    other callers waiting get their turn in between.
    """

    def __init__(self, workers: int | None = None, limits: SandboxLimits | None = None, *,
                 batch_grades: int = BATCH_GRADES, batch_seconds: float = BATCH_SECONDS):
        if batch_grades < 1 or batch_seconds < 0:
            raise ValueError(f"batch_grades must be >= 1 and batch_seconds >= 0, not {batch_grades}, {batch_seconds}")
        self.limits = limits or SandboxLimits()
        self.batch_grades, self.batch_seconds = batch_grades, batch_seconds
        self.size = (workers or int(os.environ.get("OPENRFT_SANDBOX_WORKERS", 0))
                     or max(3, min(8, os.cpu_count() or 2) + 1))
        self.share = max(1, self.size - 1)  # workers one caller may hold at once: one is always left to others
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._starting = 0  # workers being spawned outside the lock
        self._held: dict[object, int] = {}  # caller -> workers it holds now
        self._waiting: dict[int, object] = {}  # ticket (arrival order) -> caller
        self._tickets = itertools.count()
        self.replaced = 0  # workers killed and replaced so far (crashes, timeouts, protocol errors)

    # -- workers --------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        check_sandbox(self.limits)
        return _Worker(self.limits)

    def start(self) -> "SandboxPool":
        """Start all workers now (otherwise they start on first use) and wait until they are ready."""
        with self._cond:
            missing = self.size - len(self._all)
        fresh = [self._spawn() for _ in range(max(0, missing))]
        for worker in fresh:
            worker.wait_ready(60)
        with self._cond:
            self._all.update(fresh)
            self._idle.extend(fresh)
            self._cond.notify_all()
        return self

    def _turn_of(self, ticket: int, caller: object) -> bool:
        """Whether `ticket` may take a worker now: one is free, its caller is under its share, and no
        waiting caller under its share holds fewer workers (or as many, having come first)."""
        if not self._idle and self._starting + len(self._all) >= self.size:
            return False
        if self._held.get(caller, 0) >= self.share:
            return False
        rank = (self._held.get(caller, 0), ticket)
        return all((self._held.get(other, 0), number) >= rank for number, other in self._waiting.items()
                   if self._held.get(other, 0) < self.share)

    def _acquire(self, caller: object, deadline: float) -> _Worker:
        """A worker for one grade of `caller`, in fair turn; _QueueTimeout past `deadline`."""
        with self._cond:
            ticket = next(self._tickets)
            self._waiting[ticket] = caller
            try:
                while not self._turn_of(ticket, caller):
                    if self._closed:
                        raise SandboxUnavailable("the sandbox pool is closed")
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise _QueueTimeout()
                    self._cond.wait(left)
                if self._closed:
                    raise SandboxUnavailable("the sandbox pool is closed")
            finally:
                del self._waiting[ticket]
                self._cond.notify_all()  # the next in turn may be someone else now
            self._held[caller] = self._held.get(caller, 0) + 1
            if self._idle:  # the one idle longest: a worker just given back may still be tidying after its batch
                return self._idle.pop(0)
            self._starting += 1
        try:
            worker = self._spawn()
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._give_back_share(caller)
            raise
        with self._cond:
            self._starting -= 1
            self._all.add(worker)
        return worker

    def _give_back_share(self, caller: object) -> None:
        held = self._held.get(caller, 0) - 1
        if held > 0:
            self._held[caller] = held
        else:
            self._held.pop(caller, None)
        self._cond.notify_all()

    def _release(self, worker: _Worker, caller: object) -> None:
        with self._cond:
            self._give_back_share(caller)
            if self._closed:
                worker.kill()
                return
            self._idle.append(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        with self._cond:
            self._all.discard(worker)
            self.replaced += 1
        fresh = self._spawn()
        with self._cond:
            self._all.add(fresh)
        return fresh

    # -- grading --------------------------------------------------------------------------------
    def _checked(self, answer: dict, seconds: float) -> SandboxResult:
        """The result an answer stands for; a reward that is not a finite float in range is an error."""
        if "reward" in answer:
            reward = answer["reward"]
            if (isinstance(reward, (int, float)) and not isinstance(reward, bool) and math.isfinite(reward)
                    and abs(reward) <= self.limits.max_abs_reward):
                return SandboxResult(reward=float(reward), seconds=seconds)
            return SandboxResult(error="runtime", error_type="bad_return", seconds=seconds,
                                 details=f"grade returned {str(reward)[:80]}, expected a finite float within "
                                         f"[-{self.limits.max_abs_reward:g}, {self.limits.max_abs_reward:g}]")
        details = answer.get("details")
        return SandboxResult(error="runtime" if answer.get("error") == "runtime" else "server",
                             error_type=str(answer.get("type"))[:40],
                             details=details[:MAX_ANSWER_BYTES] if isinstance(details, str) else None,
                             seconds=seconds)

    def _batch(self, worker: _Worker, key: str, source: str, pairs: list[str]) -> tuple[_Worker, list[SandboxResult]]:
        """One batch (`pairs`: each a JSON [sample, item] on one line) on one worker: the results of its first
        grades, in order (fewer than `pairs` when the batch ended early: the caller sends the rest again); returns
        the worker to keep using (a replacement if it died)."""
        started = time.perf_counter()
        limits = self.limits
        for _attempt in (1, 2, 3):
            if worker.proc.poll() is not None:  # died while idle (killed from outside): replace, no blame
                worker = self._replace(worker)
            message = {"key": key, "count": len(pairs), "seconds": self.batch_seconds}
            if key not in worker.loaded:
                message["source"] = source
            text = json.dumps(message) + "\n" + "".join(pair + "\n" for pair in pairs)  # a line per pair
            data = text.encode("utf-8", "surrogatepass")
            results: list[SandboxResult] = []
            recycle = unknown = skipped = False
            try:
                worker.wait_ready(60)
                worker.send(data)
                for _ in pairs:  # one line per pair, whatever happens: the stream stays in step
                    answer = worker.read_line(time.monotonic() + limits.wall_time_s + limits.grace_s)
                    recycle = recycle or bool(answer.get("recycle"))
                    unknown = unknown or answer.get("type") == "unknown_source"
                    skipped = skipped or bool(answer.get("skipped"))
                    if not skipped:
                        seconds = answer.get("seconds")
                        results.append(self._checked(answer, seconds if isinstance(seconds, float) else 0.0))
            except _WorkerGone as gone:
                worker = self._replace(worker)
                results.append(SandboxResult(error="server", error_type=gone.kind, details=gone.details,
                                             seconds=time.perf_counter() - started))
                return worker, results
            if not results:  # the worker never skips a batch's first grade
                results.append(SandboxResult(error="server", error_type="protocol",
                                             details="the worker skipped the first grade of a batch"))
            worker.loaded.add(key)
            worker.grades += len(results)
            if recycle:
                worker = self._replace(worker)
            elif unknown:
                worker.loaded.discard(key)
                continue
            return worker, results
        lost = SandboxResult(error="server", error_type="unknown_source", details="the worker lost the source")
        return worker, [lost for _ in pairs]

    def _too_large(self, source: str) -> SandboxResult | None:
        size = len(source.encode("utf-8", "surrogatepass"))
        if size > self.limits.max_source_bytes:
            return SandboxResult(error="runtime", error_type="source_too_large",
                                 details=f"the source is {size:,} bytes; the limit is {self.limits.max_source_bytes:,}")
        return None

    def run(self, source: str, sample: dict, item: dict) -> SandboxResult:
        """Grade one (sample, item) with the `grade` function that `source` defines."""
        return self.run_many(source, [(sample, item)])[0]

    def run_many(self, source: str, pairs: list[tuple[dict, dict]]) -> list[SandboxResult]:
        """Grade many pairs concurrently across the workers; results in the order of `pairs`.

        The caller is the enclosing `sandbox_caller` name, or else this call itself.
        """
        too_large = self._too_large(source)
        if too_large is not None:
            return [too_large for _ in pairs]
        caller = _caller.get() or object()
        key = source_key(source)
        results: list[SandboxResult | None] = [None] * len(pairs)
        pending = collections.deque(range(len(pairs)))  # indices not graded yet (a batch cut short gives some back)
        encoded: dict[int, str] = {}  # pairs as JSON, kept for a batch cut short
        lock = threading.Lock()
        waited_out: list[SandboxResult] = []  # once a grade has waited past the queue timeout, the rest do not wait

        threads = max(1, min(self.share, len(pairs)))
        smallest = min(16, -(-len(pairs) // threads))  # a short call still uses all its workers at once

        def take(count: int | None = None) -> list[int]:
            """The next batch: an equal share of what is left for each thread (so that the threads end at about
            the same time: batches shrink towards the end of a call), at most batch_grades, at least `smallest`."""
            with lock:
                if count is None:
                    count = min(self.batch_grades, max(smallest, -(-len(pending) // threads)))
                return [pending.popleft() for _ in range(min(count, len(pending)))]

        def drain() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                if waited_out:
                    for index in take(len(pairs)):
                        results[index] = waited_out[0]
                    return
                try:
                    worker = self._acquire(caller, time.monotonic() + self.limits.queue_timeout_s)
                except _QueueTimeout:
                    waited_out.append(SandboxResult(error="server", error_type="queue_timeout", details=(
                        f"no sandbox worker was free for {self.limits.queue_timeout_s:g} s: the pool is busy "
                        "with other callers' grades"), seconds=self.limits.queue_timeout_s))
                    continue
                try:
                    batch = take()
                    if not batch:
                        return
                    lines, total = [], 0
                    for index in batch:
                        if index not in encoded:
                            encoded[index] = json.dumps(pairs[index], default=str)
                        lines.append(encoded[index])
                        total += len(lines[-1])
                        if total > BATCH_BYTES:
                            break
                    if len(lines) < len(batch):  # a batch of big items: the rest go back
                        with lock:
                            pending.extendleft(reversed(batch[len(lines):]))
                        batch = batch[:len(lines)]
                    worker, done = self._batch(worker, key, source, lines)
                    for index in batch[:len(done)]:
                        encoded.pop(index, None)
                    for index, result in zip(batch, done):
                        results[index] = result
                    if len(done) < len(batch):  # cut short (its time budget, a failure): the rest go back
                        with lock:
                            pending.extendleft(reversed(batch[len(done):]))
                finally:
                    self._release(worker, caller)

        failures: list[BaseException] = []

        def drain_reporting() -> None:  # a thread's exception (e.g. SandboxUnavailable) must reach the caller
            try:
                drain()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, in the calling thread
                failures.append(exc)

        if threads <= 1:
            drain()
        else:
            runners = [threading.Thread(target=drain_reporting, daemon=True) for _ in range(threads)]
            for runner in runners:
                runner.start()
            for runner in runners:
                runner.join()
            if failures and any(result is None for result in results):
                raise failures[0]
        return results  # type: ignore[return-value]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.kill()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default_pool: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """The process-wide pool that python graders use unless given another (closed at exit)."""
    global _default_pool
    with _default_lock:
        if _default_pool is None or _default_pool._closed:
            _default_pool = SandboxPool()
            atexit.register(_default_pool.close)
        return _default_pool
