"""AWS detectors. Importing this package registers them all."""

from . import (
    compute_optimizer,
    cost_optimization_hub,
    dynamodb,
    ebs,
    ebs_generations,
    ec2,
    efs,
    eks,
    elasticache,
    elb,
    logs,
    network,
    rds,
    redshift,
    s3,
    sagemaker,
)

__all__ = [
    "compute_optimizer",
    "cost_optimization_hub",
    "dynamodb",
    "ebs",
    "ebs_generations",
    "ec2",
    "efs",
    "eks",
    "elasticache",
    "elb",
    "logs",
    "network",
    "rds",
    "redshift",
    "s3",
    "sagemaker",
]
