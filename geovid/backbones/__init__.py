"""Backbones: the diffusion models (and exact analytic stand-ins) that supply scores."""
