"""The EKS gp2 -> gp3 migration's logic, by concern (README "How the code is laid out"):

- `versions`, `naming`: pinned upstream constants and name rules; import nothing of the project.
- `ebs`: EBS performance and price facts.
- `config`: the stack file's model, checks and phase edits.
- `planning`: plans, manifests and each strategy's steps.
- `checks`: what the one-way steps check and do during `up`.
- `iam`: the driver's, the runner's and discover's policies.
- `discovery`: `gp3migrate discover`.
- `sim`: the offline simulation (engine, cluster, EBS) that runs the real program.
- `cli`: the `gp3migrate` command.

Nothing here registers a Pulumi resource; `components/` does that. tests/test_layers.py holds
who may import whom.
"""
