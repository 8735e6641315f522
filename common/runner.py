"""The one way we run external tools (restic, rsync, debootstrap, tar, apt-get, go, ...).

It logs the command, streams its output line by line as progress, keeps the tail for the error, and raises
a typed CommandError when the command fails. Secrets never go through argv: pass them in files or via the
`env` argument, which is never logged.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, Callable, Iterable, Sequence, TypeVar

from common import log
from common.errors import CommandError, CommandNotFound

_log = log.get("run")
T = TypeVar("T")
TAIL_LINES = 40


def _pump(stream: IO[bytes], sink, tail: collections.deque | None, prefix: str, quiet: bool, on_line=None):
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if tail is not None:
            tail.append(line)
        if on_line is not None:
            on_line(line)
        elif sink is not None:
            sink.append(raw)
        elif not quiet:
            _log.info("%s%s", prefix, line)
    stream.close()


def _start(argv: list[str], env: dict[str, str] | None, cwd, stdin, stdout) -> subprocess.Popen:
    if shutil.which(argv[0], path=(env or {}).get("PATH") or os.environ.get("PATH")) is None:
        raise CommandNotFound(argv)
    _log.info("$ %s", shlex.join(argv))
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    return subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE, env=full_env, cwd=cwd)


def run(
    argv: Sequence[str | os.PathLike],
    *,
    capture: bool = False,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float | None = None,
    quiet: bool = False,
    ok_codes: Iterable[int] = (0,),
    on_stdout: Callable[[str], None] | None = None,
) -> str:
    """Run argv; return its stdout as text when capture=True, else "".

    stdout may be a binary file to write the command's output to (for streams such as tar or dumps);
    on_stdout, when given, receives each line of stdout instead (machine-readable progress).
    `env` entries are added to the inherited environment and are never logged.
    """
    argv = [os.fspath(a) for a in argv]
    proc = _start(argv, env, cwd, stdin, stdout if stdout is not None else subprocess.PIPE)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    out_chunks: list[bytes] = []
    threads = [threading.Thread(target=_pump, args=(proc.stderr, None, tail, "  | ", quiet), daemon=True)]
    if stdout is None:
        sink = out_chunks if capture else None
        threads.append(
            threading.Thread(target=_pump, args=(proc.stdout, sink, None if capture else tail, "  | ", quiet,
                                                 on_stdout), daemon=True)
        )
    for t in threads:
        t.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        for t in threads:
            t.join()
        raise CommandError(argv, -9, "\n".join(tail) + f"\n(killed after {timeout:.0f}s timeout)")
    for t in threads:
        t.join()
    if proc.returncode not in tuple(ok_codes):
        raise CommandError(argv, proc.returncode, "\n".join(tail))
    return b"".join(out_chunks).decode("utf-8", "replace") if capture else ""


class Spawned:
    """A command we talk to while it runs (spawn): lines to its stdin (send), each line of its stdout to
    on_stdout; kill() ends its whole process group at once (SIGKILL: a crash, nothing it can clean up)."""

    def __init__(self, argv: list[str], proc: subprocess.Popen, threads: list[threading.Thread],
                 tail: collections.deque):
        self.argv, self.proc, self.threads, self.tail = argv, proc, threads, tail

    def send(self, line: str) -> bool:
        """Write a line to its stdin; False when it no longer reads."""
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, ValueError, OSError):
            return False

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.wait()

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code once it ended (its output read to the end); TimeoutExpired after timeout."""
        code = self.proc.wait(timeout=timeout)
        for t in self.threads:
            t.join()
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        return code


def spawn(argv: Sequence[str | os.PathLike], on_stdout: Callable[[str], None], *, env: dict[str, str] | None = None,
          cwd: str | os.PathLike | None = None, quiet: bool = False) -> Spawned:
    """Start argv in a process group of its own, its stdin a pipe of ours (Spawned.send), each line of its stdout
    handed to on_stdout (from a thread of ours) and its stderr logged as progress; returns at once."""
    argv = [os.fspath(a) for a in argv]
    if shutil.which(argv[0], path=(env or {}).get("PATH") or os.environ.get("PATH")) is None:
        raise CommandNotFound(argv)
    _log.info("$ %s (spawned)", shlex.join(argv))
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=full_env, cwd=cwd, start_new_session=True)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    threads = [threading.Thread(target=_pump, args=(proc.stderr, None, tail, "  | ", quiet), daemon=True),
               threading.Thread(target=_pump, args=(proc.stdout, None, None, "", quiet, on_stdout), daemon=True)]
    for t in threads:
        t.start()
    return Spawned(argv, proc, threads, tail)


def start_detached(argv: Sequence[str | os.PathLike], log_file: Path) -> None:
    """Start a daemon (dockerd where no init system runs) in a session of its own, its output appended to
    log_file; it outlives us. The caller checks that it came up."""
    argv = [os.fspath(a) for a in argv]
    if shutil.which(argv[0]) is None:
        raise CommandNotFound(argv)
    _log.info("$ %s (detached; log in %s)", shlex.join(argv), log_file)
    with open(log_file, "ab") as logf:
        subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True)


def read(argv: Sequence[str | os.PathLike], consume: Callable[[IO[bytes]], T], *,
         env: dict[str, str] | None = None, quiet: bool = False) -> T:
    """Run argv and hand its binary stdout to consume(stream) (a tar or dump read as it is produced, never
    stored); returns consume's result. stderr is streamed as progress. If consume raises, the command is
    killed and the exception propagates (unless the command had already failed: then its CommandError);
    if the command fails, CommandError is raised even when consume returned."""
    argv = [os.fspath(a) for a in argv]
    proc = _start(argv, env, None, None, subprocess.PIPE)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    pump = threading.Thread(target=_pump, args=(proc.stderr, None, tail, "  | ", quiet), daemon=True)
    pump.start()
    try:
        result = consume(proc.stdout)
        while proc.stdout.read(1 << 20):  # let the command finish writing what consume did not need
            pass
    except BaseException as exc:
        killed = False
        try:  # a command that failed closes its stdout as it exits: give it a moment to say so
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            killed = True
            proc.kill()
            proc.wait()
        pump.join()
        if not killed and proc.returncode != 0:  # the command failed first: its reason is the one to give
            raise CommandError(argv, proc.returncode, "\n".join(tail)) from exc
        raise
    finally:
        proc.stdout.close()
    proc.wait()
    pump.join()
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, "\n".join(tail))
    return result


def which(name: str, extra_dirs: Iterable[str | Path] = ()) -> str | None:
    """Find a program on PATH, then in extra_dirs."""
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
