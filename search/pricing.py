"""The family priced on a table: each member's predicted latency on every backend of any table
of the run's space, cached per table fingerprint (`search/family_cache.py`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from latency.errors import UserError
from latency.predict import latency_model
from latency.table import LatencyTable
from search.family_cache import read_latencies, write_latencies
from search.pick import latency_column


def check_same_space(table: LatencyTable, run_table: LatencyTable, table_name: str,
                     run_dir: Path) -> None:
    """A table prices a family only if it measured the space the run searched."""
    if table.space.fingerprint() != run_table.space.fingerprint():
        raise UserError(f"{table_name} measured space {table.space.name!r} "
                        f"({table.space.fingerprint()}), run {run_dir} searched space "
                        f"{run_table.space.name!r} ({run_table.space.fingerprint()}): profile "
                        f"that space on the device (`hwnas profile --space ...`)")


def latencies(genotypes: list[str], table: LatencyTable) -> pd.DataFrame:
    """`genotype` (JSON) and `predicted_ms_<backend>` for every backend of the table."""
    from latency.network import Genotype

    models = {backend: latency_model(table, backend, warn=False) for backend in table.backends}
    rows = []
    for text in genotypes:
        genotype = Genotype.from_json(text)
        rows.append({"genotype": text, **{latency_column(backend): model.predict_ms(genotype)
                                          for backend, model in models.items()}})
    return pd.DataFrame.from_records(rows)


def priced(run_dir: Path, members: pd.DataFrame, table: LatencyTable) -> pd.DataFrame:
    """The members with the table's predicted latencies, from the cache when it has them."""
    stored = read_latencies(run_dir, table.fingerprint)
    if stored is None or set(stored["genotype"]) != set(members["genotype"]):
        stored = latencies(members["genotype"].tolist(), table)
        write_latencies(run_dir, table.fingerprint, stored)
    plain = members.drop(columns=[c for c in members if c.startswith("predicted_ms_")])
    return plain.merge(stored, on="genotype", how="left", validate="one_to_one")


def device_column(index: int) -> str:
    """The members' column of the `index`-th budget's device (several tables at once)."""
    return f"device_ms_{index}"


def with_devices(run_dir: Path, members: pd.DataFrame,
                 devices: list[tuple[LatencyTable, str]]) -> pd.DataFrame:
    """`members` plus one `device_ms_<i>` column per (table, backend): each device's predicted
    latency of every member."""
    columns = {device_column(i): priced(run_dir, members, table)[latency_column(backend)]
               .to_numpy() for i, (table, backend) in enumerate(devices)}
    return members.assign(**columns)
