"""A short, self-contained HTML report per run (psi, train, predict), beside its JSON.

One file, no external assets: plots are drawn with matplotlib and embedded as PNG data
URIs, so the report can be mailed or archived as it is. It shows the run's figures, the
curves (train: ROC of the joint model against the wallet's own model and, where the
one-command launcher computed it, the plaintext reference; the lift/gain chart; the loss
per epoch) and what this party saw. It never holds a per-row value.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Curve = tuple[str, Sequence[float], Sequence[float]]


def _png(draw: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.6, 3.6))
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def roc_plot(curves: Sequence[Curve]) -> str:
    def draw(axes: Any) -> None:
        for (label, fpr, tpr), style in zip(curves, ("-", "-", ":"), strict=False):
            axes.plot(fpr, tpr, label=label, linestyle=style)  # the reference dotted: it may overlap
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test rows")
        axes.legend(loc="lower right", fontsize=7)

    return _png(draw)


def gain_plot(lift: Sequence[dict[str, float]]) -> str:
    def draw(axes: Any) -> None:
        shares = [0.0] + [row["decile"] / len(lift) for row in lift]
        gains = [0.0] + [row["cumulative_gain"] for row in lift]
        axes.plot(shares, gains, marker="o", label="joint model")
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="random")
        axes.set(
            xlabel="share of rows contacted (highest scores first)",
            ylabel="share of positives reached",
            title="cumulative gain",
        )
        axes.legend(loc="lower right", fontsize=7)

    return _png(draw)


def loss_plot(
    losses: Sequence[float],
    step: str = "epoch",
    measure: str = "mean squared error of p",
    title: str = "training loss (Brier)",
    validation: Sequence[float] = (),
) -> str:
    def draw(axes: Any) -> None:
        axes.plot(range(1, len(losses) + 1), losses, marker="o", label="training rows")
        if validation:
            axes.plot(range(1, len(validation) + 1), validation, marker="x", label="validation rows")
            axes.legend(loc="upper right", fontsize=7)
        axes.set(xlabel=step, ylabel=measure, title=title)

    return _png(draw)


def histogram_plot(counts: Sequence[int], edges: Sequence[float]) -> str:
    def draw(axes: Any) -> None:
        axes.stairs(counts, edges, fill=True)
        axes.set(xlabel="score", ylabel="rows", title="score distribution")

    return _png(draw)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def lift_table(lift: Sequence[dict[str, float]]) -> str:
    """The lift-by-decile table of a model's evaluation (`blindgate.pets.ml.evaluate`)."""
    rows = [(r["decile"], r["rows"], r["positive_rate"], r["lift"], r["cumulative_gain"]) for r in lift]
    return table(rows, ("decile", "rows", "positive rate", "lift", "gain"))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def view_table(view: dict[str, Any]) -> str:
    rows = [
        (
            s["item"],
            s["class"],
            s.get("count"),
            s.get("bytes"),
            s.get("rounds", s.get("frames")),
            s.get("allowed_by"),
        )
        for s in view["saw"]
    ]
    return table(rows, ("item", "class", "count", "bytes", "rounds (or frames)", "allowed by"))


def write_report(path: Path, title: str, sections: Sequence[tuple[str, str]]) -> None:
    """``sections``: (heading, HTML fragment made by this module), written atomically."""
    from blindgate.pets.files import write_atomically

    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
        "font-size:90%;text-align:left}img{margin:.3em}"
    )
    parts = [
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{style}</style>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<h2>{html.escape(heading)}</h2>{fragment}" for heading, fragment in sections]
    write_atomically(path, "\n".join(parts).encode())
