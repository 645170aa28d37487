"""Export a picked member: ONNX (checked, and compared with PyTorch through ONNX Runtime), a
PyTorch state dict, and the genotype, each carrying its provenance; and measure it for real.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnx
import torch

from hwnas.arch.space import SearchSpace
from hwnas.errors import UserError
from hwnas.latency.measure.backends.onnx_backend import export_onnx
from hwnas.latency.runner.files import atomic_write

ONNX_FILE, WEIGHTS_FILE, GENOTYPE_FILE = "model.onnx", "model.pt", "genotype.json"
TOLERANCE = 1e-4  # largest |ONNX Runtime − PyTorch| logit difference accepted


def example_input(space: SearchSpace) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(space.batch_size, space.input_channels, space.input_size,
                       space.input_size, generator=generator)


def export(network: torch.nn.Module, space: SearchSpace, provenance: dict[str, object],
           folder: Path) -> dict[str, str]:
    """Write the three files into `folder` (atomically each); returns their paths."""
    network = network.eval()
    x = example_input(space)
    model = onnx.load_from_string(export_onnx(network, (x,)))
    for key, value in provenance.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=json.dumps(value)))
    onnx.checker.check_model(model)
    payload = model.SerializeToString()
    _check_matches_torch(payload, network, x)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"onnx": folder / ONNX_FILE, "state_dict": folder / WEIGHTS_FILE,
             "genotype": folder / GENOTYPE_FILE}
    atomic_write(paths["onnx"], lambda tmp: Path(tmp).write_bytes(payload))
    buffer = io.BytesIO()
    torch.save({"state_dict": network.state_dict(), "provenance": provenance}, buffer)
    atomic_write(paths["state_dict"], lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    text = json.dumps(provenance, indent=2)
    atomic_write(paths["genotype"], lambda tmp: Path(tmp).write_text(text))
    return {name: str(path) for name, path in paths.items()}


def _check_matches_torch(payload: bytes, network: torch.nn.Module, x: torch.Tensor) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x0": x.numpy()})
    with torch.no_grad():
        expected = network(x).numpy()
    worst = float(np.abs(got - expected).max())
    if worst > TOLERANCE * max(1.0, float(np.abs(expected).max())):
        raise UserError(f"the exported ONNX model disagrees with PyTorch by {worst:.2e}; "
                        f"please report this with the run folder")
