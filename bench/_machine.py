"""Shared by the benchmarks: what they ran on (one line), and writing their section of the docs."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def machine() -> str:
    cpu = "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1).strip() if m else cpu
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def write_section(path: Path, start: str, end: str, text: str, intro: str = "") -> None:
    """Replace the text between a benchmark's markers in ``path`` (append it, after ``intro``,
    when the markers are not there yet), so the page always holds the last measured numbers."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"{start}\n{text}\n{end}"
    if start in doc:  # a function, not a string: backslashes in the numbers' text stay as they are
        doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: section, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + intro + section + "\n"
    path.write_text(doc)
