"""Genotypes: the JSON format old files hold, the samplers' draws for fixed seeds, and the
named reference genotypes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_SPACE

from hwnas.arch.genotypes import (
    REFERENCES,
    Genotype,
    calibration_genotypes,
    mixture_genotypes,
    pure_genotypes,
    random_genotype,
    validation_genotypes,
)
from hwnas.arch.registry import OpFamily, edge_op
from hwnas.arch.space import PRESETS

_P, _S, _C = "max_pool_3x3", "skip_connect", "conv_3x3"


def test_json_is_the_format_old_files_hold() -> None:
    genotype = Genotype((_P, _C), (_S, _S))
    text = '{"normal": ["max_pool_3x3", "conv_3x3"], "reduce": ["skip_connect", "skip_connect"]}'
    assert genotype.to_json() == text
    assert Genotype.from_json(text) == genotype


def _draws() -> dict[str, list[Genotype]]:
    calibration = calibration_genotypes(TINY_SPACE, 5, seed=0)
    return {
        "calibration tiny 5 seed 0": calibration,
        "validation tiny 2 seed 0": validation_genotypes(TINY_SPACE, 2, seed=0,
                                                         exclude=calibration),
        "calibration exp1 5 seed 7, last": calibration_genotypes(PRESETS["exp1"], 5, seed=7)[-1:],
        "random tiny seed 1": [random_genotype(TINY_SPACE, torch.Generator().manual_seed(1))],
        "mixture darts rng 11": mixture_genotypes(PRESETS["darts"], 1, np.random.default_rng(11),
                                                  include_pure=False),
    }


# What the samplers drew at commit b437d50, before they moved here: a table's calibration
# networks are re-drawn from its seed, so these must never change.
_EXPECTED = {
    "calibration tiny 5 seed 0": [
        Genotype((_P,) * 5, (_P,) * 5), Genotype((_S,) * 5, (_S,) * 5),
        Genotype((_C,) * 5, (_C,) * 5),
        Genotype((_P, _S, _S, _S, _C), (_S, _P, _C, _P, _P)),
        Genotype((_P, _S, _P, _P, _P), (_P,) * 5)],
    "validation tiny 2 seed 0": [Genotype((_P, _S, _P, _P, _P), (_C, _P, _P, _S, _P)),
                                 Genotype((_S, _S, _S, _P, _P), (_P, _S, _P, _S, _P))],
    "calibration exp1 5 seed 7, last": [Genotype.from_json(
        '{"normal": ["skip_connect", "skip_connect", "max_pool_3x3", "skip_connect", '
        '"skip_connect", "max_pool_3x3", "conv_3x3", "skip_connect", "skip_connect", '
        '"max_pool_3x3", "max_pool_3x3", "max_pool_3x3", "conv_3x3", "skip_connect"], '
        '"reduce": ["max_pool_3x3", "skip_connect", "skip_connect", "max_pool_3x3", '
        '"max_pool_3x3", "skip_connect", "conv_3x3", "max_pool_3x3", "max_pool_3x3", '
        '"skip_connect", "max_pool_3x3", "max_pool_3x3", "skip_connect", "conv_3x3"]}')],
    "random tiny seed 1": [Genotype((_S, _C, _P, _C, _S), (_S, _C, _C, _C, _P))],
    "mixture darts rng 11": [Genotype.from_json(
        '{"normal": ["avg_pool_3x3", "dil_conv_3x3", "dil_conv_3x3", "dil_conv_3x3", '
        '"dil_conv_3x3", "dil_conv_3x3", "skip_connect", "skip_connect", "dil_conv_3x3", '
        '"dil_conv_3x3", "dil_conv_3x3", "dil_conv_3x3", "dil_conv_3x3", "dil_conv_3x3"], '
        '"reduce": ["skip_connect", "dil_conv_3x3", "dil_conv_3x3", "dil_conv_3x3", '
        '"dil_conv_3x3", "skip_connect", "dil_conv_3x3", "dil_conv_3x3", "avg_pool_3x3", '
        '"dil_conv_3x3", "skip_connect", "avg_pool_3x3", "dil_conv_3x3", "dil_conv_3x3"]}')],
}


def test_samplers_draw_what_they_drew_before_they_moved() -> None:
    assert _draws() == _EXPECTED


def test_calibration_networks_start_with_pure_ones_and_vary_their_mixture() -> None:
    genotypes = calibration_genotypes(TINY_SPACE, 12, seed=0)
    edges = TINY_SPACE.edges_per_cell
    assert genotypes[:3] == pure_genotypes(TINY_SPACE)
    assert len(set(genotypes)) == 12
    conv_share = [sum(op == "conv_3x3" for op in g.normal + g.reduce) / (2 * edges)
                  for g in genotypes[3:]]
    # uniform per-edge sampling: sqrt(p(1-p)/10) ≈ 0.15; flat-Dirichlet mixtures ≈ 0.24
    assert np.std(conv_share) > 0.19


def test_validation_networks_avoid_calibration_ones() -> None:
    used = calibration_genotypes(TINY_SPACE, 12, seed=0)
    held_out = validation_genotypes(TINY_SPACE, 20, seed=0, exclude=used)
    assert len(set(held_out)) == 20 and not set(held_out) & set(used)
    rng = np.random.default_rng(0)
    assert mixture_genotypes(TINY_SPACE, 5, rng, include_pure=False)[0] != used[0]


def test_random_genotype_uses_only_the_space_ops() -> None:
    space = PRESETS["exp2"]
    genotype = random_genotype(space, torch.Generator().manual_seed(3))
    assert len(genotype.normal) == len(genotype.reduce) == 14
    assert set(genotype.normal) | set(genotype.reduce) <= set(space.ops)


_KINDS = {"all_conv": {OpFamily.CONV, OpFamily.SEP_CONV}, "all_skip": {OpFamily.SKIP},
          "all_pool": {OpFamily.MAX_POOL, OpFamily.AVG_POOL}}


@pytest.mark.parametrize(("preset", "name"),
                         [(p, n) for p, named in REFERENCES.items() for n in named])
def test_each_reference_genotype_fits_its_preset_and_names_its_ops(preset: str,
                                                                   name: str) -> None:
    genotype = REFERENCES[preset][name]
    genotype.check(PRESETS[preset])
    (op,) = set(genotype.normal) | set(genotype.reduce)
    assert edge_op(op).family in _KINDS[name]


def test_the_architecture_reads_without_torch() -> None:
    code = ("import sys; import hwnas.arch.genotypes, hwnas.arch.registry, hwnas.arch.keys; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
