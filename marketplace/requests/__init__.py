"""Buyer requests, their matches and batch plans (uses the pure algorithms and the adapter in ``matching``)."""
