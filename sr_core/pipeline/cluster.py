"""Where a batch runs: in this process, on a Dask ``LocalCluster``, or on a running Dask scheduler. Parses the
``--scheduler`` value, connects (Dask is imported only here, only when a scheduler is used) and reads the cluster's
layout (workers, task slots per host, GPUs)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_scheduler(scheduler: Any) -> tuple[str, int | None]:
    """``(kind, workers)``: ("none", None), ("local", N) or ("address", None). Raises ConfigError for others."""
    if scheduler is None:
        return "none", None
    if not isinstance(scheduler, str):
        return "client", None
    s = scheduler.strip()
    if s.lower() in ("", "none", "in-process"):
        return "none", None
    if s.lower() == "local":
        return "local", cores()
    if s.lower().startswith("local:"):
        try:
            n = int(s.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"--scheduler {s!r}: give local:N with N ≥ 1 worker processes (e.g. local:2)")
        return "local", n
    if "://" in s:
        return "address", None
    raise ConfigError(
        f"--scheduler {s!r}: use local (one worker per core), local:N, or the address of a running Dask scheduler "
        "such as tcp://127.0.0.1:8786"
    )


def _cuda_here() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False


@contextlib.contextmanager
def connect(scheduler: Any, device: str) -> Iterator[tuple[Any, str]]:
    """A ``distributed.Client`` (and the cluster it owns, closed on exit) plus a label for reports."""
    kind, n = parse_scheduler(scheduler)
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError(
            f"--scheduler needs Dask distributed ({exc}); install it with pip install 'dask[distributed]' "
            "or run without --scheduler (in-process)"
        ) from None
    if kind == "client":
        yield scheduler, str(getattr(scheduler.scheduler, "address", "client"))
        return
    if kind == "local":
        # the nannies write Dask's worker environment (OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_, ...) into this
        # process's os.environ before spawning; put ours back afterwards so later subprocesses are unaffected
        saved_env = dict(os.environ)
        gpu = device in ("auto", "cuda") and _cuda_here()
        cluster = client = None
        try:
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR, resources={"GPU": 1} if gpu else None)
            client = Client(cluster)
            yield client, f"local:{n}"
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
            os.environ.clear()
            os.environ.update(saved_env)
        return
    try:
        client = Client(scheduler, timeout="30s")
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with `dask scheduler` and workers "
            "with `dask worker ADDRESS`, or use --scheduler local:N"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise ConfigError(
                f"the Dask scheduler at {scheduler} has no workers after 60 s; start some with "
                f"`dask worker {scheduler} --nthreads 1`"
            ) from None
        _check_workers_import_sr_core(client, str(scheduler))
        yield client, str(scheduler)
    finally:
        client.close()


def _check_workers_import_sr_core(client: Any, label: str) -> None:
    """Refuse a cluster whose workers cannot import sr_core: every task would fail with Dask's "Error during
    deserialization of the task graph" (workers started outside the checkout, or from another environment)."""
    try:  # a builtin, sent by reference: it unpickles on a worker that lacks sr_core, and says whether it is there
        found = client.run(eval, "__import__('importlib.util').util.find_spec('sr_core') is not None")
    except Exception:  # an older or unusual cluster: the tasks' own errors will say it
        return
    missing = sorted(addr for addr, ok in found.items() if not ok)
    if missing:
        here = Path(__file__).resolve().parents[2]
        raise ConfigError(
            f"{len(missing)} of {len(found)} Dask workers at {label} cannot import sr_core ({', '.join(missing[:3])}"
            f"{' …' if len(missing) > 3 else ''}): start them where the package is importable, e.g. "
            f"`export PYTHONPATH={here}` before `dask worker`, with the same Python environment as this one"
        )


def cluster_layout(client: Any) -> tuple[int, tuple[tuple[str, int], ...], bool]:
    """(number of workers, task slots per host, whether any worker advertises a GPU resource)."""
    from urllib.parse import urlparse

    workers = client.scheduler_info(n_workers=-1)["workers"]
    slots: dict[str, int] = {}
    gpu = False
    for addr, info in workers.items():
        host = urlparse(addr).hostname or ""
        slots[host] = slots.get(host, 0) + int(info.get("nthreads", 1))
        gpu = gpu or float((info.get("resources") or {}).get("GPU", 0)) > 0
    return len(workers), tuple(sorted(slots.items())), gpu


__all__ = ["cluster_layout", "connect", "cores", "parse_scheduler"]
