"""One-page report of a hallucination inspection, as self-contained HTML or a one-page PDF.

``render_report(patch, inspection, "report.html")`` embeds one matplotlib figure (maps, reliability curve, skill by
distance to the boundary and by parcel size, probes) as a base64 PNG plus HTML tables of every figure;
``"report.pdf"`` writes the same figure as one A4 page (matplotlib's PdfPages). No network, no browser: only
matplotlib and numpy. Simulated data is labelled as such on the page.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .inspect import Inspection
    from .patch import Patch

MAX_MAP_PX = 500  #: maps are stride-subsampled to at most this many pixels a side in the report
A4_PORTRAIT = (8.27, 11.69)


def _thin(img: np.ndarray, max_px: int = MAX_MAP_PX) -> np.ndarray:
    step = max(1, int(np.ceil(max(img.shape[:2]) / max_px)))
    return img[::step, ::step]


def clearest_rgb(patch: Patch) -> tuple[np.ndarray, str]:
    """True-colour image of the clearest date and its caption."""
    from . import viz

    valid = patch.valid_mask()
    i = int(np.argmax(valid.mean(axis=(1, 2))))
    frame = patch.bands[i]
    limits = viz.series_limits(frame[None], valid[i][None], "true")
    return viz.composite(frame, "true", limits=limits), f"{patch.timestamps[i]:%Y-%m-%d} ({valid[i].mean():.0%} clear)"


def _show(ax: Axes, img: np.ndarray, title: str, **kw: Any) -> Any:
    ax.set_title(title, fontsize=7, pad=2)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax.imshow(_thin(img), interpolation="nearest", **kw)


def _empty(ax: Axes, title: str, text: str) -> None:
    ax.set_title(title, fontsize=7, pad=2)
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=6, wrap=True, transform=ax.transAxes)


def _legend(ax: Axes, items: dict[str, tuple[int, int, int]], ncol: int = 2) -> None:
    from matplotlib.patches import Patch as Swatch

    handles = [Swatch(facecolor=np.asarray(c) / 255, label=k) for k, c in items.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), fontsize=4.5, ncol=ncol, frameon=False,
              handlelength=1, columnspacing=0.6)


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def headline_rows(ins: Inspection) -> list[tuple[str, str]]:
    """(label, value) rows of the key figures, as shown in both the PDF and the HTML."""
    h = ins.counts.headline()
    s = ins.structure
    rows = [("predictor", f"{ins.prediction.predictor} ({ins.prediction.device})"),
            ("10 m answer", "pixel baseline" if ins.answer.independent else "model aggregated to 10 m"),
            ("cultivated painted", _fmt(None if s is None else s.cultivated_fraction, ".1%")),
            ("departs from 10 m answer", _fmt(h["departure_fraction"], ".2%")),
            ("10 m pixels contradicting evidence", _fmt(h["contradiction_share"], ".2%"))]
    if ins.has_labels:
        rows += [("weighted MCC", _fmt(h["weighted_mcc"], ".4f")),
                 ("hallucination fraction / rate", f"{_fmt(h['hallucination_fraction'], '.2%')} / "
                                                   f"{_fmt(h['hallucination_rate'], '.1%')}"),
                 ("omission fraction / rate", f"{_fmt(h['omission_fraction'], '.2%')} / {_fmt(h['omission_rate'], '.1%')}"),
                 ("net gain over 10 m", _fmt(h["net_gain_over_10m"], "+.2%")),
                 ("gap recall (plain / weighted)", f"{_fmt(h['gap_recall'], '.1%')} / {_fmt(h['gap_recall_weighted'], '.1%')}"),
                 ("boundary F1 1 / 2 / 4 px", " / ".join(_fmt(h[f"boundary_f1_{k}px"], ".3f") for k in (1, 2, 4))),
                 ("ECE / Brier", f"{_fmt(h['ece'], '.4f')} / {_fmt(h['brier'], '.4f')}"),
                 ("error-detection AUC (ensemble / confidence)",
                  f"{_fmt(h['uncertainty_error_auc'], '.3f')} / {_fmt(h['confidence_error_auc'], '.3f')}")]
    return rows


def build_figure(patch: Patch, ins: Inspection) -> Figure:
    """The one-page matplotlib figure (A4 portrait)."""
    from matplotlib.figure import Figure

    from . import viz
    from .inspect.maps import (
        DEPARTURE_COLOURS,
        DEPARTURE_LABELS,
        OUTCOME_COLOURS,
        OUTCOME_SHORT,
        Outcome,
        departure_image,
        outcome_image,
    )

    fig = Figure(figsize=A4_PORTRAIT, dpi=100)
    gs = fig.add_gridspec(6, 4, height_ratios=[0.3, 2.0, 2.0, 1.5, 1.9, 1.1], hspace=0.5, wspace=0.3,
                          left=0.05, right=0.93, top=0.975, bottom=0.02)  # room for the last colour bar's labels
    src = "SIMULATED data (sr_core farmland simulator)" if patch.is_simulated else "REAL Sentinel-2 data"
    head = fig.add_subplot(gs[0, :])
    head.set_axis_off()
    head.text(0, 0.9, "Hallucination inspection · " + patch.name.replace("$", r"\$"), fontsize=12, weight="bold", va="top")
    head.text(0, 0.25, f"{src} · {patch.n_dates} dates {patch.timestamps[0]:%Y-%m-%d}…{patch.timestamps[-1]:%Y-%m-%d} · "
                       f"{patch.height}×{patch.width} px at 10 m · {patch.bbox.crs} · generated "
                       f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", fontsize=6.5, va="top", color="#444")
    b = patch.bbox
    head.text(0, -0.15, f"extent (x, y in {b.crs}): {b.min_x:.1f}, {b.min_y:.1f} – {b.max_x:.1f}, {b.max_y:.1f}; "
                        "maps north up", fontsize=6.5, va="top", color="#444")

    p = ins.prediction
    rgb, cap = clearest_rgb(patch)
    _show(fig.add_subplot(gs[1, 0]), rgb, f"Input (true colour)\n{cap}")
    ax = fig.add_subplot(gs[1, 1])
    if patch.has_labels:
        _show(ax, viz.binary_image(patch.cultivated, ignore=patch.not_declared), "Truth: cultivated (2.5 m)")
    else:
        _empty(ax, "Truth", "no labels for this patch")
    ax = fig.add_subplot(gs[1, 2])
    im = _show(ax, p.proba, f"Probability (threshold {p.threshold:g})", cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)
    ax = fig.add_subplot(gs[1, 3])
    if ins.uncertainty is not None:
        vmax = float(max(np.percentile(ins.uncertainty, 99), 1e-6))
        im = _show(ax, ins.uncertainty, "Uncertainty (ensemble std)", cmap="magma", vmin=0, vmax=vmax)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)
        ax.set_xlabel(textwrap.shorten(ins.uncertainty_kind, 60), fontsize=5)
    else:
        _empty(ax, "Uncertainty", "no ensemble was run (tta = 1, no date subsets)")

    _show(fig.add_subplot(gs[2, 0]), viz.binary_image(ins.answer.binary),
          "10 m answer: " + ("pixel baseline" if ins.answer.independent else "model at 10 m"))
    ax = fig.add_subplot(gs[2, 1])
    if ins.outcomes is not None:
        _show(ax, outcome_image(ins.outcomes), "Outcome vs the 10 m answer")
        _legend(ax, {OUTCOME_SHORT[o]: OUTCOME_COLOURS[o] for o in Outcome}, ncol=2)
    else:
        _show(ax, departure_image(ins.departure), "Departures from the 10 m answer")
        _legend(ax, {DEPARTURE_LABELS[k]: DEPARTURE_COLOURS[k] for k in DEPARTURE_LABELS}, ncol=1)
    ax = fig.add_subplot(gs[2, 2])
    im = _show(ax, ins.consistency.gap, "Cover − 10 m evidence",
               cmap="RdBu_r", vmin=-1, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)
    ax = fig.add_subplot(gs[2, 3])
    if patch.has_labels:
        _show(ax, viz.error_image(patch.cultivated, p.binary, patch.not_declared), "Errors vs truth")
        _legend(ax, dict(viz.ERROR_COLOURS), ncol=2)
    else:
        _show(ax, viz.binary_image(p.binary), "Cultivated map (2.5 m)")

    c = ins.counts
    ax = fig.add_subplot(gs[3, 0])
    if c.reliability is not None:
        rel = c.reliability
        ok = rel.n > 0
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
        ax.plot(rel.mean_proba[ok], rel.frequency[ok], "o-", ms=3, lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"Reliability (ECE {_fmt(rel.ece)})", fontsize=6.5, pad=2)
        ax.set_xlabel("mean predicted p", fontsize=6)
        ax.set_ylabel("observed cultivated", fontsize=6)
    else:
        ax.hist(p.proba.ravel(), bins=20, range=(0, 1), color="#4a7")
        ax.set_title("Probability histogram (no labels)", fontsize=7, pad=2)
    ax = fig.add_subplot(gs[3, 1])
    u = c.uncertainty or c.confidence
    if u is not None and u.bins():
        rows = u.bins()
        ax.bar(range(len(rows)), [r["error_rate"] for r in rows], color="#c64")
        ax.set_xticks(range(len(rows)), [f"{r['lo']:.2g}–{r['hi']:.2g}" for r in rows], rotation=30, fontsize=4.5)
        ax.set_title(f"Error rate by {u.kind}\n(error-detection AUC {_fmt(u.auc, '.2f')})", fontsize=6.5, pad=2)
        ax.set_ylim(0, 1)
    elif ins.uncertainty is not None:
        ax.hist(ins.uncertainty.ravel(), bins=30, color="#a5a")
        ax.set_title("Uncertainty histogram (no labels)", fontsize=7, pad=2)
    else:
        _empty(ax, "Uncertainty", "not available")
    ax = fig.add_subplot(gs[3, 2])
    if c.resolution is not None:
        rows = [r for r in c.resolution.distance_table() if r["accuracy"] is not None]  # a bin with no pixel: no bar
        ax.bar([r["distance_px"] for r in rows], [r["accuracy"] for r in rows], color="#48c")
        ax.set_ylim(0, 1)
        ax.set_title("Accuracy by distance\nto the nearest boundary (px)", fontsize=6.5, pad=2)
    else:
        _empty(ax, "Effective resolution", "needs labels")
    ax = fig.add_subplot(gs[3, 3])
    if c.resolution is not None:
        rows = c.resolution.object_table()
        rates = [r["detection_rate"] for r in rows]
        ax.bar([i for i, v in enumerate(rates) if v is not None], [v for v in rates if v is not None], color="#6a4")
        for i, v in enumerate(rates):
            if v is None:  # no parcel of that size here: said, not drawn as 0 % detected
                ax.text(i, 0.03, "none", ha="center", fontsize=4.5, color="#888")
        ax.set_xticks(range(len(rows)), [f"{r['size'].split(' (')[0]}\n(n={r['parcels']})" for r in rows], rotation=30,
                      fontsize=4.5)
        ax.set_ylim(0, 1)
        ax.set_title(f"Parcels detected, by size\n(gap recall {_fmt(c.resolution.gaps.recall, '.0%')})", fontsize=6.5, pad=2)
    elif ins.probes:
        done = [r for r in ins.probes if r.structure is not None]
        ax.bar(range(len(done)), [r.cultivated_fraction or 0 for r in done], color="#c84")
        ax.set_xticks(range(len(done)), [r.name for r in done], rotation=30, fontsize=4.5)
        ax.set_ylim(0, 1)
        ax.set_title("Cultivated painted on probes", fontsize=7, pad=2)
    else:
        _empty(ax, "Parcels by size", "needs labels")
    for a in fig.axes[-4:]:
        a.tick_params(labelsize=5)

    ax = fig.add_subplot(gs[4, :2])
    ax.set_axis_off()
    tab = ax.table(cellText=[list(r) for r in headline_rows(ins)], colWidths=[0.55, 0.45], loc="upper left",
                   cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(5.5)
    tab.scale(1, 0.9)
    ax = fig.add_subplot(gs[4, 2:])
    ax.set_axis_off()
    if ins.probes:
        cells = [[r.name, _fmt(r.cultivated_fraction, ".1%"), str(r.structure.n_parcels) if r.structure else "–",
                  _fmt(r.structure.split_10m_share if r.structure else None, ".1%")] for r in ins.probes]
        tab = ax.table(cellText=cells, colLabels=["probe", "cultivated", "parcels", "10 m split"], loc="upper left",
                       cellLoc="left", colWidths=[0.4, 0.2, 0.2, 0.2])
        tab.auto_set_font_size(False)
        tab.set_fontsize(5.5)
        tab.scale(1, 0.9)
    else:
        ax.text(0, 1.0, "Probes not run (CLI --probes, or the page's probes button).", fontsize=6, va="top")
    ax = fig.add_subplot(gs[5, :])
    ax.set_axis_off()
    lines = ins.verdicts() + ins.notes
    text = "\n".join(textwrap.shorten(v, 210, placeholder=" …") for v in lines[:9])
    if len(lines) > 9:
        text += f"\n… {len(lines) - 9} more in the HTML report / CLI output"
    ax.text(0, 1.0, text, fontsize=4.8, va="top", family="sans-serif")
    return fig


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _table(rows: list[dict[str, Any]] | list[tuple[str, str]], header: list[str] | None = None) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("n/a" if v is None else str(v))

    if not rows:
        return "<p>none</p>"
    if isinstance(rows[0], dict):
        header = header or list(rows[0])  # type: ignore[arg-type]
        body = "".join("<tr>" + "".join(f"<td>{cell(r.get(k))}</td>" for k in header) + "</tr>" for r in rows)  # type: ignore[union-attr]
    else:
        body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)  # type: ignore[union-attr]
    head = "" if header is None else "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    return f"<table>{head}{body}</table>"


def report_html(patch: Patch, ins: Inspection, fig_png: bytes | None = None) -> str:
    """The HTML document (self-contained: the figure is an embedded base64 PNG)."""
    png = fig_png if fig_png is not None else figure_png(build_figure(patch, ins))
    b64 = base64.b64encode(png).decode("ascii")
    c = ins.counts
    parts = [f"<h1>Hallucination inspection · {html.escape(patch.name)}</h1>",
             "<p class='src'>" + ("SIMULATED data — produced by sr_core's farmland simulator, not observed by Sentinel-2."
                                  if patch.is_simulated else "REAL data — contains modified Copernicus Sentinel data.")
             + "</p>",
             f"<p class='small'>{patch.n_dates} dates {patch.timestamps[0]:%Y-%m-%d} … {patch.timestamps[-1]:%Y-%m-%d}; "
             f"{patch.height} × {patch.width} px at 10 m (maps at 2.5 m), {html.escape(str(patch.bbox.crs))}, extent "
             f"{patch.bbox.min_x:.1f}, {patch.bbox.min_y:.1f} – {patch.bbox.max_x:.1f}, {patch.bbox.max_y:.1f} "
             "(x, y; maps north up)</p>",
             f"<img alt='inspection figure' src='data:image/png;base64,{b64}'/>",
             "<h2>Key figures</h2>", _table(headline_rows(ins))]
    if ins.verdicts():
        parts += ["<h2>Verdicts</h2><ul>", *[f"<li>{html.escape(v)}</li>" for v in ins.verdicts()], "</ul>"]
    if c.outcomes is not None:
        fr = c.outcomes.fractions()
        frw = c.outcomes.fractions(weighted=True)
        parts += ["<h2>Outcomes against the 10 m answer</h2>",
                  _table([{"outcome": k, "share of scored pixels": fr[k], "share (benchmark weights)": frw[k]} for k in fr])]
    if c.resolution is not None:
        parts += ["<h2>Skill by distance to the nearest parcel boundary</h2>", _table(c.resolution.distance_table()),
                  "<h2>Parcels detected by size</h2>", _table(c.resolution.object_table())]
    if c.scores is not None:
        parts += ["<h2>Weighted MCC by parcel-size class</h2>",
                  _table([{"class": k, "weighted MCC": v, "parcels": c.scores.parcels.get(k, 0)}
                          for k, v in c.scores.size_class_mcc().items()])]
    if c.reliability is not None:
        parts += ["<h2>Reliability curve</h2>", _table(c.reliability.curve())]
    for u in (c.uncertainty, c.confidence):
        if u is not None:
            parts += [f"<h2>Error rate by uncertainty — {html.escape(u.kind)} (AUC {_fmt(u.auc)})</h2>", _table(u.bins())]
    if ins.probes:
        parts += ["<h2>Probes</h2>", _table([{"probe": r.name, "input": r.description,
                                              "cultivated": r.cultivated_fraction, "mean p": r.mean_proba,
                                              **(r.structure.to_dict() if r.structure else {}), "error": r.error}
                                             for r in ins.probes])]
    parts += ["<h2>Consistency with the 10 m evidence</h2>", _table(list(c.consistency.to_dict().items()))]
    if ins.notes:
        parts += ["<h2>Notes</h2><ul>", *[f"<li>{html.escape(n)}</li>" for n in ins.notes], "</ul>"]
    parts.append("<p class='small'>Definitions: docs/HALLUCINATIONS.md in the sr_core repository.</p>")
    style = ("body{font-family:sans-serif;max-width:1000px;margin:1em auto;color:#222}img{width:100%}"
             "table{border-collapse:collapse;font-size:12px;margin:.4em 0}td,th{border:1px solid #ccc;padding:2px 6px}"
             "h2{font-size:15px;margin-top:1.2em}.src{font-weight:bold}.small{font-size:11px;color:#666}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Inspection {html.escape(patch.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def render_report(patch: Patch, results: Inspection, path: str | Path) -> Path:
    """Write the one-page report of ``results`` (an :class:`~sr_core.inspect.Inspection` of ``patch``) to ``path``:
    ``.html`` / ``.htm`` (self-contained) or ``.pdf`` (one A4 page). Returns the path."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in {".html", ".htm", ".pdf"}:
        raise ConfigError(f"report {out}: unknown format {suffix or '(none)'}; name it .html or .pdf")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = build_figure(patch, results)
    if suffix == ".pdf":
        from matplotlib.backends.backend_pdf import PdfPages

        with PdfPages(out, metadata={"Title": f"Hallucination inspection {patch.name}", "Creator": "sr_core"}) as pdf:
            pdf.savefig(fig)
    else:
        out.write_text(report_html(patch, results, figure_png(fig)), encoding="utf-8")
    return out


def report_bytes(patch: Patch, results: Inspection, fmt: str = "html") -> bytes:
    """The report as bytes (for a download button): ``fmt`` = ``html`` or ``pdf``."""
    if fmt not in {"html", "pdf"}:
        raise ConfigError(f"report format {fmt!r}: choose html or pdf")
    fig = build_figure(patch, results)
    if fmt == "html":
        return report_html(patch, results, figure_png(fig)).encode("utf-8")
    from matplotlib.backends.backend_pdf import PdfPages

    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        pdf.savefig(fig)
    return buf.getvalue()
