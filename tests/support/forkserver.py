"""`python -m portal.main ARGS` for the tests without paying the interpreter start-up
and the import of portal.main (~2 s of CPU) for every portal, enforcer and CLI run.

One helper process per test session (`python -m tests.support.forkserver`) imports
portal.main once and then, per request, forks a child that runs exactly what
`python -m portal.main ARGS` runs after its imports: the environment replaced by the
one given, its own cwd, stdin/stdout/stderr on the files given (buffered as the
interpreter does), the interpreter's signal dispositions, `sys.argv` as with `-m`,
then main(). Its exit is the interpreter's (sys.exit's code rules, an uncaught
exception printed, non-daemon threads joined, atexit handlers run, standard streams
flushed) minus the final
teardown of every module: that took 3-4 s of a loaded machine per stopped portal,
for nothing a test can see (logging's handlers are flushed and closed by its atexit
handler; a file the code left open and unflushed would lose its buffer, which no
daemon here does). The child opens the database, reads the config and parses its
arguments itself; only the already imported modules are shared (copy-on-write). The
helper imports nothing else and starts no thread, so a fork is safe.

The test side gets a ForkedProcess with the part of subprocess.Popen's API the
tests use (pid, returncode, poll, wait, send_signal, terminate, kill). The helper
reaps its children and reports each exit status over its stdout. When the test
process goes away (its end of the pipe closes) the helper stops every child it
still has, so nothing outlives the session.

ISPEDGE_TEST_FORKSERVER=0 turns it off: every run is a plain subprocess again.

Protocol (one JSON object a line): request {"id", "argv", "env", "cwd", "stdin",
"stdout", "stderr"} (paths; stderr "stdout" = same file); answers {"id", "pid"} or
{"id", "error"}, and later {"id", "exit": returncode}.
"""

from __future__ import annotations

import atexit
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MAIN_PATH = str(ROOT / "portal" / "main.py")


# --- the helper process ---------------------------------------------------------------

def _stdio(fd: int, mode: str, unbuffered: bool, errors: str = "strict") -> io.TextIOWrapper:
    """A standard stream as the interpreter builds it: line-buffered on a terminal (and
    always for stderr), write-through with PYTHONUNBUFFERED."""
    raw = io.FileIO(fd, mode, closefd=False)
    buffered: io.BufferedIOBase = (io.BufferedReader(raw) if mode == "r"
                                   else io.BufferedWriter(raw))
    return io.TextIOWrapper(buffered, encoding="utf-8", errors=errors,
                            line_buffering=raw.isatty() or fd == 2,
                            write_through=unbuffered)


