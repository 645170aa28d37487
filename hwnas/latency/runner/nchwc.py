"""This machine's ONNX Runtime NCHWc channel block, asked of ONNX Runtime itself: what the
latency model's graph terms (`hwnas/latency/model/ort_graph.py`) need to count the reorder
nodes of a network. The host and the bundle runner ask it the same way, of the same probe."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

# The probe: one 1×1 convolution per input channel count, each from its own input `x{c}`
# of shape 1×c×8×8 to 16 channels (built by `ort_graph.probe_model` on the host, where the
# onnx package is; a bundle ships it).
PROBE_CHANNELS = (4, 8, 16, 32, 64)


def nchwc_block(probe: bytes | str) -> int:
    """The smallest input channel count whose convolution ONNX Runtime reorders into the
    blocked layout (one with fewer channels reads the plain layout directly); 1 when it makes
    no blocked nodes at all. Read from the ops a profiled run of the probe executes."""
    ops = _executed_ops(probe)
    if not any(op == "ReorderOutput" for op, _ in ops):
        return 1
    reordered = {shape[1] for op, shape in ops if op == "ReorderInput" and len(shape) > 1}
    return min((c for c in PROBE_CHANNELS if c in reordered), default=2 * PROBE_CHANNELS[-1])


def _executed_ops(probe: bytes | str) -> list[tuple[str, list[int]]]:
    """(op type, first input's shape) of every node a single-threaded CPU session runs."""
    from .ort_session import CPU_PROVIDER, ort, session_options

    options = session_options(1)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = os.path.join(folder, "probe")
        session = ort.InferenceSession(probe, options, providers=[CPU_PROVIDER])
        session.run(None, {f"x{c}": np.ones((1, c, 8, 8), np.float32) for c in PROBE_CHANNELS})
        with open(session.end_profiling()) as events:
            profile = json.load(events)
    return [(event["args"]["op_name"], _first_shape(event["args"]))
            for event in profile if event.get("cat") == "Node"
            and event.get("name", "").endswith("_kernel_time")]


def _first_shape(args: dict) -> list[int]:
    shapes = args.get("input_type_shape") or [{}]
    return next(iter(shapes[0].values()), [])
