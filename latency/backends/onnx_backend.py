"""ONNX Runtime: the module exported to ONNX at its shape, run by one InferenceSession.

Single entries are exported with the TorchScript-based exporter (about 10 ms each; the
default dynamo exporter takes 0.7 s per module, which alone would break the one-minute
profile). Sessions run single-threaded inter-op, `threads` intra-op.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from latency.backends import BackendUnavailable
from latency.entries import build
from latency.keys import EntryKey
from latency.timing import Timed


def export_onnx(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> bytes:
    """The module as an ONNX model (bytes), inputs named x0, x1, …, output `y`."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module.eval(), inputs, buffer, dynamo=False,
                          input_names=[f"x{i}" for i in range(len(inputs))],
                          output_names=["y"], opset_version=17)
    return buffer.getvalue()


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, device: str, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime is not installed ({exc})") from None
        self._ort = ort
        self.device = device
        wanted = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
        if wanted not in ort.get_available_providers():
            raise BackendUnavailable(
                f"onnxruntime here has no {wanted} (it has "
                f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu for "
                f"--device cuda")
        self.providers: list[object] = [wanted]
        if wanted == "CUDAExecutionProvider":
            self.providers = [(wanted, {"device_id": torch.device(device).index or 0})]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.options = options

    def prepare(self, key: EntryKey) -> Timed:
        module, inputs = build(key)
        return self.prepare_module(module, inputs)

    def prepare_module(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> Timed:
        model = export_onnx(module.cpu(), tuple(x.cpu() for x in inputs))
        session = self._ort.InferenceSession(model, self.options, providers=self.providers)
        feeds = {f"x{i}": x.cpu().numpy() for i, x in enumerate(inputs)}
        return Timed(lambda: session.run(None, feeds))
