"""Inspection of produced lots by independent labs: sampling plans and verdicts."""