def _child(job: dict[str, Any], helper_fds: list[int]) -> None:
    """In the forked child: become `python -m portal.main ARGS` and never return."""
    for fd in helper_fds:  # the protocol pipe and the other children's pidfds
        os.close(fd)
    # Signal dispositions are the interpreter's own: the helper never changes them.
    stdin = os.open(job.get("stdin") or os.devnull, os.O_RDONLY)
    stdout = os.open(job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    stderr = stdout if job["stderr"] == "stdout" else os.open(
        job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    for fd in {stdin, stdout, stderr} - {0, 1, 2}:
        os.close(fd)
    os.environ.clear()
    os.environ.update(job["env"])
    os.chdir(job["cwd"])
    unbuffered = bool(job["env"].get("PYTHONUNBUFFERED"))
    sys.stdin = _stdio(0, "r", unbuffered)
    sys.stdout = _stdio(1, "w", unbuffered)
    sys.stderr = _stdio(2, "w", unbuffered, errors="backslashreplace")
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    sys.argv = [MAIN_PATH, *job["argv"]]
    from portal.main import main

    code: Any = 0
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # as the interpreter reports an uncaught exception
        traceback.print_exc()
        code = 1
    _exit(code)


def _exit(code: Any) -> None:
    """The interpreter's exit (sys.exit's code rules, atexit handlers, standard streams
    flushed) without its last step, tearing down every module, which costs seconds
    of CPU here for nothing a test can observe."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code & 0xFF)


def serve() -> None:
    import select

    import portal.main  # noqa: F401  (imported once; every child inherits it)
    # portal.main imports the web app and the demo lazily (a one-line command never
    # needs them); the tests start many portals, so pay those imports once here too.
    import portal.demo.run  # noqa: F401
    import portal.web.serve  # noqa: F401

    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)

    def send(msg: dict[str, Any]) -> None:
        os.write(proto_out, (json.dumps(msg) + "\n").encode())

    children: dict[int, tuple[int, str]] = {}  # pidfd -> (pid, request id)
    buf = b""
    eof = False
    while not eof:
        ready, _, _ = select.select([proto_in, *children], [], [])
        for fd in ready:
            if fd == proto_in:
                chunk = os.read(proto_in, 65536)
                if not chunk:
                    eof = True
                    continue
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    job = json.loads(line)
                    try:
                        pid = os.fork()
                    except OSError as exc:
                        send({"id": job["id"], "error": str(exc)})
                        continue
                    if pid == 0:
                        _child(job, [proto_in, proto_out, *children])
                    children[os.pidfd_open(pid)] = (pid, job["id"])
                    send({"id": job["id"], "pid": pid})
            else:
                pid, ident = children.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                send({"id": ident, "exit": os.waitstatus_to_exitcode(status)})
    # The test session is gone: nothing it started may outlive it.
    for fd, (pid, _) in children.items():
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if select.select([fd], [], [], 5)[0]:
                break
        os.waitpid(pid, 0)


# --- the test side ---------------------------------------------------------------------

class ForkedProcess:
    """The subprocess.Popen API the tests use, for a child of the helper."""

    def __init__(self, server: ForkServer, ident: str, pid: int, args: list[str]) -> None:
        self._server = server
        self._id = ident
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self._id)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._server.wait_exit(self._id, timeout, self.args)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        # As Popen: a reaped child is never signalled (its pid may be another's now).
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.forkserver"], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._lock = threading.Lock()  # one request written at a time
        self._cond = threading.Condition()
        self._answers: dict[str, dict[str, Any]] = {}
        self._exits: dict[str, int] = {}
        self._ids = itertools.count()
        self._dead = False
        threading.Thread(target=self._read, name="forkserver-reader", daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            msg = json.loads(line)
            with self._cond:
                if "exit" in msg:
                    self._exits[msg["id"]] = msg["exit"]
                else:
                    self._answers[msg["id"]] = msg
                self._cond.notify_all()
        with self._cond:
            self._dead = True
            self._cond.notify_all()

    def alive(self) -> bool:
        return not self._dead and self._proc.poll() is None

    def spawn(self, argv: list[str], env: dict[str, str], stdout: Path,
              stderr: Path | None = None, stdin: Path | None = None,
              cwd: str | None = None) -> ForkedProcess:
        ident = str(next(self._ids))
        job = {"id": ident, "argv": argv, "env": env, "cwd": cwd or os.getcwd(),
               "stdin": str(stdin) if stdin else None, "stdout": str(stdout),
               "stderr": str(stderr) if stderr else "stdout"}
        assert self._proc.stdin is not None
        with self._lock:
            self._proc.stdin.write((json.dumps(job) + "\n").encode())
            self._proc.stdin.flush()
        with self._cond:
            if not self._cond.wait_for(lambda: ident in self._answers or self._dead, 60):
                raise RuntimeError("the test fork server did not answer within 60 s")
            if self._dead:
                raise RuntimeError("the test fork server is gone")
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise OSError(answer["error"])
        return ForkedProcess(self, ident, int(answer["pid"]), ["ispedge", *argv])

    def exit_code(self, ident: str) -> int | None:
        with self._cond:
            return self._exits.get(ident)

    def wait_exit(self, ident: str, timeout: float | None, args: list[str]) -> int:
        with self._cond:
            if not self._cond.wait_for(lambda: ident in self._exits or self._dead, timeout):
                raise subprocess.TimeoutExpired(args, timeout or 0)
            if ident not in self._exits:
                raise RuntimeError("the test fork server is gone")
            return self._exits[ident]

    def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_server: ForkServer | None = None
_server_lock = threading.Lock()


def enabled() -> bool:
    return os.environ.get("ISPEDGE_TEST_FORKSERVER", "1") != "0"


def server() -> ForkServer:
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            _server = ForkServer()
        return _server


def close() -> None:
    """At the end of the session (tests/conftest.py): stop the helper and its children."""
    global _server
    with _server_lock:
        if _server is not None:
            _server.close()
            _server = None


def popen(argv: list[str], env: dict[str, str], stdout: Path,
          stderr: Path | None = None) -> ForkedProcess | subprocess.Popen[bytes]:
    """Start `python -m portal.main ARGV` with its output in files (a daemon)."""
    if not enabled():
        out = stdout.open("ab")
        err = stderr.open("ab") if stderr else subprocess.STDOUT
        try:
            return subprocess.Popen([sys.executable, "-m", "portal.main", *argv], env=env,
                                    stdout=out, stderr=err)
        finally:
            out.close()
            if stderr:
                err.close()  # type: ignore[union-attr]
    return server().spawn(argv, env, stdout, stderr)


def run(argv: list[str], env: dict[str, str], timeout: float = 60,
        input: str | None = None, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """subprocess.run([python, -m, portal.main, *ARGV], capture_output=True, text=True)."""
    if not enabled():
        return subprocess.run([sys.executable, "-m", "portal.main", *argv], env=env,
                              capture_output=True, text=True, timeout=timeout, input=input,
                              cwd=cwd)
    with tempfile.TemporaryDirectory(prefix="ispedge-run-") as tmp:
        out, err, inp = Path(tmp, "out"), Path(tmp, "err"), Path(tmp, "in")
        out.touch()
        err.touch()
        inp.write_text(input or "")
        proc = server().spawn(argv, env, out, err, stdin=inp if input is not None else None,
                              cwd=cwd)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        return subprocess.CompletedProcess(
            ["ispedge", *argv], code, out.read_text(errors="replace"),
            err.read_text(errors="replace"))


if __name__ == "__main__":
    serve()
