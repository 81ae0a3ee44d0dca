"""The scan benchmark's peer keeps up with the detectors: every AWS detector either has a Cloud
Custodian policy in ``benchmarks/custodian_peer.py`` or a reason it has none, so a new detector
cannot slip out of the comparison unnoticed. (The benchmark itself runs outside the suite.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from valdrix.scanning.registry import load_all_detectors

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def custodian_peer() -> ModuleType:
    path = BENCHMARKS / "custodian_peer.py"
    spec = importlib.util.spec_from_file_location("custodian_peer", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("custodian_peer", module)
    spec.loader.exec_module(module)
    return module


def test_every_aws_detector_has_a_custodian_policy_or_a_reason_it_has_none() -> None:
    peer = custodian_peer()
    detectors = {d.key for d in load_all_detectors().for_provider("aws")}
    with_policy = [policy.detector for policy in peer.POLICIES]

    assert len(with_policy) == len(set(with_policy)), "one policy per detector"
    assert not set(with_policy) & set(peer.NOT_EXPRESSIBLE), "a policy, or a reason: not both"
    assert set(with_policy) | set(peer.NOT_EXPRESSIBLE) == detectors
    assert all(peer.NOT_EXPRESSIBLE.values()), "each detector left out says why"
    assert len(with_policy) >= 10


def test_policy_names_are_unique_custodian_names() -> None:
    names = [policy.as_yaml()["name"] for policy in custodian_peer().POLICIES]

    assert len(names) == len(set(names))
    assert all(name.replace("-", "").isalnum() for name in names)
