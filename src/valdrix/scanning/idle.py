"""Idle detectors judged on metrics, whatever the cloud.

Each run lists the resources that bill, leaves out those too young to judge (when the thresholds
set a minimum age), reads every remaining resource's metric series in one batched fetch, and
reports the resources whose use over the lookback stayed within a limit on every figure, with the
figures that prove it.

A detector declares only what differs: what to list, which series to read, how a series becomes
one figure (and, if need be, how figures combine into one), the limits, how much data it needs to
judge and the evidence wording. Each provider brings its own query type and ``MetricFetcher``
(CloudWatch's GetMetricData for AWS; Azure Monitor or Cloud Monitoring later), so nothing here
names a provider.
"""

from __future__ import annotations

import datetime as dt
import operator
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import Field

from valdrix.scanning.ages import age_days, is_at_least_days_old
from valdrix.scanning.base import Detector, RegionScope, Thresholds, Waste

ResourceT = TypeVar("ResourceT")
QueryT = TypeVar("QueryT")
QueryT_contra = TypeVar("QueryT_contra", contravariant=True)

# How a series' datapoints over the lookback become the one figure held against a limit:
# their sum (bytes sent, commands served) or the largest of them (peak connections).
WindowFigure = Literal["total", "peak"]
# How a figure compares with its limit when the resource is idle: "at_most" counts a figure equal
# to its limit as idle, "below" only a figure strictly under it.
LimitComparison = Literal["at_most", "below"]


class MetricThresholds(Thresholds):
    """Tunables of a detector that judges a resource of any age on a lookback of metric data."""

    lookback_days: int = Field(7, ge=1, description="Days of metric data to look at.")

    @property
    def judged_from_age_days(self) -> int | None:
        """Resources younger than this many days are not judged; None judges every age."""
        return None


class LookbackThresholds(MetricThresholds):
    """Tunables of a detector that judges a resource on a lookback of metric data, once it is
    old enough to have a whole lookback (or ``min_age_days``) of its life to judge."""

    min_age_days: int | None = Field(
        None,
        ge=0,
        description="Resources younger than this many days are not judged (default: the "
        "lookback, so a resource is judged on a whole lookback of its life).",
    )

    @property
    def judged_from_age_days(self) -> int:
        return self.lookback_days if self.min_age_days is None else self.min_age_days


ThresholdsT = TypeVar("ThresholdsT", bound=MetricThresholds)


@dataclass(frozen=True)
class MetricWindow:
    """The stretch of time whose datapoints are read: the lookback, ending at the scan."""

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def lookback(cls, now: dt.datetime, days: int) -> MetricWindow:
        return cls(now - dt.timedelta(days=days), now)


class MetricFetcher(Protocol[QueryT_contra]):
    """Reads many metric series in as few calls as the provider allows."""

    def fetch(self, queries: Sequence[QueryT_contra], window: MetricWindow) -> list[list[float]]:
        """The datapoint values of each query, in the order asked (empty when it has none)."""
        ...


@dataclass(frozen=True)
class IdleResource(Generic[ResourceT, ThresholdsT]):
    """A resource found idle, with what its finding's evidence is made of."""

    resource: ResourceT
    # Each series' figure over the window (its total or its peak), and how many datapoints it
    # had, in the order the detector's ``metric_queries`` asked for them.
    figures: tuple[float, ...]
    datapoints: tuple[int, ...]
    # The figures held against the limits: ``figures`` as the detector's ``judged_figures``
    # combined them, in the order of its ``idle_limits``.
    judged_figures: tuple[float, ...]
    window: MetricWindow
    # None when the thresholds judge resources of any age (the creation time is never read).
    age_days: float | None
    thresholds: ThresholdsT

    def window_evidence(self) -> dict[str, Any]:
        return {
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
        }

    def age_evidence(self) -> dict[str, Any]:
        return {
            "age_days": self.age_days,
            "lookback_days": self.thresholds.lookback_days,
            "min_age_days": self.thresholds.judged_from_age_days,
        }


