"""Model backends: talk to the R1 distill and split its reasoning from its answer."""
