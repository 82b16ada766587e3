"""IAM policy documents: the EBS CSI driver's (from the upstream policies) and the runner's and
discover's least-privilege policies that `gp3migrate iam-policy` prints.

May import: `gp3migrate.versions`, `gp3migrate.naming`, `gp3migrate.config`, `gp3migrate.checks`.
"""
