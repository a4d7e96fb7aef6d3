"""A warm interpreter for the pipeline's stages: the heavy imports paid once a run, not once a stage.

Each DVC stage stays its own command (``python -m reference train``), with its own exit code,
output and log line, and DVC still decides what runs. What changes is where the Python work
happens. Importing torch, MLflow and pandas costs more than most stages compute, and seven stage
processes each paid it. So ``mlops-lab pipeline`` starts a *runner* (``python -m reference.warm``)
next to `dvc repro`, the way Python's ``multiprocessing`` forkserver works:

- the runner imports the libraries the stages use, in the order the stages need them, while the
  first stages run. It is a small chain of processes, one per group of stages (``GROUPS``): each
  imports its group's libraries and then forks the next group's runner, so the imports still run
  one after another, and a stage never waits for an import that only a later stage uses;
- a stage command that finds the runner (``MLOPS_LAB_STAGE_RUNNER`` names its socket) hands it
  its arguments, folder, environment and its stdin, stdout and stderr (file descriptors passed
  over a Unix socket), and waits;
- the runner forks: the child is a copy of the warm interpreter that takes on the stage's
  folder, environment and streams, runs the stage and reports its exit code; the stage command
  exits with that code.

Without a runner (`dvc repro` by hand, or macOS and Windows, which have no safe fork after
these imports) a stage runs in its own process, exactly as before. ``MLOPS_LAB_WARM_STAGES=0``
turns the runner off. The socket lives in a folder only this user can open; the runner accepts
only this user's connections and only the stage commands.

A child never outlives its stage: it dies with the runner (Linux's parent-death signal), the
runner kills it when the stage command goes away, and the runner dies with the pipeline run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import tempfile
import threading
from pathlib import Path

ENV = "MLOPS_LAB_STAGE_RUNNER"  # the runner's socket, for the stage commands
SWITCH = "MLOPS_LAB_WARM_STAGES"  # "0": every stage in its own cold process
STAGES = ("ingest", "validate", "transform", "train", "evaluate", "register", "gate")
COMMANDS = (*STAGES, "tag-data-version")  # and the pipeline's own last step
# What the stages import, by group of stages: one runner process per group. The first runner
# imports the first group's libraries, then forks the next group's runner, which imports the
# next libraries, and so on: the imports still run one after another while the first stages
# run, but a stage is forked from its own group's runner, so it never waits for an import it
# does not use (one runner importing torch kept validate waiting most of a second).
GROUPS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("ingest",), ("pandas", "pyarrow.parquet", "reference.cli", "reference.ingest")),
    (
        ("validate", "transform"),
        (
            "pandera.pandas",
            "scipy.stats",
            "scipy.spatial.distance",
            "reference.validate",
            "reference.transform",
        ),
    ),
    (
        ("train",),
        (
            "torch",
            "torch._dynamo",  # torch.optim's first optimizer imports it: a second, once
            "reference.train",
        ),
    ),
    (
        ("evaluate", "register", "gate", "tag-data-version"),
        (
            "matplotlib.pyplot",
            "sklearn.linear_model",
            "sklearn.calibration",
            "sklearn.metrics",
            "reference.evaluate",
            "mlflow",
            "mlflow.pyfunc",
            "mlflow.models",
            "mlflow.store.tracking.sqlalchemy_store",
            "IPython",  # MLflow's start_run looks for a Databricks notebook through it
            "reference.registry",
            "reference.gate",
            "rich.console",
            # MLflow checks a model's pip requirements against a map of every installed
            # distribution, built by reading all their metadata (a second); built here, every
            # stage inherits it
            "mlflow.utils.requirements_utils:_init_modules_to_packages_map",
            "reference.warm:_prepare_store",
        ),
    ),
)
COLD = ((COMMANDS, ()),)  # one runner, nothing imported ahead (``Runner.start(warm_up=False)``)
MESSAGE = 1 << 20  # the largest request (arguments, folder, environment) read in one message


def supported() -> bool:
    """Linux only: fork after importing torch and MLflow is safe there while the process has
    one thread; macOS's system libraries refuse it."""
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def enabled() -> bool:
    return supported() and os.environ.get(SWITCH, "1") != "0"


