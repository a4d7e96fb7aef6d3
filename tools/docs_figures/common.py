"""What every part of docs_figures shares: the paths, the palette, lab 01's costs, say()."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "_static" / "figures"
sys.path.insert(0, str(ROOT))

# Okabe-Ito: distinguishable with every common colour-vision deficiency
BLUE, ORANGE, GREEN, VERMILION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
SKY, PURPLE, GREY = "#56B4E9", "#CC79A7", "#777777"
MISS_COST, FALSE_ALARM_COST = 4, 1  # lab 01's costs: a missed late flight, a false alarm
NAIVE_PAGE = 0.6  # lab 01's naive alert: page when one day's AUC is under 0.6


def say(*parts) -> None:
    print(*parts, flush=True)
