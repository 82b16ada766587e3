"""Pure logic of the EKS gp2 -> gp3 migration: config model, sizing, prices, manifests, discovery.

Nothing in this package registers a Pulumi resource; `components/` does that.
"""
