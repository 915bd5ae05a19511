"""Reporting conventions in one place: region labels and colours, Markdown tables, figure saving.

Figures are rendered with the Agg canvas when saved, so importing the package never switches the
user's matplotlib backend (notebooks keep theirs) and saving works headless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from migration_abm.storage import atomic_path

REGION_LABELS = {"core": "Core (Yuzhong)", "expansion": "Urban expansion", "new_development": "New development",
                 "northeast_eco": "North-east eco", "southeast_eco": "South-east eco"}
REGION_COLORS = {"core": "#7b3294", "expansion": "#c2a5cf", "new_development": "#e66101",
                 "northeast_eco": "#008837", "southeast_eco": "#a6dba0"}


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Render a matplotlib figure to PNG with the Agg canvas, write it atomically, close it."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches an Agg canvas whatever the active backend
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def markdown_table(df: pd.DataFrame, index: bool = True) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (index as the first column when ``index``)."""
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = ([str(idx)] if index else []) + [str(v) for v in row.tolist()]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
