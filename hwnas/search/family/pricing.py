"""The family priced on a table: each member's predicted latency on every backend of any table
of the run's space, cached per table fingerprint (`search/family_cache.py`).

Members are plain records (one dict per architecture), so pricing from the cache needs neither
torch nor pandas."""

from __future__ import annotations

from pathlib import Path

from hwnas.errors import UserError
from hwnas.latency.model.table import LatencyTable, Record
from hwnas.search.family.cache import read_latencies, write_latencies
from hwnas.search.family.pick import latency_column


def check_same_space(table: LatencyTable, run_table: LatencyTable, table_name: str,
                     run_dir: Path) -> None:
    """A table prices a family only if it measured the space the run searched."""
    if table.space.fingerprint() != run_table.space.fingerprint():
        raise UserError(f"{table_name} measured space {table.space.name!r} "
                        f"({table.space.fingerprint()}), run {run_dir} searched space "
                        f"{run_table.space.name!r} ({run_table.space.fingerprint()}): profile "
                        f"that space on the device (`hwnas profile --space ...`)")


def latencies(genotypes: list[str], table: LatencyTable) -> list[Record]:
    """`genotype` (JSON) and `predicted_ms_<backend>` for every backend of the table."""
    from hwnas.arch.genotypes import Genotype
    from hwnas.latency.model.predict import latency_model

    models = {backend: latency_model(table, backend, warn=False) for backend in table.backends}
    rows = []
    for text in genotypes:
        genotype = Genotype.from_json(text)
        rows.append({"genotype": text, **{latency_column(backend): model.predict_ms(genotype)
                                          for backend, model in models.items()}})
    return rows


def priced(run_dir: Path, members: list[Record], table: LatencyTable) -> list[Record]:
    """The members with the table's predicted latencies, from the cache when it has them."""
    genotypes = [str(member["genotype"]) for member in members]
    stored = read_latencies(run_dir, table.fingerprint)
    if stored is None or {row["genotype"] for row in stored} != set(genotypes):
        stored = latencies(genotypes, table)
        write_latencies(run_dir, table.fingerprint, stored)
    by_genotype = {row["genotype"]: row for row in stored}
    return [{**{k: v for k, v in member.items() if not k.startswith("predicted_ms_")},
             **by_genotype[genotype]} for member, genotype in zip(members, genotypes, strict=True)]


def device_column(index: int) -> str:
    """The members' column of the `index`-th budget's device (several tables at once)."""
    return f"device_ms_{index}"


def with_devices(run_dir: Path, members: list[Record],
                 devices: list[tuple[LatencyTable, str]]) -> list[Record]:
    """`members` plus one `device_ms_<i>` field per (table, backend): each device's predicted
    latency of every member."""
    on_device = [[row[latency_column(backend)] for row in priced(run_dir, members, table)]
                 for table, backend in devices]
    return [{**member, **{device_column(i): values[n] for i, values in enumerate(on_device)}}
            for n, member in enumerate(members)]
