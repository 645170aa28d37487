"""Whole networks measured each in its own new process, the way a deployed model runs.

A process that has built many models runs the same network several percent slower than a
new process running only that network, and slower still after the models are freed
(`benchmarks/process_state.py`: +5% and +9% median on exp1 in eager PyTorch). The profile
builds every entry before it calibrates, and `validate` builds dozens of networks, so
measuring whole networks in the long-lived process made predictions run high against a
deployed model.

So each network lives in its own child process, forked from a small server process that has
imported the libraries and built nothing: every child starts from the same clean state,
builds one network, and then times blocks on request. The parent still interleaves the
blocks of all networks in shuffled rounds (`timing.measure_interleaved`): timing each network
in one contiguous burst instead let a noisy second on this shared machine inflate a whole
measurement (the same network ranged 3.2–4.1 ms over ten children). Only one child runs at a
time, so they never compete for the cores. The server is our own (`python -m <this
package>.forkserver MODULE...`) rather than multiprocessing's forkserver, which re-runs the
caller's main script in every child; it relays requests to the children over pipes. What a
child builds is the caller's: the host's torch and ONNX Runtime networks
(`hwnas/latency/measure/fresh_networks.py`) or the bundle runner's sessions.
"""

from __future__ import annotations

import gc
import importlib
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import IO, Protocol, cast

from . import phases
from .errors import UserError
from .phases import phase
from .timing import Blocked, Clock, Measurement, TimingSettings, measure_interleaved

# Networks alive at once: a child holds ~11 MB (torch) to ~31 MB (onnxruntime) of its own.
GROUP = 96


class ProcessTask(Protocol):
    """What a child builds: picklable, and importable in the server (see `FreshProcesses`)."""

    def build(self) -> Blocked:
        """Build the network in the child; what comes back is warmed up and timed there."""
        ...


class FreshNetwork:
    """A network living in its own child process; timed like a local `Timed`."""

    def __init__(self, server: FreshProcesses, handle: int) -> None:
        self._server = server
        self._handle = handle

    def start(self, settings: TimingSettings, clock: Clock) -> None:
        self._server.request("warm_up", self._handle, settings)

    def block(self, settings: TimingSettings, clock: Clock) -> list[float]:
        # the child answers "block" with the block's times in seconds
        return cast("list[float]", self._server.request("block", self._handle, settings))


