"""Runs many `ispedge` invocations fast: one Python process imports portal.main once,
then forks one child per invocation, exactly as `python -m portal.main ARGS` would run
it (its own session, fresh stdin/stdout/stderr, the environment given, an uncaught
exception printed as a traceback by the interpreter's rules, exit code as sys.exit).

Interpreter start-up (~1 s here) is the only thing shared; each child opens the
database, reads the config and parses its arguments itself. Protocol: one JSON job
per line on stdin ({"argv": [...], "env": {...}, "stdin": "..."}); one JSON result
per line on stdout ({"index", "returncode", "stdout", "stderr", "timed_out"}) in
job order. Children run `--parallel` at a time; one that runs longer than
`--timeout` seconds (a daemon that started) is stopped with its whole session.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from typing import Any


def _child(job: dict[str, Any], out_fd: int, err_fd: int, in_fd: int) -> None:
    os.setsid()
    os.dup2(in_fd, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    for key, value in job.get("env", {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    sys.argv = ["ispedge", *job["argv"]]
    code: Any = 0
    try:
        from portal.main import main

        code = main(job["argv"])
    except SystemExit as exc:
        code = exc.code
    except BaseException:  # what the interpreter does with an uncaught exception
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        os._exit(code & 0xFF)


def _stop(pid: int) -> None:
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20.0)
    opts = ap.parse_args()
    # Imported once; every child inherits them (portal.main imports the demo and the web
    # app only for `demo` and `portal`: loaded here too).
    import portal.demo.run  # noqa: F401
    import portal.main  # noqa: F401
    import portal.web.serve  # noqa: F401

    jobs = [json.loads(line) for line in sys.stdin if line.strip()]
    results: dict[int, dict[str, Any]] = {}
    running: dict[int, tuple[int, float, Any, Any]] = {}
    pending = list(enumerate(jobs))
    with tempfile.TemporaryDirectory() as tmp:
        while pending or running:
            while pending and len(running) < opts.parallel:
                index, job = pending.pop(0)
                out = open(os.path.join(tmp, f"{index}.out"), "w+b")  # noqa: SIM115
                err = open(os.path.join(tmp, f"{index}.err"), "w+b")  # noqa: SIM115
                stdin = open(os.path.join(tmp, f"{index}.in"), "w+b")  # noqa: SIM115
                stdin.write(job.get("stdin", "").encode())
                stdin.flush()
                stdin.seek(0)
                pid = os.fork()
                if pid == 0:
                    _child(job, out.fileno(), err.fileno(), stdin.fileno())
                stdin.close()
                running[pid] = (index, time.monotonic(), out, err)
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                now = time.monotonic()
                for cpid, (index, started, out, err) in list(running.items()):
                    if now - started > opts.timeout:
                        _stop(cpid)
                        os.waitpid(cpid, 0)
                        results[index] = _result(index, None, out, err, True)
                        del running[cpid]
                time.sleep(0.01)
                continue
            if pid not in running:
                continue
            index, _, out, err = running.pop(pid)
            # A daemon may leave grandchildren behind in its session: stop them too.
            _stop(pid)
            results[index] = _result(index, os.waitstatus_to_exitcode(status), out, err, False)
    for index in range(len(jobs)):
        print(json.dumps(results[index]), flush=True)


def _result(index: int, code: int | None, out: Any, err: Any, timed_out: bool) -> dict[str, Any]:
    out.seek(0)
    err.seek(0)
    result = {"index": index, "returncode": code, "timed_out": timed_out,
              "stdout": out.read().decode(errors="replace")[-4000:],
              "stderr": err.read().decode(errors="replace")[-4000:]}
    out.close()
    err.close()
    return result


if __name__ == "__main__":
    main()
