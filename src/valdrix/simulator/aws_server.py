"""A local moto server: every AWS service on one loopback port.

moto is the ``demo`` extra, which a production install leaves out, so it is imported only when a
simulator starts: the CLI imports this module (through ``valdrix demo``) on every install."""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import re
import secrets
import socket
import string
import threading
from dataclasses import dataclass
from typing import Any

# The environment of a process that hosts the simulator or talks to it: credentials of the right
# shape (moto checks none) and a default region, never the caller's real AWS identity.
SIMULATED_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "simulated",
    "AWS_SECRET_ACCESS_KEY": "simulated",
    "AWS_DEFAULT_REGION": "us-east-1",
    # moto otherwise loads its ~1,300 public AMIs, and their snapshots, into every region it
    # serves: seconds of start-up, and listings no real account has.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
# Variables that would make boto3 reach for another identity than the one above.
REAL_AWS_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")
# A log group or EFS file system tagged with this holds that many bytes more than what was put in
# it; each part of a multipart upload in a bucket tagged with it holds that many bytes (see
# ``_let_resources_declare_their_stored_bytes``).
STORED_BYTES_TAG = "valdrix-simulator:stored-bytes"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class SimulatedAws:
    server: Any
    endpoint_url: str

    def stop(self) -> None:
        self.server.stop()


def missing_simulator_module() -> str | None:
    """The module the simulator needs but this install lacks (no ``demo`` extra), if any."""
    try:
        import moto.server  # noqa: F401
    except ModuleNotFoundError as exc:
        return exc.name or "moto"
    return None


