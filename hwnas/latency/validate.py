"""`hwnas validate`: predicted against measured end-to-end latency on held-out networks.

Each network is measured twice, in two separate interleaved passes, each time in new
processes as a deployed model runs (hwnas.latency.measure.fresh_networks: the median over
`launches(backend)` processes); the measured figure is the lower of the two. How far the two
passes disagree is the repeatability floor, reported beside the prediction error so a reader
can tell model error from noise. A few of the calibration networks are measured alongside and
compared with the figures the profile stored: that drift is how far the machine itself has
moved since the profile (a busier host, another clock speed), which no model of the table can
predict.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, cast

import pandas as pd

from hwnas.arch.genotypes import Genotype, validation_genotypes
from hwnas.errors import UserError
from hwnas.hooks import Hooks
from hwnas.latency.measure.backends import device_name, parse_device
from hwnas.latency.measure.fresh_networks import deployed_latency_ms, host_processes, launches
from hwnas.latency.model.predict import latency_model
from hwnas.latency.model.table import LatencyTable
from hwnas.latency.runner.files import atomic_write

REFERENCES = 4  # calibration networks re-measured alongside, to see the machine's drift
NOISY_PCT = 5.0  # repeatability or drift above this: warn that the machine, not the model, moved


@dataclass(frozen=True)
class ValidationPoint:
    genotype: Genotype
    predicted_ms: float
    first_ms: float  # pass 1
    second_ms: float  # pass 2

    @property
    def measured_ms(self) -> float:
        return min(self.first_ms, self.second_ms)

    @property
    def error_pct(self) -> float:
        return error_pct(self.predicted_ms, self.measured_ms)

    def corrected_error_pct(self, factor: float) -> float:
        """The error of the prediction scaled to the machine as it ran during the check."""
        return error_pct(self.predicted_ms * factor, self.measured_ms)

    @property
    def repeat_pct(self) -> float:
        """How far the two passes disagree, relative to the lower one."""
        return 100 * abs(self.first_ms - self.second_ms) / self.measured_ms


class ValidationSummary(TypedDict):
    """One backend's figures (errors in %, shares in 0–1): what `hwnas validate --json` prints."""

    backend: str
    calibrated: bool
    n: int
    within_5pct: float
    within_10pct: float
    mape: float
    worst_pct: float
    # the same with each prediction scaled by the drift the references measured
    within_5pct_corrected: float
    within_10pct_corrected: float
    mape_corrected: float
    worst_pct_corrected: float
    drift_factor: float
    rank_correlation: float | None
    repeatability_pct: float
    drift_pct: float | None
    repeatability_worst_pct: float
    repeat_within_10pct: float
    measured_range_ms: list[float]  # [lowest, highest]


@dataclass(frozen=True)
class ValidationReport:
    backend: str
    calibrated: bool
    points: list[ValidationPoint]
    # Median change of the first REFERENCES calibration networks since the profile measured
    # them (%), measured alongside: how far the machine itself has moved. None: no calibration.
    drift_pct: float | None = None

    @property
    def repeatability_pct(self) -> float:
        """The median disagreement between a network's two measurements."""
        return statistics.median(p.repeat_pct for p in self.points)

    @property
    def factor(self) -> float:
        """What the drift scales predictions by (1 without references)."""
        return drift_factor(self.drift_pct)

    def summary(self) -> ValidationSummary:
        repeats = [p.repeat_pct for p in self.points]
        frame = pd.DataFrame({"predicted": [p.predicted_ms for p in self.points],
                              "measured": [p.measured_ms for p in self.points]})
        ranked = frame.nunique().min() > 1  # a constant column has no rank correlation
        # a cast: the checker cannot see the keys error_figures builds from its suffix
        return cast(ValidationSummary, {
            "backend": self.backend,
            "calibrated": self.calibrated,
            "n": len(self.points),
            **error_figures([p.error_pct for p in self.points], ""),
            # the same with each prediction scaled by the drift the references measured
            **error_figures([p.corrected_error_pct(self.factor) for p in self.points],
                             "_corrected"),
            "drift_factor": self.factor,
            "rank_correlation": float(frame["predicted"].corr(frame["measured"],
                                                              method="spearman"))
            if ranked else None,
            "repeatability_pct": self.repeatability_pct,
            "drift_pct": self.drift_pct,
            "repeatability_worst_pct": max(repeats),
            "repeat_within_10pct": sum(r <= 10 for r in repeats) / len(repeats),
            "measured_range_ms": [min(p.measured_ms for p in self.points),
                                  max(p.measured_ms for p in self.points)],
        })

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"genotype": p.genotype.to_json(), "predicted_ms": p.predicted_ms,
                              "measured_ms": p.measured_ms, "first_ms": p.first_ms,
                              "second_ms": p.second_ms, "error_pct": p.error_pct,
                              "corrected_error_pct": p.corrected_error_pct(self.factor),
                              "repeat_pct": p.repeat_pct} for p in self.points])


def error_figures(errors: list[float], suffix: str) -> dict[str, float]:
    """Share within ±5% and ±10%, mean absolute and worst signed error (%) of `errors`."""
    return {f"within_5pct{suffix}": sum(abs(e) <= 5 for e in errors) / len(errors),
            f"within_10pct{suffix}": sum(abs(e) <= 10 for e in errors) / len(errors),
            f"mape{suffix}": statistics.fmean(abs(e) for e in errors),
            f"worst_pct{suffix}": max(errors, key=abs)}


def error_pct(predicted_ms: float, measured_ms: float) -> float:
    return 100 * (predicted_ms - measured_ms) / measured_ms


