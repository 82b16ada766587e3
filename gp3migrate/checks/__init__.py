"""What the one-way steps check and do while `pulumi up` runs: the preconditions each re-checks
against AWS and the cluster (`preconditions`), the EBS CSI driver's readiness, and the kubeconfig.

May import: `gp3migrate.versions`, `gp3migrate.naming`, `gp3migrate.config`. No Pulumi: the
dynamic providers in `components/` call these with their clients.
"""
