"""Researchers' tools: checking and linting variants, generated and simulated cohorts,
fidelity reports (text, JSON, HTML), course plots and the demo course."""
