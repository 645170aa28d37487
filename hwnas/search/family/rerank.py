"""`pick --rerank K`: re-check the finalists before choosing.

The K members under the budget with the highest inherited validation accuracy (ranked as
`best_within` ranks them) are each fine-tuned from their inherited weights for a few epochs
with `hwnas train`'s recipe on the training split, every one with the same seed; the one most
accurate on the validation split afterwards is chosen (ties: the higher inherited accuracy,
then the lower latency, then the better-ranked finalist). Inherited accuracy orders members
of similar latency only loosely (docs/accuracy.md); a short fine-tune is a closer look.

The fine-tuned weights serve the choice only: an export is the chosen member with its
inherited weights, as without re-ranking. Each finalist's result is stored in the run folder
as soon as it is computed (`rerank.json`, keyed by genotype, epochs, recipe fingerprint and
seed, for this checkpoint), so a repeated pick trains nothing and, on a cached family, imports
no torch. Nothing is chosen on the test split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.hooks import Hooks
from hwnas.latency.model.table import Record
from hwnas.search.family.cache import read_finetuned, write_finetuned
from hwnas.search.family.pick import genotype_of
from hwnas.search.retrain.recipe import Recipe

if TYPE_CHECKING:
    from hwnas.arch.genotypes import Genotype
    from hwnas.arch.space import SearchSpace
    from hwnas.search.family.sweep import LoadedRun


@dataclass(frozen=True)
class Finalist:
    """One member fine-tuned for the choice, and what that cost."""

    genotype: str  # JSON, as the family's records hold it
    predicted_latency_ms: float  # on the pick's backend
    inherited_val_accuracy: float  # with the supernet's weights: what it was ranked on
    finetuned_val_accuracy: float  # after the fine-tune: what the choice is made on
    seconds: float  # wall time of its fine-tune when it was computed (not reading the run)
    cached: bool  # read from rerank.json: nothing was trained for it now

    def to_dict(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "genotype": json.loads(self.genotype)}


@dataclass(frozen=True)
class Rerank:
    """The finalists (best inherited accuracy first) and the one chosen among them."""

    k: int  # finalists asked for (fewer when fewer members fit)
    epochs: int  # fine-tuning epochs of each
    seed: int  # batch order and augmentation, the same for every finalist
    recipe: str  # the recipe's fingerprint (`recipe_fingerprint`)
    finalists: list[Finalist]
    chosen: Finalist

    @property
    def cost_s(self) -> float:
        """Fine-tuning time of all finalists, as each was measured when computed."""
        return sum(finalist.seconds for finalist in self.finalists)

    @property
    def reused(self) -> int:
        """Finalists read from the run folder's cache."""
        return sum(finalist.cached for finalist in self.finalists)

    def to_dict(self) -> dict[str, object]:
        """What `pick --json` carries beside the pick."""
        return {"k": self.k, "epochs": self.epochs, "seed": self.seed,
                "recipe_fingerprint": self.recipe, "cost_s": self.cost_s,
                "reused": self.reused}


def recipe_fingerprint(recipe: Recipe, space: SearchSpace) -> str:
    """The recipe as the fine-tune applies it (augmentation resolved for the space), hashed."""
    text = json.dumps({**recipe.to_dict(), "augmentation": recipe.augmentation(space)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rerank(ranked: list[Record], k: int, epochs: int, seed: int, latency: str, run_dir: Path,
           space: SearchSpace, load: Callable[[], LoadedRun], hooks: Hooks) -> Rerank:
    """Fine-tune the first `k` of `ranked` (members within the budget, best first; `latency`
    is their predicted-latency column) with `hwnas train`'s recipe and choose among them.
    `load` gives the run, called only when a finalist is not in the run folder's cache."""
    recipe = Recipe()
    fingerprint = recipe_fingerprint(recipe, space)
    rows = ranked[:k]
    stored = read_finetuned(run_dir)
    keys = [json.dumps([str(row["genotype"]), epochs, fingerprint, seed]) for row in rows]
    missing = sum(key not in stored for key in keys)
    if missing:
        hooks.start("fine-tuning", missing)
    finalists = []
    for row, key in zip(rows, keys, strict=True):
        result = stored.get(key)
        if result is None:
            run = load()
            started = time.perf_counter()
            value = fine_tune(run, genotype_of(row), epochs, recipe, seed)
            result = {"val_accuracy": value, "seconds": time.perf_counter() - started}
            write_finetuned(run_dir, {key: result})  # kept at once: Ctrl-C loses no finalist
            hooks.advance(f"val {value:.3f}")
        finalists.append(Finalist(str(row["genotype"]), float(row[latency]),
                                  float(row["accuracy"]), float(result["val_accuracy"]),
                                  float(result["seconds"]), key in stored))
    chosen = max(finalists, key=lambda f: (f.finetuned_val_accuracy, f.inherited_val_accuracy,
                                           -f.predicted_latency_ms))
    return Rerank(k, epochs, seed, fingerprint, finalists, chosen)


def fine_tune(run: LoadedRun, genotype: Genotype, epochs: int, recipe: Recipe,
              seed: int) -> float:
    """The member's validation accuracy after `epochs` of `recipe` on the training split,
    starting from its inherited weights (batch-norm statistics re-estimated, as for its
    inherited accuracy). Every random draw comes from `seed`: the same for every finalist."""
    from hwnas.search.family.derive import member
    from hwnas.search.retrain.fit import fit

    data = run.data()
    network = member(run.space, genotype, run.supernet, data.train)
    return fit(network, data, recipe, recipe.augmentation(run.space), epochs, seed)[-1].val_acc
