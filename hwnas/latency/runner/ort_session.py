"""ONNX Runtime sessions as every hwnas measurement runs them, without torch.

The onnxruntime backend (`latency/backends/onnx_backend.py`) and the bundle runner that
measures a target with no torch (`latency/target.py`) both build their sessions here, so the
host's table and the target's are timed with the same session settings.
"""

from __future__ import annotations

from collections.abc import Mapping

import onnxruntime as ort

from .timing import Timed

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


def session_options(threads: int) -> ort.SessionOptions:
    """`threads` intra-op, one inter-op, sequential execution, warnings off."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


def providers_for(provider: str, device_id: int = 0) -> list[object]:
    """The providers list of a session on `provider` (a CUDA one on GPU `device_id`)."""
    if provider == CUDA_PROVIDER:
        return [(provider, {"device_id": device_id})]
    return [provider]


def timed_session(model: bytes | str, options: ort.SessionOptions, providers: list[object],
                  feeds: Mapping[str, object]) -> Timed:
    """A session on `model` (bytes or a file path), ready to time one run per call."""
    session = ort.InferenceSession(model, options, providers=providers)
    inputs = dict(feeds)
    return Timed(lambda: session.run(None, inputs))