def validate(table: LatencyTable, backend: str, n: int = 30, seed: int = 1,
             hooks: Hooks | None = None) -> ValidationReport:
    """Measure `n` held-out architectures twice on this machine and compare to prediction."""
    hooks = hooks or Hooks()
    if backend not in table.backends:
        raise UserError(f"the table has no {backend} entries (it has "
                        f"{', '.join(table.backends)}); profile that backend first")
    if n < 2:
        raise UserError(f"--n must be at least 2, got {n}")
    device = parse_device(table.device)
    here = device_name(device)
    if here != table.meta.get("device_name"):
        hooks.warn(f"the table was measured on {table.meta.get('device_name')!r}, this is "
                   f"{here!r}: predictions are for the table's device")
    model = latency_model(table, backend, warn=False)
    if not model.calibrated:
        hooks.warn(f"the table has no calibration for {backend}: predictions are the "
                   f"uncalibrated sum; re-run `hwnas profile` to calibrate")
    space = table.space
    used, _ = calibration_networks(table, backend)
    genotypes = validation_genotypes(space, n, seed, exclude=used)
    references, stored_ms = reference_networks(table, backend)
    measured = genotypes + references
    passes = []
    with host_processes() as fresh:
        for repeat in (1, 2):
            hooks.start(f"pass {repeat}/2, each network in new processes",
                        len(measured) * launches(backend) * table.timing.min_rounds)
            passes.append(deployed_latency_ms(
                fresh, backend, device, table.threads, space, measured, table.timing,
                seed=seed * 2 + repeat, on_block=lambda key, _: hooks.advance(f"{key}")))
    points = [ValidationPoint(g, model.predict_ms(g), passes[0][i],
                              passes[1][i]) for i, g in enumerate(genotypes)]
    now_ms = [min(first, second) for first, second in zip(passes[0][n:], passes[1][n:],
                                                          strict=True)]
    report = ValidationReport(backend, model.calibrated, points,
                              drift_pct(now_ms, stored_ms))
    moved = max(report.repeatability_pct, abs(report.drift_pct or 0.0))
    if moved > NOISY_PCT:
        hooks.warn(f"{backend}: the machine itself moved by {moved:.1f}% during this check "
                   f"(repeatability or drift above {NOISY_PCT:.0f}%): errors of that size are "
                   f"the machine's, not the model's; re-run when it is quieter")
    return report


def calibration_networks(table: LatencyTable, backend: str) -> tuple[list[Genotype],
                                                                      list[float]]:
    """The networks the backend's calibration was fitted on, and what the profile measured."""
    stored = (table.meta.get("calibration_networks") or {}).get(backend, [])
    return ([Genotype.from_json(json.dumps(net["genotype"])) for net in stored],
            [float(net["measured_ms"]) for net in stored])


def reference_networks(table: LatencyTable, backend: str) -> tuple[list[Genotype],
                                                                    list[float]]:
    """The first REFERENCES calibration networks, re-measured to see the machine's drift."""
    genotypes, stored_ms = calibration_networks(table, backend)
    return genotypes[:REFERENCES], stored_ms[:REFERENCES]


def drift_pct(now_ms: list[float], stored_ms: list[float]) -> float | None:
    """Median change (%) of reference networks measured now against the profile's figures:
    how far the machine itself has moved. None without references."""
    if not stored_ms:
        return None
    return statistics.median(100 * (now / then - 1)
                             for now, then in zip(now_ms, stored_ms, strict=True))


def drift_factor(drift: float | None) -> float:
    """The factor that moves a prediction from the machine as profiled to the machine as it
    runs now: every network is assumed to have slowed (or sped up) like the references."""
    return 1.0 if drift is None else 1 + drift / 100


def measure_now(table: LatencyTable, backend: str,
                genotypes: list[Genotype]) -> tuple[list[float], float | None]:
    """`genotypes` measured as deployed (new processes, the table's statistic) interleaved with
    the backend's reference networks, and the drift those show since the profile."""
    references, stored_ms = reference_networks(table, backend)
    with host_processes() as fresh:
        measured = deployed_latency_ms(fresh, backend, table.device, table.threads,
                                       table.space, [*genotypes, *references], table.timing)
    return measured[:len(genotypes)], drift_pct(measured[len(genotypes):], stored_ms)


def write_csv(report: ValidationReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: report.to_frame().to_csv(tmp, index=False))


def plot(report: ValidationReport, path: Path, title: str) -> None:
    """Predicted against measured, with the ±10% band and each network's two passes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = report.to_frame()
    low = min(frame["measured_ms"].min(), frame["predicted_ms"].min()) * 0.85
    high = max(frame["second_ms"].max(), frame["first_ms"].max(),
               frame["predicted_ms"].max()) * 1.1
    figure, axes = plt.subplots(figsize=(5.5, 5))
    line = [low, high]
    axes.plot(line, line, color="black", linewidth=1, label="exact")
    axes.fill_between(line, [v * 0.9 for v in line], [v * 1.1 for v in line], color="tab:green",
                      alpha=0.15, label="±10%")
    axes.errorbar(frame["measured_ms"], frame["predicted_ms"],
                  xerr=[[0] * len(frame), (frame[["first_ms", "second_ms"]].max(axis=1)
                                           - frame["measured_ms"]).tolist()],
                  fmt="o", markersize=4, elinewidth=1, label="network (bar: 2nd pass)")
    summary = report.summary()
    axes.set(xlabel="measured latency (ms)", ylabel="predicted latency (ms)",
             title=f"{title}\nwithin ±10%: {100 * summary['within_10pct']:.0f}%, MAPE "
                   f"{summary['mape']:.1f}%, repeatability {summary['repeatability_pct']:.1f}%",
             xlim=line, ylim=line)
    axes.legend(loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    plt.close(figure)
