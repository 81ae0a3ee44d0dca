"""The metric-driven idle detector base (``scanning.idle``), on a made-up provider.

The provider's disks and its metric store are in memory; the store is the base's own fetcher
interface, so everything else (age filter, batching, limits, minimum data, combined figures,
groups, evidence) is the real code any cloud's idle detector runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pytest
from pydantic import Field

from valdrix.scanning.base import Price, RegionScope, Waste
from valdrix.scanning.idle import (
    IdleResource,
    LimitComparison,
    LookbackThresholds,
    MetricIdleDetector,
    MetricThresholds,
    MetricWindow,
    WindowFigure,
)
from valdrix.scanning.providers.aws_pricing import aws_catalog

NOW = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
OLD = 30 * DAY


@dataclass(frozen=True)
class Disk:
    name: str
    age: dt.timedelta = OLD
    group: str | None = None


@dataclass(frozen=True)
class Series:
    """The made-up provider's metric query: one metric of one disk."""

    disk: str
    metric: str


class MetricStore:
    """Datapoints per series, and every fetch the detector made."""

    def __init__(self, datapoints: dict[Series, list[float]]) -> None:
        self.datapoints = datapoints
        self.fetches: list[tuple[list[Series], MetricWindow]] = []

    def fetch(self, queries: Sequence[Series], window: MetricWindow) -> list[list[float]]:
        self.fetches.append((list(queries), window))
        return [list(self.datapoints.get(query, [])) for query in queries]


ThresholdsT = TypeVar("ThresholdsT", bound=MetricThresholds)


class MadeUpDisks(MetricIdleDetector[Disk, Series, ThresholdsT]):
    """What every made-up disk detector lists and reads: each disk's reads and writes."""

    provider = "test"
    resource_type = "disk"
    permissions = ("disk:ListDisks", "metrics:Fetch")

    def __init__(self, disks: list[Disk], store: MetricStore) -> None:
        self.disks, self.store = disks, store

    def list_resources(self, scope: RegionScope) -> list[Disk]:
        return self.disks

    def metric_queries(self, position: int, disk: Disk) -> list[Series]:
        return [Series(disk.name, "reads"), Series(disk.name, "writes")]

    def metric_fetcher(self, scope: RegionScope) -> MetricStore:
        return self.store

    def serving_group(self, disk: Disk) -> str | None:
        return disk.group


class IdleDiskThresholds(LookbackThresholds):
    max_ops: int = Field(0, ge=0, description="At most this many reads and writes is idle.")


class IdleDisks(MadeUpDisks[IdleDiskThresholds]):
    """Flags made-up disks that nobody read or wrote over the lookback. Test double only."""

    key = "test.disk-idle"
    thresholds = IdleDiskThresholds
    window_figure: ClassVar[WindowFigure] = "total"

    def created_at(self, disk: Disk) -> dt.datetime:
        return NOW - disk.age

    def idle_limits(self, thresholds: IdleDiskThresholds) -> tuple[float, ...]:
        return (thresholds.max_ops, thresholds.max_ops)

    def waste(self, scope: RegionScope, idle: IdleResource[Disk, IdleDiskThresholds]) -> Waste:
        reads, writes = idle.figures
        return Waste(
            resource_id=idle.resource.name,
            resource_type=self.resource_type,
            reason=f"{reads:.0f} reads and {writes:.0f} writes",
            price=Price.unknown("made-up disks have no price"),
            evidence={
                "reads": reads,
                "writes": writes,
                "datapoints": idle.datapoints,
                **idle.window_evidence(),
                **idle.age_evidence(),
                "max_ops": idle.thresholds.max_ops,
            },
        )


class PeakIdleDisks(IdleDisks):
    """Flags made-up disks whose busiest datapoint stayed under the threshold. Test double."""

    window_figure = "peak"


class QuietDiskThresholds(MetricThresholds):
    ops_per_day: float = Field(5.0, ge=0, description="Idle below this many ops on any day.")
    min_days: int = Field(3, ge=1, description="Judge a disk only with this many days of data.")