class MetricIdleDetector(Detector, Generic[ResourceT, QueryT, ThresholdsT]):
    """A detector that reports resources whose metrics stayed within their limits over the
    lookback. Resources with too few datapoints on any series are not judged: no data is not
    proof of no use."""

    window_figure: ClassVar[WindowFigure]
    idle_when: ClassVar[LimitComparison] = "at_most"

    @abstractmethod
    def list_resources(self, scope: RegionScope) -> Iterable[ResourceT]:
        """The region's resources in a state that bills, every page of them."""

    def created_at(self, resource: ResourceT) -> dt.datetime:
        """When the resource was created; read only when the thresholds set a minimum age."""
        raise NotImplementedError(
            f"{type(self).__name__}'s thresholds judge by age: it must say when a resource "
            "was created"
        )

    @abstractmethod
    def metric_queries(self, position: int, resource: ResourceT) -> Sequence[QueryT]:
        """The series that show the resource's use. ``position`` is the resource's place in this
        read, for providers whose queries need ids unique within one fetch."""

    @abstractmethod
    def metric_fetcher(self, scope: RegionScope) -> MetricFetcher[QueryT]: ...

    @abstractmethod
    def idle_limits(self, thresholds: ThresholdsT) -> tuple[float, ...]:
        """The limit of each judged figure (see ``judged_figures``), in order: a resource is idle
        when every figure is within its limit, as ``idle_when`` compares them."""

    def judged_figures(self, figures: tuple[float, ...]) -> tuple[float, ...]:
        """The figures held against ``idle_limits``, made from each series' figure (in the order
        of ``metric_queries``): by default each series is judged on its own; a detector may
        combine some into one (traffic in and out as one figure)."""
        return figures

    def min_datapoints(self, thresholds: ThresholdsT) -> int:
        """How many datapoints every series needs for the resource to be judged: one at least,
        since no data is not proof of no use."""
        return 1

    @abstractmethod
    def waste(self, scope: RegionScope, idle: IdleResource[ResourceT, ThresholdsT]) -> Waste:
        """The finding for one idle resource: its reason, price and evidence."""

    def serving_group(self, resource: ResourceT) -> str | None:
        """Resources that serve together are idle only together (a replica nobody reads is not
        waste while its primary is busy): the group's key, or None to judge the resource alone.

        Grouped resources are measured whatever their age, since a young member's use still
        shows that its group is busy; only members old enough are reported."""
        return None

    def detect(self, scope: RegionScope, thresholds: ThresholdsT) -> Iterator[Waste]:
        window = MetricWindow.lookback(scope.now, thresholds.lookback_days)
        min_age_days = thresholds.judged_from_age_days

        def old_enough(resource: ResourceT) -> bool:
            if min_age_days is None:
                return True
            return is_at_least_days_old(self.created_at(resource), scope.now, min_age_days)

        measured = [
            resource
            for resource in self.list_resources(scope)
            if self.serving_group(resource) is not None or old_enough(resource)
        ]
        if not measured:
            return  # spare the metric read
        series = self._read_series(scope, measured, window)
        min_datapoints = self.min_datapoints(thresholds)
        limits = self.idle_limits(thresholds)
        idle = [self._is_idle(per_resource, min_datapoints, limits) for per_resource in series]
        for members in self._groups(measured):
            if not all(idle[index] for index in members):
                continue
            for index in members:
                resource = measured[index]
                if not old_enough(resource):
                    continue
                figures = self._figures(series[index])
                age = (
                    None if min_age_days is None else age_days(self.created_at(resource), scope.now)
                )
                yield self.waste(
                    scope,
                    IdleResource(
                        resource=resource,
                        figures=figures,
                        datapoints=tuple(len(values) for values in series[index]),
                        judged_figures=self.judged_figures(figures),
                        window=window,
                        age_days=age,
                        thresholds=thresholds,
                    ),
                )

    def _is_idle(
        self, series: list[list[float]], min_datapoints: int, limits: tuple[float, ...]
    ) -> bool:
        """Whether one resource's series (datapoint values per query) show it idle."""
        if any(len(values) < min_datapoints for values in series):
            return False  # too little data to call it idle
        judged = self.judged_figures(self._figures(series))
        within = operator.lt if self.idle_when == "below" else operator.le
        return all(within(figure, limit) for figure, limit in zip(judged, limits, strict=True))

    def _read_series(
        self, scope: RegionScope, resources: list[ResourceT], window: MetricWindow
    ) -> list[list[list[float]]]:
        """Each resource's series (datapoint values per query), read in one batched fetch."""
        queries = [self.metric_queries(position, r) for position, r in enumerate(resources)]
        values = self.metric_fetcher(scope).fetch([q for qs in queries for q in qs], window)
        per_resource: list[list[list[float]]] = []
        offset = 0
        for asked in queries:
            per_resource.append(values[offset : offset + len(asked)])
            offset += len(asked)
        return per_resource

    def _figures(self, series: list[list[float]]) -> tuple[float, ...]:
        """Each series' datapoints over the window as one figure, their total or their peak."""
        if self.window_figure == "total":
            return tuple(sum(values) for values in series)
        return tuple(max(values) for values in series)

    def _groups(self, resources: list[ResourceT]) -> list[list[int]]:
        """Indexes of ``resources`` by serving group, in the order each group was first listed;
        an ungrouped resource is a group of its own."""
        groups: dict[str | int, list[int]] = {}
        for index, resource in enumerate(resources):
            key = self.serving_group(resource)
            groups.setdefault(index if key is None else key, []).append(index)
        return list(groups.values())
