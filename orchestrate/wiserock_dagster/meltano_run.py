"""`meltano run` as a Dagster step runs it: the project's own Meltano, in a session of its own,
every output line passed on as it comes, and the whole session stopped when the step is.

Meltano, the tap and the loader share that session's process group: SIGTERM to the group is what
stops them all (Meltano records the run as failed, so the next run is not refused; the loader
rolls back). Signalling Meltano alone would let a tap and loader run on and commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import signal
import subprocess
import threading
import time
import typing as t

from elt.run import TRANSIENT_DATABASE_ERROR

STOP_GRACE_SECONDS = 15  # SIGTERM, then SIGKILL for whatever is left of the group
# A plugin's own one-line error (`tap-wiserock-api: error: ...`), else Meltano's.
_PLUGIN_ERROR = re.compile(r"([\w.-]+: error: .*\S)")
_MELTANO_ERROR = re.compile(r"\[error\s*\]\s+meltano\s+(.*\S)")
REFUSED = "pipeline is already running"


@dataclasses.dataclass
class Outcome:
    """How one `meltano run` ended."""

    code: int = 0
    plugin_error: str | None = None  # the first `<plugin>: error: ...` line: the cause
    meltano_error: str | None = None  # Meltano's last error line, e.g. "Extractor failed"
    transient: str | None = None  # a database blip seen in the output (worth a rerun)
    refused: bool = False  # Meltano saw another run of the same pipeline going
    stopped: bool = False  # stopped from outside (the run was cancelled)

    @property
    def error(self) -> str:
        return self.plugin_error or self.meltano_error or f"meltano exited with status {self.code}"

    def see(self, line: str) -> None:
        if match := _PLUGIN_ERROR.search(line):
            self.plugin_error = self.plugin_error or match[1]
        elif match := _MELTANO_ERROR.search(line):
            self.meltano_error = match[1]
        if match := TRANSIENT_DATABASE_ERROR.search(line):
            self.transient = match[0]
        self.refused = self.refused or REFUSED in line


def meltano_executable(project_root: pathlib.Path) -> pathlib.Path:
    """The project's own Meltano (MELTANO_BIN overrides, e.g. in an image with Meltano elsewhere)."""
    return pathlib.Path(os.environ.get("MELTANO_BIN") or project_root / ".venv" / "bin" / "meltano")


@contextlib.contextmanager
def _interrupts_deferred() -> t.Iterator[None]:
    """Hold back SIGINT and SIGTERM (Dagster's interrupts) while the session stops: stopping half-way
    and leaving would close Meltano's output pipe while it records the run as failed, and Meltano,
    killed by that, would leave its "already running" lock behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def stop_session(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to the process group; SIGKILL to what is left of it after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(process.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run(args: t.Sequence[str], *, project_root: pathlib.Path, env: t.Mapping[str, str],
        log: t.Callable[[str], None], should_stop: t.Callable[[], bool] = lambda: False,
        poll_seconds: float = 1.0) -> Outcome:
    """`meltano run ARGS` in the project; every output line goes to `log` as it comes.

    The session is stopped when the calling step is interrupted (Dagster interrupts a cancelled
    run's process) or when `should_stop()` turns true, asked every `poll_seconds` (a step on a
    Celery worker is never interrupted: dagster-celery only revokes its task). The output is read
    by a thread of its own, to its end, also while the session stops.
    """
    command = [str(meltano_executable(project_root)), "run", *args]
    process = subprocess.Popen(command, cwd=project_root, env=dict(env), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
    outcome = Outcome()

    def read() -> None:
        for line in process.stdout or ():
            line = line.rstrip("\n")
            outcome.see(line)
            log(line)

    reader = threading.Thread(target=read, name="meltano-output", daemon=True)
    try:
        log(f"meltano {' '.join(command[1:])}: pid {process.pid}, in a process group of its own")
        reader.start()
        while (code := _wait(process, poll_seconds)) is None:
            if _asked_to_stop(should_stop):
                outcome.stopped = True
                with _interrupts_deferred():
                    stop_session(process)
    except BaseException:  # the step was interrupted: stop the whole session before going on
        with _interrupts_deferred():
            stop_session(process)
            reader.join(STOP_GRACE_SECONDS)
        raise
    reader.join(STOP_GRACE_SECONDS)
    outcome.code = code
    return outcome


def _wait(process: subprocess.Popen, seconds: float) -> int | None:
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def _asked_to_stop(should_stop: t.Callable[[], bool]) -> bool:
    try:
        return should_stop()
    except Exception:  # a failed look (storage busy) is retried at the next poll
        return False
