"""Utilization analytics for factories and buyers, and the k-anonymised regional observatory.

See docs/indicators.md for every indicator's formula and the suppression rule."""
