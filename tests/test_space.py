"""The space: presets, files, errors, and the exact set of shapes the network contains."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from hwnas.arch import keys
from hwnas.arch.genotypes import Genotype, pure_genotypes
from hwnas.arch.keys import EntryKey
from hwnas.arch.network import discrete_network
from hwnas.arch.space import (
    PRESETS,
    SearchSpace,
    SpaceError,
    cell_edges,
    enumerate_entries,
    fixed_entries,
    load_space,
)


def test_a_cell_of_four_nodes_has_fourteen_edges() -> None:
    assert len(cell_edges(4)) == 2 + 3 + 4 + 5
    assert cell_edges(2) == [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]


def test_exp1_entry_count_from_first_principles() -> None:
    space = PRESETS["exp1"]
    k, n_nodes = len(space.ops), space.nodes
    assert (space.cells, space.reduction_cells, k) == (3, (1, 2), 3)
    # Edge ops: a normal cell meets one shape (stride 1); a reduction cell two (stride 2
    # from its inputs, stride 1 between its nodes). Cells: normal, reduction, reduction.
    edge_shapes = 1 + 2 + 2
    # Fixed parts: stem; preprocessing: cell 0 has both inputs from the stem (one shape),
    # cell 1 two different 1×1 adapters, cell 2 a factorized reduce and a 1×1 adapter;
    # node sums of 2..5 inputs and one concat per cell (three cell shapes); the head.
    fixed = 1 + (1 + 2 + 2) + space.cells * (n_nodes + 1) + 1
    entries = enumerate_entries(space)
    assert len(entries) == k * edge_shapes + fixed == 37
    assert len(set(entries)) == len(entries)
    counts = Counter(entry.op for entry in entries)
    assert counts[keys.NODE_SUM] == 12 and counts[keys.PREPROCESS_REDUCE] == 1
    assert all(counts[op] == edge_shapes for op in space.ops)


def _shapes_met_in_network(space: SearchSpace, genotype: Genotype) -> set[EntryKey]:
    """Run the real network and record the key of every module that ran, from its inputs."""
    net = discrete_network(space, genotype).eval()
    seen: set[EntryKey] = set()

    def hook(kind: str, module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        x = args[0]
        stride = x.shape[-1] // out.shape[-1] if out.dim() == 4 else 1
        c_out = out.shape[1]
        seen.add(EntryKey(kind, x.shape[0], x.shape[1], c_out, x.shape[2], x.shape[3],
                          stride, n_inputs=len(args)))

    for cell in net.cells:
        for index, edge in enumerate(cell.edges):
            name = genotype.for_cell(cell.plan)[index]
            edge.register_forward_hook(lambda m, a, o, name=name: hook(name, m, a, o))
        for kind, module in ((keys.NODE_SUM, cell.node_sum), (keys.CONCAT, cell.concat)):
            module.register_forward_hook(lambda m, a, o, kind=kind: hook(kind, m, a, o))
        pre0 = keys.PREPROCESS_REDUCE if cell.plan.reduction_prev else keys.PREPROCESS
        cell.preprocess0.register_forward_hook(lambda m, a, o, k=pre0: hook(k, m, a, o))
        cell.preprocess1.register_forward_hook(
            lambda m, a, o: hook(keys.PREPROCESS, m, a, o))
    net.stem.register_forward_hook(lambda m, a, o: hook(keys.STEM, m, a, o))
    x = torch.randn(space.batch_size, space.input_channels, space.input_size, space.input_size)
    with torch.no_grad():
        net(x)
    return seen


@pytest.mark.parametrize("preset", list(PRESETS))
def test_enumeration_covers_exactly_what_the_network_runs(preset: str) -> None:
    space = PRESETS[preset]
    entries = set(enumerate_entries(space))
    met: set[EntryKey] = set()
    for genotype in pure_genotypes(space):  # every op on every edge
        met |= _shapes_met_in_network(space, genotype)
    head = [e for e in entries if e.op == keys.HEAD]
    assert met == entries - set(head)
    assert head == [EntryKey(keys.HEAD, 1, fixed_entries(space)[-1].c_in, space.classes,
                             head[0].h, head[0].w, 1)]


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_space_loads_from_a_file(tmp_path, suffix: str) -> None:
    path = tmp_path / f"mine{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"name": "mine", "ops": ["conv_3x3", "skip_connect"],
                                    "channels": 4, "input_size": 16}))
    else:
        path.write_text('name = "mine"\nops = ["conv_3x3", "skip_connect"]\nchannels = 4\n'
                        'input_size = 16\n')
    space = load_space(str(path))
    assert space == SearchSpace("mine", ("conv_3x3", "skip_connect"), channels=4, input_size=16)
    assert space.fingerprint() != PRESETS["exp1"].fingerprint()


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "x", "ops": ["conv_9x9"]}, "unknown operation.*conv_9x9"),
    ({"name": "x", "ops": ["conv_3x3"], "colour": 1}, "unknown space field.*colour"),
    ({"ops": ["conv_3x3"]}, "needs at least 'name' and 'ops'"),
    ({"name": "x", "ops": []}, "at least one operation"),
    ({"name": "x", "ops": ["conv_3x3"], "channels": 0}, "'channels' must be a positive"),
    ({"name": "x", "ops": ["conv_3x3"], "channels": 5}, "must be even"),
    ({"name": "x", "ops": ["conv_3x3"], "input_size": 30}, "cannot be halved"),
    ({"name": "x", "ops": ["conv_3x3"], "reduction_cells": [3]}, "must be cell indices"),
    ({"name": "x", "ops": ["conv_3x3", "conv_3x3"]}, "twice"),
])
def test_bad_space_files_name_the_problem(tmp_path, data: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpaceError, match=message):
        load_space(str(path))


@pytest.mark.parametrize(("text", "message"), [
    ("nope", "unknown space 'nope'"),
    ("missing.json", "not found"),
])
def test_unknown_space_names_the_presets(text: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        load_space(text)