def start_simulated_aws(host: str = "127.0.0.1", port: int | None = None) -> SimulatedAws:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class WithCommitments(ThreadedMotoServer):
        """moto's server, answering first what moto lacks (``simulator.commitments``)."""

        def _server_entry(self) -> None:
            app = _CommitmentsFirst(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    from valdrix.simulator.recommendations import serve_beside_moto

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _give_each_rds_instance_its_own_resource_id()
    _let_resources_declare_their_stored_bytes()
    serve_beside_moto()  # Compute Optimizer and Cost Optimization Hub, which moto lacks
    _answer_describes_by_id_as_aws_does()
    _read_each_resources_tags_by_its_id()
    _remember_where_each_response_member_is_read()
    _route_requests_without_rescanning_moto()
    _read_each_metric_series_by_its_name_and_dimensions()
    _load_each_service_model_once()
    _check_eks_role_arns_against_partitions_read_once()
    port = port or free_port(host)
    server = WithCommitments(ip_address=host, port=port, verbose=False)
    server.start()
    return SimulatedAws(server, f"http://{host}:{port}")


class _CommitmentsFirst:
    """A WSGI layer over moto: Reserved Instances, Savings Plans and their Cost Explorer
    utilization reports come from ``simulator.commitments``; everything else from moto."""

    def __init__(self, moto_app: Any) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        from valdrix.simulator.commitments import answer

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        path = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        answered = answer(environ["REQUEST_METHOD"], path, headers, body, dt.datetime.now(dt.UTC))
        if answered is None:
            return self.moto_app(environ, start_response)
        status, response_headers, payload = answered
        response_headers = response_headers | {"Content-Length": str(len(payload))}
        start_response(f"{status} OK", list(response_headers.items()))
        return [payload]


def _give_each_rds_instance_its_own_resource_id() -> None:
    """moto gives every RDS instance the same ``DbiResourceId``; AWS gives each its own, never
    reused, and snapshots keep their source's. Without this, a snapshot of a deleted database
    looks like a snapshot of any database still running in its region."""
    from moto.rds.models import DBInstance

    if getattr(DBInstance, "_valdrix_unique_resource_ids", False):
        return
    original_init = DBInstance.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        alphabet = string.ascii_uppercase + string.digits
        self.dbi_resource_id = "db-" + "".join(secrets.choice(alphabet) for _ in range(26))

    DBInstance.__init__ = init  # type: ignore[method-assign]
    DBInstance._valdrix_unique_resource_ids = True  # type: ignore[attr-defined]


def _let_resources_declare_their_stored_bytes() -> None:
    """moto counts stored bytes as the bytes put in, and keeps them all in memory: a simulated
    account cannot hold the gigabytes that a log group forgotten for years, the parts of an
    upload abandoned half-way or a file system (moto's store nothing) hold. A log group or file
    system tagged ``STORED_BYTES_TAG`` reports that many bytes more (in EFS Standard); each
    upload part in a bucket so tagged reports that many bytes."""
    from moto.efs.models import FileSystem
    from moto.logs.models import LogGroup, logs_backends
    from moto.s3.models import S3Backend

    if getattr(LogGroup, "_valdrix_declared_stored_bytes", False):
        return
    original_describe = LogGroup.to_describe_dict
    original_list_parts = S3Backend.list_parts
    original_size: Any = FileSystem.size_in_bytes

    def to_describe_dict(self: Any) -> dict[str, Any]:
        described: dict[str, Any] = original_describe(self)
        tags = logs_backends[self.account_id][self.region].list_tags_for_resource(self.arn)
        described["storedBytes"] += int(tags.get(STORED_BYTES_TAG, 0))
        return described

    def list_parts(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> list[Any]:
        parts: list[Any] = original_list_parts(self, bucket_name, *args, **kwargs)
        tags = self.tagger.get_tag_dict_for_resource(self.get_bucket(bucket_name).arn)
        declared = tags.get(STORED_BYTES_TAG)
        return [_SizedPart(part, int(declared)) for part in parts] if declared else parts

    def size_in_bytes(self: Any) -> dict[str, Any]:
        size: dict[str, Any] = original_size.fget(self)
        tags = self._context.list_tags_for_resource(self.file_system_id)
        declared = sum(int(tag["Value"]) for tag in tags if tag["Key"] == STORED_BYTES_TAG)
        return size | {
            "Value": size["Value"] + declared,
            "ValueInStandard": size["ValueInStandard"] + declared,
        }

    LogGroup.to_describe_dict = to_describe_dict  # type: ignore[method-assign]
    FileSystem.size_in_bytes = property(size_in_bytes)  # type: ignore[method-assign,assignment]
    S3Backend.list_parts = list_parts  # type: ignore[method-assign]
    LogGroup._valdrix_declared_stored_bytes = True  # type: ignore[attr-defined]


def _answer_describes_by_id_as_aws_does() -> None:
    """moto 5.2 answers ``DescribeInstances`` naming an instance twice with HTTP 500 (it counts
    the ids asked against the instances found), and ``DescribeVolumes`` naming an unknown volume
    with an ``InvalidVolume.NotFound`` whose message lists every id asked as a Python set. AWS
    answers the first with each instance once, and the second naming the unknown volume alone:
    callers such as Cloud Custodian read that id from the message, drop it and ask again."""
    from moto.ec2.exceptions import InvalidVolumeIdError
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.models.instances import InstanceBackend

    if getattr(EBSBackend, "_valdrix_describes_by_id", False):
        return
    original_reservations = InstanceBackend.get_reservations_by_instance_ids

    def get_reservations_by_instance_ids(
        self: Any, instance_ids: list[str], filters: Any = None
    ) -> list[Any]:
        once = list(dict.fromkeys(instance_ids))
        return original_reservations(self, once, filters)

    def describe_volumes(
        self: Any, volume_ids: list[str] | None = None, filters: Any = None
    ) -> list[Any]:
        from moto.ec2.utils import generic_filter

        if volume_ids:
            unknown = [volume_id for volume_id in volume_ids if volume_id not in self.volumes]
            if unknown:
                raise InvalidVolumeIdError(unknown[0])
            matches = [self.volumes[volume_id] for volume_id in dict.fromkeys(volume_ids)]
        else:
            matches = list(self.volumes.values())
        return generic_filter(filters, matches) if filters else matches

    InstanceBackend.get_reservations_by_instance_ids = get_reservations_by_instance_ids  # type: ignore[method-assign]
    EBSBackend.describe_volumes = describe_volumes  # type: ignore[method-assign]
    EBSBackend._valdrix_describes_by_id = True  # type: ignore[attr-defined]


def _read_each_resources_tags_by_its_id() -> None:
    """moto reads an EC2 resource's tags by filtering every tag of its region through a regular
    expression: describing a region's instances or volumes compared each one with all the
    region's tags, most of the simulator's CPU on a large account. The tags of one id are one
    lookup, in the same order and shape."""
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    if getattr(TaggedEC2Resource, "_valdrix_tags_by_id", False):
        return

    def get_tags(self: Any) -> list[dict[str, str]]:
        if not self.id:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
        return [
            {"resource_id": self.id, "key": key, "value": value, "resource_type": kind}
            for key, value in self.ec2_backend.tags.get(self.id, {}).items()
        ]

    TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
    TaggedEC2Resource._valdrix_tags_by_id = True  # type: ignore[attr-defined]


def _remember_where_each_response_member_is_read() -> None:
    """moto's serializer works out, for every member of every resource it answers with, which
    attributes of its object may hold the value (the member's name, its snake_case form,
    aliases from the model's shape and the object's class): the same list for every instance
    of a class under the same shape member, recomputed a dozen times per resource. Worked out
    once per (class, member, shape) instead; the values are still read from each object. The
    shapes come from moto's cached service models and live as long as the process."""
    from moto.core.serialize import XFormedAttributePicker

    if getattr(XFormedAttributePicker, "_valdrix_remembers_keys", False):
        return
    work_out = XFormedAttributePicker.get_possible_keys
    known: dict[tuple[type, str, int], tuple[str, ...]] = {}

    def get_possible_keys(self: Any, context: Any) -> Any:
        where = (type(context.obj), context.key, id(context.shape))
        keys = known.get(where)
        if keys is None:
            keys = known[where] = tuple(work_out(self, context))
        return iter(keys)

    XFormedAttributePicker.get_possible_keys = get_possible_keys  # type: ignore[method-assign]
    XFormedAttributePicker._valdrix_remembers_keys = True  # type: ignore[attr-defined]


def _route_requests_without_rescanning_moto() -> None:
    """moto finds the service of every request by listing its own package directory and trying
    hundreds of URL patterns, under one lock: with many clients at once the simulator spends
    more time queueing for that lock than answering. The answer for a host never changes."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication, "_valdrix_routes_once", False):
        return
    original = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in found:
            found[host] = original(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    DomainDispatcherApplication._valdrix_routes_once = True  # type: ignore[attr-defined]


def _load_each_service_model_once() -> None:
    """moto reads a service's botocore model (EC2's is megabytes of JSON) the first time the
    service is called, with a loader of its own each time and without a lock: the demo's three
    regions, seeded at once, read every model three times over (12 of the simulator's CPU
    seconds in a 17 s seeding). One loader, which keeps what it read, one reader at a time."""
    import moto.core.utils as moto_utils

    if getattr(moto_utils, "_valdrix_models_once", False):
        return
    loader, reading = _service_models(), threading.Lock()

    def load_service_model(service_name: str, model_name: str) -> dict[str, Any]:
        with reading:
            model: dict[str, Any] = loader.load_service_model(service_name, model_name)
            return model

    moto_utils._load_service_model = load_service_model
    moto_utils._valdrix_models_once = True  # type: ignore[attr-defined]


@functools.cache
def _service_models() -> Any:
    from moto.core.loaders import create_loader

    return create_loader()


def _check_eks_role_arns_against_partitions_read_once() -> None:
    """moto checks the role of every EKS cluster and node group against the partitions boto3
    knows, from a new boto3 session each time: botocore's endpoint file read again per call
    (about 2 of the demo's seeding seconds). The partitions are read once; the check is moto's."""
    import moto.eks.models as eks_models
    from boto3 import Session
    from moto.eks.exceptions import InvalidParameterException

    if getattr(eks_models, "_valdrix_partitions_once", False):
        return
    partitions = frozenset(Session().get_available_partitions())
    role_arn = re.compile("arn:(?P<partition>.+):iam::(?P<account_id>[0-9]{12}):role/.+")

    def validate_role_arn(arn: str) -> None:
        match = role_arn.match(arn) if arn else None
        if match is None or match.group("partition") not in partitions:
            raise InvalidParameterException(message="Invalid Role Arn: '" + arn + "'")

    eks_models.validate_role_arn = validate_role_arn  # type: ignore[attr-defined]
    eks_models._valdrix_partitions_once = True  # type: ignore[attr-defined]


def _read_each_metric_series_by_its_name_and_dimensions() -> None:
    """moto's GetMetricData compares every datapoint of the region with every query, once per
    period: a batch of 500 queries over a region's few thousand datapoints costs seconds of the
    simulator's CPU. Here each query sees only its own series (same name and dimensions, or
    same namespace and name when it names no dimension, as moto matches them), and moto does
    the rest as before. Metric math queries keep moto's own path."""
    from moto.cloudwatch.models import CloudWatchBackend

    if getattr(CloudWatchBackend, "_valdrix_series_index", False):
        return
    original = CloudWatchBackend.get_metric_data

    def get_metric_data(
        self: Any,
        queries: list[dict[str, Any]],
        start_time: Any,
        end_time: Any,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        if any("MetricStat" not in query for query in queries):
            return original(self, queries, start_time, end_time, scan_by)
        series: dict[tuple[str, frozenset[tuple[str, str]]], list[Any]] = {}
        for datum in self.get_all_metrics():
            dimensions = frozenset((d.name, d.value) for d in datum.dimensions)
            series.setdefault((datum.name, dimensions), []).append(datum)
        results = []
        for query in queries:
            metric = query["MetricStat"]["Metric"]
            asked = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
            if asked:
                data = series.get((metric["MetricName"], asked), [])
            else:
                data = [
                    datum
                    for (name, _), data in series.items()
                    if name == metric["MetricName"]
                    for datum in data
                    if datum.namespace == metric["Namespace"]
                ]
            only_its_series: Any = _SeriesOf(self, data)
            results += original(only_its_series, [query], start_time, end_time, scan_by)
        return results

    CloudWatchBackend.get_metric_data = get_metric_data  # type: ignore[method-assign]
    CloudWatchBackend._valdrix_series_index = True  # type: ignore[attr-defined]


class _SeriesOf:
    """A CloudWatch backend whose only datapoints are ``data``."""

    def __init__(self, backend: Any, data: list[Any]) -> None:
        self._backend, self._data = backend, data

    def get_all_metrics(self) -> list[Any]:
        return self._data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


class _SizedPart:
    """An upload part that reports a declared size, the rest as moto has it."""

    def __init__(self, part: Any, size: int) -> None:
        self._part, self.size = part, size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._part, name)