# ----------------------------------------------------------------------------- the stage side
def delegate(
    args: list[str], path: str | None = None, env: dict | None = None, cwd: Path | None = None
) -> int | None:
    """Run the command ``args`` in the runner at ``path`` (default: ``MLOPS_LAB_STAGE_RUNNER``)
    with this process's streams; its exit code, or None to run it here (no runner, not a stage
    command, or the runner is gone)."""
    path = path or os.environ.get(ENV)
    if not path or not args or args[0] not in COMMANDS or not supported():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    streams, spare = _streams()
    try:
        conn.connect(str(_socket_for(Path(path), args[0])))
        request = {
            "argv": args,
            "cwd": str(cwd or os.getcwd()),
            "env": dict(os.environ if env is None else env),
        }
        socket.send_fds(conn, [json.dumps(request).encode()], streams)
        started = _receive(conn)
    except OSError:
        conn.close()
        return None  # the run ended, or the runner died before taking the stage: run it here
    finally:
        for fd in spare:
            os.close(fd)
    try:
        with _forwarding(started["pid"], started["joined"]):
            done = _receive(conn)
    except OSError:
        done = {}
    with contextlib.suppress(OSError):  # gone already when the runner reported a dead child
        conn.sendall(b"done")  # the runner may now let the child finish on its own
    conn.close()
    if "exit" in done:
        return int(done["exit"])
    if "signal" in done:  # as a shell reports a process killed by a signal
        return 128 + int(done["signal"])
    print(f"error: the process {started['pid']} ended without an exit code", file=sys.stderr)
    return 1


@contextlib.contextmanager
def _forwarding(child: int, joined: bool):
    """Pass SIGTERM on to the child (DVC, or a later run, stopping this stage signals this
    process only); Ctrl+C too, unless it reaches the child by itself (same process group)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, signal.SIG_IGN if joined else forward)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _streams() -> tuple[list[int], list[int]]:
    """This process's stdin, stdout and stderr to pass on; /dev/null for one that is closed (a
    CI job without standard input), as a process started without it would read nothing."""
    streams, spare = [], []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            streams.append(fd)
        except OSError:
            spare.append(os.open(os.devnull, os.O_RDWR))
            streams.append(spare[-1])
    return streams, spare


def _group_socket(path: Path, group: int) -> Path:
    """Group 0's runner listens at ``path`` itself, the others beside it."""
    return path if group == 0 else path.with_name(f"{GROUPS[group][0][0]}.sock")


def _socket_for(path: Path, command: str) -> Path:
    """The socket of the runner whose group runs ``command``: ``path`` where there is none (a
    runner without its warm-up runs every command)."""
    for group, (commands, _) in enumerate(GROUPS):
        if command in commands and group and _group_socket(path, group).exists():
            return _group_socket(path, group)
    return path


def _receive(conn: socket.socket) -> dict:
    data = conn.recv(MESSAGE)
    if not data:
        raise ConnectionResetError("the runner closed the connection")
    return json.loads(data)


