"""Plots for the report, drawn with matplotlib's Agg backend into PNG files with fixed metadata (deterministic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from verify.model import Figure


def line_plot(
    path: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
    points: Sequence[tuple[str, float, float]] = (),
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.2), dpi=100)
    try:
        for label, xs, ys in series:
            ax.plot(xs, ys, label=label, linewidth=1.4)
        for label, x, y in points:
            ax.plot([x], [y], "o", label=label)
        if logy:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)


def ensure(figure: Figure, folder: Path) -> str:
    """Draw ``figure`` into ``folder`` unless a file for the same data is already there; return its file name.

    The name carries a digest of the data, so an unchanged plot is never redrawn and a changed one never goes stale.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{figure.name}-{figure.data_key}.png"
    target = folder / name
    if not target.exists():
        for stale in folder.glob(f"{figure.name}-*.png"):
            stale.unlink()
        tmp = folder / f".{name}.tmp"
        figure.draw(str(tmp))
        tmp.replace(target)
    return name
