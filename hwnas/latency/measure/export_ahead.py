"""ONNX exports made ahead, in a process of their own, while the profile measures torch.

Exporting a whole exp1 network (TorchScript tracing and the ONNX passes) takes about half a
second to two seconds on a 2-core CPU, an entry tens of milliseconds, and the first export
in a process seconds more for the exporter's imports. The profile measures one backend at a
time on one core, so during its torch phase the other core is idle: `ExportAhead` exports
the onnxruntime calibration networks and entries there, in a low-priority process, and the
onnxruntime phase then only creates sessions. The exported models are the ones the
onnxruntime backend would have made (the same modules and shapes; weights are random either
way). Used only when the machine has a core to spare (`spare_core`); otherwise everything
is exported where it is measured, as before.

    python -m hwnas.latency.measure.export_ahead   # pickled items on stdin, ONNX bytes out
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading

from hwnas.arch.genotypes import Genotype
from hwnas.arch.keys import EntryKey
from hwnas.arch.space import SearchSpace

Item = EntryKey | Genotype  # an entry, or a whole network of the space


def spare_core(threads: int) -> bool:
    """Whether a core is left when the measurement uses `threads` of this process's."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (usable or 1) > threads


class ExportAhead:
    """Start exporting `items` now; `take()` returns the models made by then (and stops the
    rest, which the backend then exports itself): on a busy machine the low-priority
    process may not finish in time, and waiting for it would cost more than it saves."""

    def __init__(self, space: SearchSpace, items: list[Item]) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._process = subprocess.Popen([sys.executable, "-m", __name__], env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._items = items
        self._models: dict[Item, bytes] = {}
        assert self._process.stdin
        pickle.dump((space, items), self._process.stdin)
        self._process.stdin.close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout
        try:
            while True:
                index, model = pickle.load(self._process.stdout)
                self._models[self._items[index]] = model
        except (EOFError, pickle.UnpicklingError, OSError):
            return  # done, or stopped in the middle of a model

    def take(self) -> dict[Item, bytes]:
        """The models exported so far; the exporting process is stopped."""
        self.cancel()
        self._reader.join()
        return dict(self._models)

    def cancel(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


def main() -> None:
    from hwnas.latency.measure.backends.onnx_backend import entry_onnx, export_onnx
    from hwnas.latency.measure.networks import network_inputs

    os.nice(10)  # the measurement on the other core comes first
    space, items = pickle.load(sys.stdin.buffer)
    # the networks first: each saves its child an export of up to seconds, an entry ~30 ms
    order = sorted(range(len(items)), key=lambda i: isinstance(items[i], EntryKey))
    for index in order:
        item = items[index]
        model = (entry_onnx(item) if isinstance(item, EntryKey)
                 else export_onnx(*network_inputs(space, item)))
        pickle.dump((index, model), sys.stdout.buffer)
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
