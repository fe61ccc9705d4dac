"""The leaf every layer may import: process-group helpers (``distributed``), deterministic crash
points for kill-and-resume tests (``faults``) and atomic file writes (``io``).

Nothing here imports ssmar beyond :mod:`ssmar.errors` (docs/architecture.md).
"""
