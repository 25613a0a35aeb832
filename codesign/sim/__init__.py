"""Simulation of the network on real data: measured spike activity (and, later, the functional
crossbar simulation with non-idealities)."""