class FreshProcesses:
    """The server forking one child per network; use as a context manager.

    `preload`: what the server imports once before forking, so that no child pays for it:
    modules, at least the one defining the tasks, each optionally `module:function` to call
    that function (no arguments) after importing it.
    """

    def __init__(self, preload: tuple[str, ...]) -> None:
        self._preload = preload

    def __enter__(self) -> FreshProcesses:
        """Start the server now: it imports its libraries (about 4 s for torch, onnxruntime
        and the exporter on a 2-core CPU) while this process goes on with its own work, such
        as importing the same libraries; the first `open` waits until it is ready."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        # the server sees this process's path; an isolated one (`python -I`) keeps it from
        # the user's site-packages too (-I itself would ignore the PYTHONPATH it needs)
        flags = ["-s"] if sys.flags.no_user_site else []
        self._server = subprocess.Popen(
            [sys.executable, *flags, "-m", f"{__package__}.forkserver", *self._preload],
            env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._ready = False
        self._handles = 0
        return self

    def open(self, task: ProcessTask) -> FreshNetwork:
        """A new child process with the task's network built in it."""
        if not self._ready:
            with phase("server start (not overlapped)"):
                self._reply()  # the server is ready once it has imported the libraries
            self._ready = True
        self._handles += 1
        with phase("launch"):  # fork, and build in the child (its own tally comes back)
            # the child answers "open" with its own phase tally
            phases.add(cast("dict[str, float]", self.request("open", self._handles, task)))
        return FreshNetwork(self, self._handles)

    def close_all(self) -> None:
        """End every open child."""
        if self._ready:
            self.request("close_all", 0, None)

    def request(self, command: str, handle: int, payload: object) -> object:
        assert self._server.stdin
        try:
            pickle.dump((command, handle, payload), self._server.stdin)
            self._server.stdin.flush()
        except BrokenPipeError:
            raise UserError("the process measuring whole networks stopped unexpectedly; "
                            "see the messages above") from None
        return self._reply()

    def _reply(self) -> object:
        assert self._server.stdout
        try:
            status, value = pickle.load(self._server.stdout)
        except EOFError:
            raise UserError("the process measuring whole networks stopped unexpectedly; "
                            "see the messages above") from None
        if status != "ok":
            raise UserError(f"measuring a whole network failed: {value}")
        return value

    def __exit__(self, exc_type: object, *exc: object) -> None:
        """Let the server end its children and exit; after an error, or when it was never
        used, it is stopped at once instead (its children then see their pipes close)."""
        if exc_type is None and self._ready:
            try:
                assert self._server.stdin  # opened with stdin=PIPE
                self._server.stdin.close()
                self._server.wait(timeout=10)
                return
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        self._server.kill()
        self._server.wait()
        for pipe in (self._server.stdin, self._server.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def measure_fresh(fresh: FreshProcesses, tasks: Mapping[Hashable, ProcessTask],
                  settings: TimingSettings, kept: dict[Hashable, Measurement] | None = None,
                  on_block: Callable[[Hashable, list[float]], None] = lambda key, block: None,
                  seed: int = 0, alongside: Mapping[Hashable, Blocked] | None = None,
                  ) -> dict[Hashable, Measurement]:
    """Every task's network in its own child, interleaved in groups of `GROUP`.

    `alongside` (local entries) are interleaved with the first group, so both are measured
    in the same stretch of time. Networks whose `kept` measurement is already done (resume)
    are not rebuilt.
    """
    kept = kept or {}
    results = {key: kept[key] for key in tasks if key in kept and kept[key].done(settings)}
    todo = [key for key in tasks if key not in results]
    for start in range(0, max(len(todo), 1), GROUP):
        try:
            group = {key: fresh.open(tasks[key]) for key in todo[start:start + GROUP]}
            together = {**(alongside or {}), **group} if start == 0 else group
            results.update(measure_interleaved(together, settings, kept, on_block, seed=seed))
        finally:
            fresh.close_all()
    return results


# ---- the server and its children (run as `python -m <this package>.forkserver`) ----

@dataclass
class _Child:
    pid: int
    requests: IO[bytes]
    replies: IO[bytes]


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer the parent's requests: fork a child per `open`, relay the rest to it."""
    children: dict[int, _Child] = {}
    while True:
        try:
            command, handle, payload = pickle.load(requests)
        except EOFError:
            break
        if command == "open":
            children[handle] = child = _fork(list(children.values()))
            reply = _relay(child, ("build", payload))
        elif command == "close_all":
            _close(children)
            reply = ("ok", None)
        else:
            reply = _relay(children[handle], (command, payload))
        pickle.dump(reply, replies)
        replies.flush()
    _close(children)


def _fork(siblings: list[_Child]) -> _Child:
    """A new child talking over two pipes; it drops its copies of its siblings' pipes, so
    each child sees the end of its requests when the server closes them."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_child_w)
        os.close(from_child_r)
        for sibling in siblings:
            sibling.requests.close()
            sibling.replies.close()
        _child_loop(os.fdopen(to_child_r, "rb"), os.fdopen(from_child_w, "wb"))
        os._exit(0)
    os.close(to_child_r)
    os.close(from_child_w)
    return _Child(pid, os.fdopen(to_child_w, "wb"), os.fdopen(from_child_r, "rb"))


def _relay(child: _Child, message: tuple[str, object]) -> tuple[str, object]:
    try:
        pickle.dump(message, child.requests)
        child.requests.flush()
        return pickle.load(child.replies)
    except (BrokenPipeError, EOFError):
        return "error", "the process holding the network died"


def _close(children: dict[int, _Child]) -> None:
    for child in children.values():
        child.requests.close()
        child.replies.close()
    for child in children.values():
        os.waitpid(child.pid, 0)
    children.clear()


def _child_loop(requests: IO[bytes], replies: IO[bytes]) -> None:
    """In the child: build the network on `build`, then warm up and time blocks on request."""
    timed = None
    while True:
        try:
            command, payload = pickle.load(requests)
        except EOFError:
            return
        try:
            if command == "build":
                phases.take()  # the tally starts with this network's build
                timed = payload.build()
                reply: tuple[str, object] = ("ok", phases.take())
            elif timed is None:
                reply = ("error", f"{command} before build")
            elif command == "warm_up":
                reply = ("ok", timed.start(payload, time.perf_counter))
            else:
                reply = ("ok", timed.block(payload, time.perf_counter))
        except Exception as exc:  # reported to the parent, which raises it as one line
            reply = ("error", f"{type(exc).__name__}: {exc}")
        pickle.dump(reply, replies)
        replies.flush()


def main() -> None:
    """The server: import what children need once (the arguments, `module[:function]`),
    keep stdout for replies only."""
    if not hasattr(os, "fork"):
        sys.exit("hwnas measures whole networks in forked processes, which this platform "
                 "lacks; use Linux or macOS")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and closes us
    for spec in sys.argv[1:]:
        module, _, function = spec.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the reply stream
    # Children never collect (or copy on write) what the server imported: a full collection
    # over the inherited heap made building a network in a child take 0.14 s instead of 0.01.
    # The server itself must never run a torch op or create a session: a child forked after
    # that hangs in the thread pool it inherits half-made (seen with an export to pre-warm).
    gc.freeze()
    pickle.dump(("ok", "ready"), replies)
    replies.flush()
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