# ---------------------------------------------------------------------------- the runner side
class Runner:
    """The runner a pipeline run starts and stops: ``env`` is the stages' environment with
    ``MLOPS_LAB_STAGE_RUNNER`` set; ``stop()`` kills it and removes its folder."""

    def __init__(self, proc, folder: Path, env: dict[str, str]):
        self.proc, self.folder, self.env = proc, folder, env

    @classmethod
    def start(cls, env: dict[str, str], preexec_fn=None, warm_up: bool = True) -> Runner | None:
        """Start one, or None where the platform or ``MLOPS_LAB_WARM_STAGES=0`` says not to.
        ``warm_up=False``: import nothing ahead (each child imports what it uses)."""
        import subprocess

        if not supported() or env.get(SWITCH, "1") == "0":
            return None
        folder = Path(tempfile.mkdtemp(prefix="mlops-lab-stages-"))  # mode 0700: this user only
        path = folder / "runner.sock"
        proc = subprocess.Popen(
            [sys.executable, "-m", "reference.warm", str(path), *([] if warm_up else ["--cold"])],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # an import's warning here would be nobody's to read
            stderr=subprocess.DEVNULL,
            preexec_fn=preexec_fn,  # noqa: PLW1509 (a prctl resolved before the fork)
        )
        return cls(proc, folder, {**env, ENV: str(path)})

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until it takes requests (a stage that comes sooner runs in its own process)."""
        import time

        deadline = time.monotonic() + timeout
        while not Path(self.env[ENV]).exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def run(self, args: list[str], cwd: Path) -> int | None:
        """Run one of ``COMMANDS`` in the runner from this process, with its streams."""
        return delegate(args, self.env[ENV], self.env, cwd)

    def stop(self) -> None:
        """Kill it: it holds nothing to save, and a SIGTERM would wait for the import it is in."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def serve(path: Path, groups=GROUPS) -> None:
    """The first runner: listen for every group, then take its own group's stage requests as they
    come, import its group's next library when idle, and once they are all in, fork the next
    group's runner (see ``GROUPS``)."""
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"  # as the stage CLI sets it before MLflow
    os.environ.setdefault("MPLBACKEND", "Agg")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the stage, not for the runner
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # every group's socket takes connections from the start (a request for a later group waits
    # in its queue while that runner imports); the first one last: its appearance says "ready"
    listeners = [_listen(_group_socket(path, g)) for g in reversed(range(len(groups)))][::-1]
    _serve(0, groups, listeners)


def _listen(path: Path) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(f"{path}.new")
    listener.listen(8)
    os.rename(f"{path}.new", path)  # the socket appears only once it takes connections
    return listener


def _serve(group: int, groups, listeners: list[socket.socket | None]) -> None:
    """One group's runner loop; never returns (SIGTERM, or the runner above it dying, ends it)."""
    commands, steps = groups[group]
    listener = listeners[group]
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    # a child's exit wakes the loop (through this pipe), so it is reaped at once
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    children: dict[int, socket.socket] = {}  # pid -> the stage command's connection
    pending = list(steps)
    later = group + 1 < len(groups)  # the next group's runner is still to be forked
    while True:
        events = sel.select(timeout=0 if pending or later else None)
        for key, _ in events:
            if key.fileobj is listener:
                _accept(listener, sel, children, commands, listeners)
            elif key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
            else:  # "done", or the stage command went away (killed): then its child goes too
                try:
                    gone = not key.fileobj.recv(16)
                except OSError:
                    gone = True
                _drop(sel, children, key.data, kill=gone)
        _reap(sel, children)
        if events:
            continue
        if pending:
            _warm(pending.pop(0))
        elif later:
            later = False
            parent = os.getpid()
            if os.fork() == 0:
                _leave(sel, children, [listener])
                from reference.runlock import dies_with

                arm = dies_with(parent)  # the runners go with the first one (Runner.stop)
                if arm is not None:
                    arm()
                listeners[group] = None
                _serve(group + 1, groups, listeners)
            for g in range(group + 1, len(groups)):  # theirs now
                listeners[g].close()
                listeners[g] = None


def _leave(sel, children: dict[int, socket.socket], listeners) -> None:
    """In a child just forked from a runner: close what belongs to the runner's loop."""
    wake = signal.set_wakeup_fd(-1)
    if wake != -1:
        os.close(wake)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for key in list(sel.get_map().values()):
        if isinstance(key.fileobj, int):
            os.close(key.fileobj)
    sel.close()
    for listener in listeners:
        if listener is not None:
            listener.close()
    for other in children.values():
        other.close()


def _warm(step: str) -> None:
    """Import ``module``, or import ``module:function`` and call it (a cache to fill)."""
    module, _, function = step.partition(":")
    with contextlib.suppress(Exception):  # a library that moved only costs its warm-up
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()


