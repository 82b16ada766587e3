"""A deterministic simulation of the Pulumi engine, the Kubernetes storage controllers and EBS, driven
by the real program (see README, "The simulation")."""
