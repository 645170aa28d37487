"""ONNX Runtime: the module exported to ONNX at its shape, run by one InferenceSession.

Single entries are exported with the TorchScript-based exporter (about 10 ms each; the
default dynamo exporter takes 0.7 s per module, which alone would break the one-minute
profile). Sessions run single-threaded inter-op, `threads` intra-op.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

from hwnas.arch.keys import EntryKey
from hwnas.latency.measure.backends import BackendUnavailable
from hwnas.latency.measure.entries import build
from hwnas.latency.runner.phases import phase
from hwnas.latency.runner.timing import Timed

if TYPE_CHECKING:
    from hwnas.latency.measure.export_ahead import Item


def export_onnx(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> bytes:
    """The module as an ONNX model (bytes), inputs named x0, x1, …, output `y`."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module.eval(), inputs,
                          buffer,  # type: ignore[arg-type]  # stub lacks BytesIO; dynamo=False takes it
                          dynamo=False,
                          input_names=[f"x{i}" for i in range(len(inputs))],
                          output_names=["y"], opset_version=17)
    return buffer.getvalue()


def load_exporter() -> None:
    """Import what `torch.onnx.export` otherwise imports on its first call: the ONNX package,
    the TorchScript exporter and its symbolic functions (1–4 s on a 2-core CPU, against
    0.03–0.1 s for an export itself). The fresh-process server calls this once, so each
    child it forks exports its network without paying it again. Import only: the server
    must not run a torch op (`hwnas.latency.runner.forkserver.main`)."""
    import onnx  # noqa: F401

    # torch ≥ 2.9 keeps the exporter under _internal; earlier versions directly in torch.onnx
    for package in ("torch.onnx._internal.torchscript_exporter", "torch.onnx"):
        try:
            importlib.import_module(f"{package}.utils")
        except ModuleNotFoundError:
            continue
        for opset in range(7, 21):
            with contextlib.suppress(ModuleNotFoundError):
                importlib.import_module(f"{package}.symbolic_opset{opset}")
        return


def entry_onnx(key: EntryKey) -> bytes:
    """A table entry's module as ONNX: what the backend times, and what a bundle ships."""
    return export_onnx(*build(key))


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, device: str, threads: int) -> None:
        try:
            from hwnas.latency.runner import ort_session
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from None
        self._sessions = ort_session
        self.device = device
        wanted = (ort_session.CUDA_PROVIDER if device.startswith("cuda")
                  else ort_session.CPU_PROVIDER)
        available = ort_session.ort.get_available_providers()
        if wanted not in available:
            raise BackendUnavailable(
                f"onnxruntime here has no {wanted} (it has {', '.join(available)}); install "
                f"onnxruntime-gpu for --device cuda")
        self.providers = ort_session.providers_for(wanted, torch.device(device).index or 0)
        self.options = ort_session.session_options(threads)
        # entries (and the networks beside them) exported ahead (export_ahead.py)
        self.exported: dict[Item, bytes] = {}

    def prepare(self, key: EntryKey) -> Timed:
        module, inputs = build(key)
        if key in self.exported:
            return self.prepare_onnx(self.exported[key], inputs)
        return self.prepare_module(module, inputs)

    def prepare_module(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Timed:
        with phase("onnx export"):
            model = export_onnx(module.cpu(), tuple(x.cpu() for x in inputs))
        return self.prepare_onnx(model, inputs)

    def prepare_onnx(self, model: bytes, inputs: tuple[torch.Tensor, ...]) -> Timed:
        """A session on an exported model, fed `inputs`."""
        feeds = {f"x{i}": x.cpu().numpy() for i, x in enumerate(inputs)}
        with phase("session creation"):
            return self._sessions.timed_session(model, self.options, self.providers, feeds)
