"""``python -m sr_core <command>``: one sub-module per command in this package.

Each command module defines ``register(subparsers) -> argparse.ArgumentParser`` (which sets ``func`` via
``set_defaults``) and imports heavy libraries (torch, rasterio, ...) only inside its functions, so ``--help``
stays fast. Commands are discovered automatically; errors from the library become a one-line message and a
non-zero exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import SRCoreError

EXIT_USAGE = 2  #: bad input or configuration (the user can fix it)
EXIT_FAILURE = 1  #: the command ran but its result is a failure (e.g. a submission that does not validate)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="python -m sr_core",
        description="Sentinel-2 4x super-resolution of farmland (AI4EO 'Enhanced Sentinel-2 for Agriculture').",
    )
    parser.add_argument("--version", action="version", version=f"sr_core {__version__}")
    parser.add_argument("--log-level", default=None, metavar="LEVEL",
                        help="log DEBUG, INFO, WARNING (default) or ERROR to stderr (or set $SR_CORE_LOG_LEVEL)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v logs INFO, -vv DEBUG")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        try:
            module = importlib.import_module(f"{__name__}.{mod}")
        except ImportError as exc:  # a command whose optional dependency is missing must not break the others
            broken = sub.add_parser(mod, help=f"(unavailable: {exc})")
            broken.set_defaults(func=_unavailable(mod, exc))
            continue
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def _unavailable(name: str, exc: Exception):
    def run(args: argparse.Namespace) -> int:
        print(f"error: the '{name}' command cannot run here: {exc}; reinstall with `make install`", file=sys.stderr)
        return EXIT_USAGE

    return run


def print_json(obj: Any) -> None:
    """One JSON document on stdout (numpy scalars and paths converted)."""

    def default(o: Any) -> Any:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    sys.stdout.write(json.dumps(obj, default=default) + "\n")


def os_error_text(exc: OSError) -> str:
    """``file: reason`` of an operating-system error (``reason`` alone when it names no file)."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        from ..logs import configure

        configure(args.log_level, args.verbose)
        rc = args.func(args)
    except SRCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FileNotFoundError as exc:
        print(f"error: {exc.filename or exc}: no such file or folder", file=sys.stderr)
        return EXIT_USAGE
    except (FileExistsError, NotADirectoryError) as exc:  # e.g. --out names a file where a folder is written
        print(f"error: {exc.filename or exc}: a file is in the way of a folder this command writes; choose another "
              "output location", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # permission denied, disk full, read-only file system, …: the user's to fix
        print(f"error: {os_error_text(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)
