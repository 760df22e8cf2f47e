"""Frame-switch time of the Time series page on a full 500 × 500 patch (server time, headless AppTest).

Prints the time of the first view, of moving the date slider to a date not seen yet, and of moving back to a date
already rendered (cached). Target (issue 6): ≤ 150 ms server time once cached.

    .venv/bin/python bench/bench_app_frames.py [--size 500] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--moves", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    os.environ["SR_CORE_HOME"] = str(tmp / "home")
    os.environ["SR_CORE_DEMO"] = "off"
    from streamlit.testing.v1 import AppTest

    from sr_core.io import write_eopatch
    from sr_core.simulate import simulate_patch

    t0 = time.perf_counter()
    patch = simulate_patch(args.seed, size=args.size, split="test")
    path = write_eopatch(patch, tmp / patch.name)
    print(f"patch: {patch!r} (simulated + written in {time.perf_counter() - t0:.1f} s)")

    at = AppTest.from_file(str(REPO / "pages/1_Time_series.py"), default_timeout=600)
    at.session_state["selected_patch_path"] = str(path)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]
    n = patch.n_dates
    new, cached = [], []
    order = [int(i * (n - 1) / max(args.moves - 1, 1)) for i in range(args.moves)]
    for i in order[1:]:
        t = time.perf_counter()
        at.select_slider(key="frame_index").set_value(i).run()
        new.append(time.perf_counter() - t)
    for i in order[1:]:
        t = time.perf_counter()
        at.select_slider(key="frame_index").set_value(i).run()
        cached.append(time.perf_counter() - t)
    assert not at.exception, [e.value for e in at.exception]
    print(f"first view (load + derived layers + first frame): {first * 1000:.0f} ms")
    print(f"frame switch, date not yet rendered: median {statistics.median(new) * 1000:.0f} ms "
          f"(min {min(new) * 1000:.0f}, max {max(new) * 1000:.0f}) over {len(new)} moves")
    print(f"frame switch, cached date:           median {statistics.median(cached) * 1000:.0f} ms "
          f"(min {min(cached) * 1000:.0f}, max {max(cached) * 1000:.0f}); target ≤ 150 ms")


if __name__ == "__main__":
    main()
