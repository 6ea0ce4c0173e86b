"""The building blocks of the project's self-contained HTML reports.

Shared by the explanation report (:mod:`serve.report`), monitoring
(:mod:`serve.monitor`) and the analysis report (:mod:`training.analysis.report`):
one style sheet, figures (:func:`subplots`) embedded as base64 PNG,
tables and escaping, and an atomic page write. A page makes no request of any kind.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

from common.files import write_atomically

CSS = (
    "body{font-family:sans-serif;max-width:1050px;margin:auto;padding:0 12px}"
    "table{border-collapse:collapse;margin:6px 0}"
    "td,th{padding:2px 8px;border:1px solid #ccc;text-align:right}"
    ".warn{background:#fde2e2;color:#922;padding:8px;font-weight:bold}"
    ".flag{color:#922;font-weight:bold}.ok{color:#276227}"
    "section{border-top:1px solid #999;margin-top:18px}"
    "img{max-width:100%}"
    ".scroll{overflow-x:auto}.scroll table{font-size:12px}"
)


def subplots(*args, figsize=None, layout=None, **kwargs):
    """A new figure and its axes (the arguments of
    ``matplotlib.figure.Figure.subplots``; ``figsize`` and ``layout`` are the
    figure's). The one way the project draws a raster figure: no pyplot, so no
    global backend and no figure left open."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(*args, **kwargs)


def png(fig) -> str:
    """An ``<img>`` holding ``fig`` as a base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def table(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table, numbers to 3 decimals, blanks for missing."""
    return frame.to_html(
        index=False,
        float_format=lambda v: f"{v:.3f}",
        border=0,
        na_rep="",
        escape=True,
    )


def e(text) -> str:
    """``text`` escaped for HTML."""
    return html.escape(str(text))


def write_page(
    out: Path, title: str, parts: list[str], *, overwrite: bool = False
) -> Path:
    """Write a whole page to ``out`` through a temporary file (replacing ``out``
    only with ``overwrite``)."""
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    return write_atomically(
        out, lambda tmp: tmp.write_text(page, encoding="utf-8"), overwrite=overwrite
    )