class QuietDisks(MadeUpDisks[QuietDiskThresholds]):
    """Flags made-up disks whose busiest day of reads plus busiest day of writes stayed strictly
    below a daily limit, given enough days of data, whatever their age. It never says when a
    disk was created, so any read of the age would fail. Test double only."""

    key = "test.disk-quiet"
    thresholds = QuietDiskThresholds
    window_figure: ClassVar[WindowFigure] = "peak"
    idle_when: ClassVar[LimitComparison] = "below"

    def min_datapoints(self, thresholds: QuietDiskThresholds) -> int:
        return thresholds.min_days

    def judged_figures(self, figures: tuple[float, ...]) -> tuple[float, ...]:
        reads, writes = figures
        return (reads + writes,)

    def idle_limits(self, thresholds: QuietDiskThresholds) -> tuple[float, ...]:
        return (thresholds.ops_per_day,)

    def waste(self, scope: RegionScope, idle: IdleResource[Disk, QuietDiskThresholds]) -> Waste:
        [ops] = idle.judged_figures
        return Waste(
            resource_id=idle.resource.name,
            resource_type=self.resource_type,
            reason=f"at most {ops:.0f} ops a day",
            price=Price.unknown("made-up disks have no price"),
            evidence={
                "busiest_reads": idle.figures[0],
                "busiest_writes": idle.figures[1],
                "ops_per_day": ops,
                "datapoints": idle.datapoints,
                "age_days": idle.age_days,
            },
        )


def no_cloud_client(service: str) -> Any:
    raise AssertionError(f"the base asked for a {service!r} client: only its fetcher may read")


def scan(
    disks: list[Disk],
    datapoints: dict[Series, list[float]],
    detector: type[MadeUpDisks[Any]] = IdleDisks,
    **thresholds: Any,
) -> tuple[list[Waste], MetricStore]:
    store = MetricStore(datapoints)
    scope = RegionScope("account", "region-1", no_cloud_client, aws_catalog(), NOW)
    found = list(detector(disks, store).detect(scope, detector.thresholds(**thresholds)))
    return found, store


def use(disk: str, reads: list[float], writes: list[float]) -> dict[Series, list[float]]:
    return {Series(disk, "reads"): reads, Series(disk, "writes"): writes}


def test_resource_idle_over_the_lookback_is_reported_with_its_figures_window_and_age() -> None:
    [waste], _ = scan([Disk("scratch")], use("scratch", [0.0] * 7, [0.0] * 6))

    assert waste.resource_id == "scratch"
    assert waste.reason == "0 reads and 0 writes"
    assert waste.evidence == {
        "reads": 0.0,
        "writes": 0.0,
        "datapoints": (7, 6),
        "window_start": (NOW - 7 * DAY).isoformat(),
        "window_end": NOW.isoformat(),
        "age_days": 30.0,
        "lookback_days": 7,
        "min_age_days": 7,
        "max_ops": 0,
    }


@pytest.mark.parametrize(("max_ops", "reported"), [(5, True), (4, False)])
def test_use_totalling_the_threshold_is_idle_and_one_more_is_not(
    max_ops: int, reported: bool
) -> None:
    found, _ = scan([Disk("scratch")], use("scratch", [2.0, 3.0], [0.0]), max_ops=max_ops)

    assert bool(found) is reported


def test_a_resource_is_idle_only_when_every_series_is() -> None:
    found, _ = scan([Disk("scratch")], use("scratch", [0.0] * 7, [0.0] * 6 + [1.0]))

    assert found == []


def test_a_resource_with_no_datapoints_on_a_series_is_not_judged() -> None:
    found, _ = scan([Disk("scratch")], use("scratch", [0.0] * 7, []))

    assert found == []


def test_a_peak_figure_is_the_busiest_datapoint_not_the_sum() -> None:
    datapoints = use("scratch", [1.0, 4.0, 2.0], [0.0])

    [waste], _ = scan([Disk("scratch")], datapoints, PeakIdleDisks, max_ops=4)

    assert waste.evidence["reads"] == 4.0
    assert scan([Disk("scratch")], datapoints, IdleDisks, max_ops=4)[0] == []


