"""CPU cost of the Predict & compare page once the model has run (server side, headless AppTest, cProfile).

Simulates one labelled patch, runs the bundled model on it once (kept in a cache folder between invocations; later
runs of the page get that result at once), then times, on the page's own script thread:

* ``before the model``: what the Run button's run does before the model (layers that depend on the patch only);
* ``after prediction``: the rest of that run, once the model has returned (layers of the prediction warped to Web
  Mercator and PNG-encoded, the label's parcels, the map, the scores, the downloads, the pooled table), and the
  process CPU until both baselines are run and scored (on the page's thread or in the background);
* ``rerun``: a later rerun of the same page (e.g. the swipe's right-hand layer switched), all cached.

Prints thread CPU seconds and wall seconds of each, and with ``--profile N`` the N costliest functions (cumulative).

    nice -n 19 .venv/bin/python bench/bench_compare_page.py [--size 500] [--profile 25]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pickle
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0, help="print the N costliest functions of each run")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "sr-bench-compare"),
                    help="folder keeping the patch and its prediction between invocations")
    args = ap.parse_args()
    cache = Path(args.cache) / f"{args.size}-{args.seed}"
    os.environ["SR_CORE_HOME"] = str(cache / "home")
    os.environ["SR_CORE_DEMO"] = "off"
    os.environ["SR_CORE_DATA"] = str(cache / "data")
    from streamlit.testing.v1 import AppTest
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    from sr_core.io import write_eopatch
    from ui import common

    path = cache / "data" / "eopatch-01"
    if not path.exists():
        from sr_core.simulate import simulate_patch

        patch = simulate_patch(args.seed, size=args.size, split="train")
        write_eopatch(patch, path)
    pred_file = cache / "prediction.pkl"
    if pred_file.exists():
        pred = pickle.loads(pred_file.read_bytes())
    else:
        t = time.perf_counter()
        from sr_core.inference import predict

        pred = predict(common.load_patch(path), device="auto")
        print(f"model run once (cached in {pred_file}): {time.perf_counter() - t:.1f} s")
        pred_file.write_bytes(pickle.dumps(pred))

    import sr_core.inference

    mark: dict[str, float] = {}

    def model_done(*_a, **_k):  # the model's result, at once: what follows is the page's own work
        mark.update(thread=time.thread_time(), wall=time.perf_counter(), process=time.process_time())
        return pred

    sr_core.inference.predict = model_done
    stats: dict[str, tuple[float, float, cProfile.Profile]] = {}
    label = [""]
    original = LocalScriptRunner._run_script_thread

    def profiled(self) -> None:  # the page runs on the script runner's thread: profile that thread
        if not label[0]:
            return original(self)
        prof = cProfile.Profile(time.thread_time)  # CPU seconds of this thread, not wall
        mark.clear()
        c0, w0 = time.thread_time(), time.perf_counter()
        prof.enable()
        try:
            original(self)
        finally:
            prof.disable()
            c1, w1 = time.thread_time(), time.perf_counter()
            stats[label[0]] = (c1 - mark.get("thread", c0), w1 - mark.get("wall", w0), prof)
            if mark:
                stats["before the model"] = (mark["thread"] - c0, mark["wall"] - w0, prof)

    LocalScriptRunner._run_script_thread = profiled
    import folium  # noqa: F401  (imported by the Home page's map in a running app: not this page's cost)
    import streamlit_folium  # noqa: F401

    from sr_core import metrics

    metrics.parcel_weight(1)  # its table (scipy.stats) is built once per process
    at = AppTest.from_file(str(REPO / "pages/2_Predict_and_compare.py"), default_timeout=900)
    at.session_state["selected_patch_path"] = str(path)
    at.run()  # warm-up: imports, the patch read, the page before any prediction
    assert not at.exception, [e.value for e in at.exception]
    label[0] = "after prediction"
    at.button(key="run_model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    if hasattr(common, "wait_for_baselines"):  # baselines on a background thread: count their CPU too
        common.wait_for_baselines(path, None)
    process_cpu = time.process_time() - mark["process"]
    label[0] = "rerun"
    at.radio(key="cmp_right").set_value("true colour").run()
    assert not at.exception, [e.value for e in at.exception]
    label[0] = "rerun (back)"
    at.radio(key="cmp_right").set_value("label").run()
    assert not at.exception, [e.value for e in at.exception]
    print(f"patch {args.size} × {args.size} px at 10 m (prediction {pred.shape[0]} × {pred.shape[1]} at 2.5 m); "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"after prediction, whole process until both baselines are scored: {process_cpu:.2f} s CPU")
    for name, (cpu, wall, _prof) in stats.items():
        print(f"{name:>17}: {cpu:6.2f} s CPU (script thread), {wall:6.2f} s wall")
    if args.profile:
        for name, (_cpu, _wall, prof) in stats.items():
            if name != "before the model":
                print(f"--- {name} (the whole run, cumulative CPU seconds)")
                mine = r"(pages|ui|sr_core|streamlit_folium|folium|PIL|rasterio)/"
                pstats.Stats(prof).sort_stats("cumulative").print_stats(mine, args.profile)

if __name__ == "__main__":
    main()
