"""AWS detectors. Importing this package registers them all."""

from . import ebs, ec2, elasticache, elb, logs, network, rds, s3

__all__ = ["ebs", "ec2", "elasticache", "elb", "logs", "network", "rds", "s3"]
