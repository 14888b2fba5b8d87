"""Researchers' tools: checking and linting variants, generated and simulated cohorts,
fidelity reports (text, JSON, HTML), course plots, the demo course, and a store's tables as
pandas DataFrames (:func:`to_pandas`, docs/export.md)."""

from iptflow.research.export import to_pandas

__all__ = ["to_pandas"]
