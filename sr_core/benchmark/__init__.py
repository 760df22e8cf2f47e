"""The permanent benchmark: a fixed set of simulated test patches, live scoring and a leaderboard.

* :mod:`.definition` — build the benchmark (``create_benchmark``), its public / private halves, label-free inputs;
* :mod:`.store` — teams, their tokens, submissions and the admin's audit log in SQLite (WAL) or PostgreSQL / any
  SQLAlchemy database (``Leaderboard``);
* :mod:`.credentials` — team tokens and the admin credential (salted scrypt hashes, strict credential files);
* :mod:`.service` — check the team's token, validate + score + record a submission (``submit``), reference rows
  (``compute_references``).

The CLI (``python -m sr_core benchmark ...``) and the Leaderboard page both go through :func:`service.submit`.
Names below are imported on first use (SQLAlchemy loads only when the store is needed).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Benchmark": "definition", "BenchmarkMissingError": "definition", "create_benchmark": "definition",
    "export_inputs": "definition", "inputs_archive": "definition", "load_benchmark": "definition",
    "benchmark_exists": "definition", "Leaderboard": "store", "LeaderboardBusyError": "store", "RateLimit": "store",
    "SubmitResult": "service", "compute_references": "service", "score_archive": "service", "submit": "service",
    "TeamAuthError": "store", "CredentialError": "credentials",
}  # fmt: skip

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
