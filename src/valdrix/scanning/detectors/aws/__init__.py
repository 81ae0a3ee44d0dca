"""AWS detectors. Importing this package registers them all."""

from . import (
    commitments,
    dynamodb,
    ebs,
    ebs_generations,
    ec2,
    ec2_generations,
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
    "commitments",
    "dynamodb",
    "ebs",
    "ebs_generations",
    "ec2",
    "ec2_generations",
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
