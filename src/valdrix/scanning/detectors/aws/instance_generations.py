"""Which instance families are of a previous generation, and the current-generation family a
workload moves to: data, read by the EC2 previous-generation detector and meant for RDS's
(``db.m4.large`` is the M4 family too).

The previous-generation families are those on AWS's "Previous Generation Instances" page
(https://aws.amazon.com/ec2/previous-generation/): T1, M1, M2, M3, M4, C1, C3, C4, CC2, CR1,
G2, G3 (and G3s), HI1, HS1, I2, D2, P2, R3, R4, X1, X1e. T2 is added on purpose: AWS still calls
it current, but T3 runs the same sizes for about 10 % less on the same x86 AMIs, so a fleet of
T2 pays for nothing.

Each successor is the cheapest current-generation family of the same processor architecture
(x86-64) and the same shape (vCPU and memory per size, instance storage where the old family
had it): moving there needs no new AMI. Graviton families are cheaper still but need arm64
builds, which is a migration, not a type change; newer Intel families (M6i, M7i ...) cost the
same as the fifth generation or more.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

CURRENT_GENERATION_SUCCESSOR: Mapping[str, str] = MappingProxyType(
    {
        # General purpose
        "t1": "t3",
        "t2": "t3",
        "m1": "m5",
        "m2": "r5",  # M2 was memory-optimised in all but name
        "m3": "m5",
        "m4": "m5",
        # Compute optimised
        "c1": "c5",
        "c3": "c5",
        "c4": "c5",
        "cc2": "c5",
        # Memory optimised
        "cr1": "r5",
        "r3": "r5",
        "r4": "r5",
        "x1": "x2idn",
        "x1e": "x2iedn",
        # Storage optimised (instance storage kept: NVMe SSD for I2 and HI1, HDD for D2 and HS1)
        "hi1": "i3",
        "i2": "i3",
        "hs1": "d3",
        "d2": "d3",
        # Accelerated computing
        "g2": "g4dn",
        "g3": "g4dn",
        "g3s": "g4dn",
        "p2": "p3",
    }
)

# The sizes each successor family comes in (EC2 names): a previous-generation size the successor
# lacks (m4.10xlarge: M5 jumps from 8xlarge to 12xlarge) has no same-size equivalent.
SUCCESSOR_SIZES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "t3": frozenset({"nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"}),
        "m5": frozenset(
            {
                "large",
                "xlarge",
                "2xlarge",
                "4xlarge",
                "8xlarge",
                "12xlarge",
                "16xlarge",
                "24xlarge",
                "metal",
            }
        ),
        "c5": frozenset(
            {
                "large",
                "xlarge",
                "2xlarge",
                "4xlarge",
                "9xlarge",
                "12xlarge",
                "18xlarge",
                "24xlarge",
                "metal",
            }
        ),
        "r5": frozenset(
            {
                "large",
                "xlarge",
                "2xlarge",
                "4xlarge",
                "8xlarge",
                "12xlarge",
                "16xlarge",
                "24xlarge",
                "metal",
            }
        ),
        "x2idn": frozenset({"16xlarge", "24xlarge", "32xlarge", "metal"}),
        "x2iedn": frozenset(
            {"xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge", "24xlarge", "32xlarge", "metal"}
        ),
        "i3": frozenset({"large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge", "metal"}),
        "d3": frozenset({"xlarge", "2xlarge", "4xlarge", "8xlarge"}),
        "g4dn": frozenset(
            {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "metal"}
        ),
        "p3": frozenset({"2xlarge", "8xlarge", "16xlarge"}),
    }
)


def split_type(instance_type: str) -> tuple[str, str, str] | None:
    """``"db.m4.large"`` -> ``("db.", "m4", "large")``; ``"m4.large"`` -> ``("", "m4", "large")``;
    None when the name is not ``[prefix.]family.size``."""
    parts = instance_type.split(".")
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return parts[0] + ".", parts[1], parts[2]
    return None


def is_previous_generation(instance_type: str) -> bool:
    split = split_type(instance_type)
    return split is not None and split[1] in CURRENT_GENERATION_SUCCESSOR


def same_size_successor(instance_type: str) -> str | None:
    """The current-generation type of the same size (``m4.large`` -> ``m5.large``,
    ``db.m4.large`` -> ``db.m5.large``); None for a current-generation type or a size its
    successor family does not come in."""
    split = split_type(instance_type)
    if split is None or split[1] not in CURRENT_GENERATION_SUCCESSOR:
        return None
    prefix, family, size = split
    successor = CURRENT_GENERATION_SUCCESSOR[family]
    if size not in SUCCESSOR_SIZES[successor]:
        return None
    return f"{prefix}{successor}.{size}"