def _prepare_store() -> None:
    """A new workspace's MLflow store, made ahead of the register stage (see
    ``reference.registry.prepare_store``), in a child that exits after: no open database is
    inherited by the stages forked later."""
    if "MLOPS_LAB_WORKSPACE" not in os.environ:
        return  # a runner not started by a pipeline run: no workspace of its own to prepare
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            from reference.config import get_settings
            from reference.registry import prepare_store

            settings = get_settings()
            os.chdir(settings.project)  # where the register stage would have made it from
            prepare_store(settings)
            code = 0
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def _accept(listener: socket.socket, sel, children, commands, listeners) -> None:
    conn, _ = listener.accept()
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    peer, uid, _ = struct.unpack("3i", creds)
    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(conn, MESSAGE, 3)
        request = json.loads(data)
        if uid != os.getuid() or len(fds) != 3 or request["argv"][0] not in commands:
            raise ValueError("not a stage request from this user, or not for this runner")
        client_pgid = os.getpgid(peer)  # OSError: it is already gone
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        for fd in fds:  # refused: what it passed is not kept open here
            os.close(fd)
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _leave(sel, children, listeners)
        _run_stage(conn, request, fds, client_pgid)  # never returns
    for fd in fds:
        os.close(fd)
    joined = _same_group(pid, client_pgid)
    conn.sendall(json.dumps({"pid": pid, "joined": joined}).encode())
    children[pid] = conn
    sel.register(conn, selectors.EVENT_READ, pid)


def _same_group(pid: int, pgid: int) -> bool:
    with contextlib.suppress(OSError):
        return os.getpgid(pid) == pgid
    return False


def _run_stage(conn: socket.socket, request: dict, fds: list[int], pgid: int) -> None:
    """In the forked child: become the stage command's process, run the stage, report, exit."""
    import atexit

    with contextlib.suppress(OSError):
        os.setpgid(0, pgid)  # the terminal's Ctrl+C reaches the stage, as it would a process
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    from reference.runlock import dies_with

    arm = dies_with(os.getppid())
    if arm is not None:
        arm()
    code = 1
    sys.argv = ["python -m reference", *request["argv"]]
    try:
        from reference.cli import main

        main()
        code = 0
    except SystemExit as e:
        code = _exit_code(e.code)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # as an uncaught exception ends a process: its traceback, then 1
        sys.excepthook(*sys.exc_info())
    # Exit as Python would, minus the interpreter's teardown: freeing every module a warm
    # interpreter holds (torch, MLflow, ...) costs two seconds of CPU, which the next stage
    # would share its cores with. What Python's exit does first is done here (wait for the
    # stage's threads, run its exit handlers, flush); then, as multiprocessing's forked
    # children leave, os._exit.
    threading._shutdown()
    atexit._run_exitfuncs()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"exit": code}).encode())
    os._exit(code)


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)  # sys.exit("message") prints it and exits with 1
    return 1


def _reap(sel, children: dict[int, socket.socket]) -> None:
    """Collect finished children and send each one's status: the stage command takes the first
    it gets, the child's own report, or this one for a child that could not report (a signal,
    ``os._exit``)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.get(pid)
        if conn is not None:
            if os.WIFSIGNALED(status):
                message = {"signal": os.WTERMSIG(status)}
            else:
                message = {"exit": os.waitstatus_to_exitcode(status)}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(message).encode())
        _drop(sel, children, pid, kill=False)


def _drop(sel, children: dict[int, socket.socket], pid: int, kill: bool) -> None:
    conn = children.pop(pid, None)
    if conn is None:
        return
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    sel.unregister(conn)
    conn.close()


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-") or set(sys.argv[2:]) - {"--cold"}:
        sys.exit(
            "usage: python -m reference.warm SOCKET [--cold]\n"
            "The stages' warm runner, started and stopped by `mlops-lab pipeline`; it listens at\n"
            "SOCKET (and beside it, one socket per group of stages). --cold: import nothing ahead."
        )
    serve(Path(sys.argv[1]), COLD if "--cold" in sys.argv[2:] else GROUPS)