@pytest.mark.parametrize(
    ("age", "reported"), [(7 * DAY, True), (7 * DAY - dt.timedelta(seconds=1), False)]
)
def test_a_resource_is_judged_only_once_as_old_as_the_lookback(
    age: dt.timedelta, reported: bool
) -> None:
    found, _ = scan([Disk("new", age=age)], use("new", [0.0], [0.0]))

    assert bool(found) is reported


def test_min_age_days_judges_resources_younger_than_the_lookback() -> None:
    [waste], _ = scan([Disk("new", age=2 * DAY)], use("new", [0.0], [0.0]), min_age_days=2)

    assert waste.evidence["min_age_days"] == 2
    assert waste.evidence["age_days"] == 2.0


def test_every_resource_old_enough_is_read_in_one_fetch_over_the_lookback() -> None:
    disks = [Disk("a"), Disk("b"), Disk("too-young", age=DAY)]

    _, store = scan(disks, {}, lookback_days=14)

    [(queries, window)] = store.fetches
    assert queries == [
        Series("a", "reads"),
        Series("a", "writes"),
        Series("b", "reads"),
        Series("b", "writes"),
    ]
    assert window == MetricWindow(NOW - 14 * DAY, NOW)


def test_no_resource_old_enough_means_no_metric_read() -> None:
    found, store = scan([Disk("too-young", age=DAY)], use("too-young", [0.0], [0.0]))

    assert found == []
    assert store.fetches == []


def test_an_idle_member_of_a_busy_group_is_not_reported() -> None:
    disks = [Disk("primary", group="pair"), Disk("replica", group="pair")]
    datapoints = use("primary", [0.0], [9.0]) | use("replica", [0.0], [0.0])

    found, _ = scan(disks, datapoints)

    assert found == []


def test_a_young_member_is_measured_for_its_group_but_never_reported() -> None:
    disks = [Disk("primary", group="pair"), Disk("new-replica", age=DAY, group="pair")]
    idle = use("primary", [0.0], [0.0]) | use("new-replica", [0.0], [0.0])
    busy_young = use("primary", [0.0], [0.0]) | use("new-replica", [5.0], [0.0])

    found, store = scan(disks, idle)
    assert [waste.resource_id for waste in found] == ["primary"]
    assert Series("new-replica", "reads") in store.fetches[0][0]

    assert scan(disks, busy_young)[0] == []


# --- A detector's own rule: strict limits, combined figures, minimum data, no age filter ----


@pytest.mark.parametrize(("writes", "reported"), [(1.9, True), (2.0, False)])
def test_a_below_limit_counts_a_figure_equal_to_it_as_busy(writes: float, reported: bool) -> None:
    datapoints = use("scratch", [3.0] * 3, [0.0, writes, 0.0])

    found, _ = scan([Disk("scratch")], datapoints, QuietDisks, ops_per_day=5.0)

    assert bool(found) is reported


def test_combined_series_are_judged_as_one_figure_and_reported_apart() -> None:
    # Each series' busiest day (3 reads, 2 writes) is under 5; together they reach it.
    datapoints = use("scratch", [1.0, 3.0, 1.0], [2.0, 0.0, 0.0])

    assert scan([Disk("scratch")], datapoints, QuietDisks, ops_per_day=5.0)[0] == []
    [waste], _ = scan([Disk("scratch")], datapoints, QuietDisks, ops_per_day=5.5)
    assert waste.reason == "at most 5 ops a day"
    assert waste.evidence["busiest_reads"] == 3.0
    assert waste.evidence["busiest_writes"] == 2.0
    assert waste.evidence["ops_per_day"] == 5.0


@pytest.mark.parametrize(("days", "reported"), [(3, True), (2, False)])
def test_a_resource_is_judged_only_with_the_minimum_datapoints_on_every_series(
    days: int, reported: bool
) -> None:
    datapoints = use("scratch", [0.0] * 7, [0.0] * days)

    found, _ = scan([Disk("scratch")], datapoints, QuietDisks, min_days=3)

    assert bool(found) is reported


def test_thresholds_without_a_minimum_age_judge_a_resource_of_any_age() -> None:
    brand_new = Disk("brand-new", age=dt.timedelta(0))

    [waste], _ = scan([brand_new], use("brand-new", [0.0] * 3, [0.0] * 3), QuietDisks)

    assert waste.evidence["age_days"] is None
