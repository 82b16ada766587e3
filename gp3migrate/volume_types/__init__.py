"""Amazon EBS volume types as code: what gp2 gives a volume, the gp3 IOPS and throughput that match it,
and what each costs.

May import: nothing of the project. Pure functions over published figures, each with its source.
"""
