"""hwnas: hardware-aware neural architecture search. The Python API, in five calls (each
imports torch or pandas only when called, so `import hwnas` is instant; docs/api.md):

    table = hwnas.read_table("tables/cpu.parquet")
    hwnas.predict_latency({"normal": [...], "reduce": [...]}, table).latency_ms
    members = hwnas.load_family("runs")          # a run folder, or a runs root's latest run
    chosen = hwnas.pick("runs", max_latency_ms=3)   # or budgets={"tables/board.parquet": 12}
    hwnas.train(chosen.genotype, "tables/cpu.parquet", "exports/model")
"""

from hwnas.api import (
    Prediction,
    as_genotype,
    load_family,
    load_run,
    pick,
    predict_latency,
    read_table,
    train,
)

__all__ = ["Prediction", "as_genotype", "load_family", "load_run", "pick", "predict_latency",
           "read_table", "train"]
