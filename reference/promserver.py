"""promserver: a real Prometheus on 127.0.0.1 that scrapes the model server and runs the alert rules.

The laptop tier's Prometheus: Debian's ``prometheus`` package ships the server binary next to
``promtool``. This module writes its config, starts it on a free loopback port with a data folder
of its own, asks its HTTP API what the alerts are doing, and stops it.

::

    from reference import promserver
    rules = promserver.lab_rules(promserver.RULES, workspace / "prometheus" / "alerts.yml")
    with promserver.running(["127.0.0.1:8080"], [rules], workspace / "prometheus") as prom:
        alert = promserver.wait_for_alert(prom, "PredictionScoresCollapsed", timeout_s=60)
        promserver.query(prom, "model:score_spread:rate10m")

``lab_rules`` is for labs and tests only: the same expressions and thresholds as
monitoring/alerts.yml, with every ``for:`` divided by 60 (5 minutes become 5 seconds), so an
alert that must hold for 5 minutes in production fires within a lab's minute. Every wait has a
deadline; ``running`` stops the server even when the block raises.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parents[1] / "monitoring" / "alerts.yml"
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


class PrometheusMissing(RuntimeError):
    """The ``prometheus`` binary is not on PATH."""


def binary() -> str | None:
    """The path of the prometheus server binary, or None (`apt-get install prometheus`)."""
    return shutil.which("prometheus")


# --------------------------------------------------------------------------- pure: config, rules


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``5m``, ``1h30m`` or ``250ms``."""
    text = str(text).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Whole seconds as a Prometheus duration (at least 1s)."""
    return f"{max(1, round(seconds))}s"


def scale_for(groups: dict, factor: float) -> dict:
    """A copy of a rule file's ``groups`` with every alert's ``for:`` multiplied by ``factor``.

    Expressions, thresholds, labels and annotations are untouched: only how long a condition must
    hold before the alert fires changes. Recording rules have no ``for:``.
    """
    out = {"groups": []}
    for group in groups["groups"]:
        rules = []
        for rule in group["rules"]:
            rule = dict(rule)
            if "for" in rule:
                rule["for"] = format_duration(parse_duration(rule["for"]) * factor)
            rules.append(rule)
        out["groups"].append({**group, "rules": rules})
    return out


def lab_rules(
    source: str | Path = RULES, dest: str | Path = "alerts.lab.yml", factor: float = 1 / 60
) -> Path:
    """Write ``source`` with every ``for:`` scaled by ``factor`` (minutes -> seconds) to ``dest``."""
    groups = yaml.safe_load(Path(source).read_text())
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# A lab-only copy of {Path(source).name}: every `for:` multiplied by {factor:.4g}.\n"
        "# Same expressions and thresholds; do not deploy this file.\n"
    )
    dest.write_text(header + yaml.safe_dump(scale_for(groups, factor), sort_keys=False, width=100))
    return dest


def render_config(
    targets: Sequence[str],
    rule_files: Sequence[str | Path] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    job: str = "model-server",
) -> str:
    """prometheus.yml for one job scraping ``targets`` (host:port) and loading ``rule_files``."""
    parse_duration(scrape_interval), parse_duration(evaluation_interval)  # fail early on a typo
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,  # must not exceed the interval
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
    }
    return yaml.safe_dump(config, sort_keys=False)


# --------------------------------------------------------------------------- the server process


@dataclass
class Prometheus:
    """A running Prometheus: its process, URL, data folder and log."""

    proc: subprocess.Popen
    url: str
    data_dir: Path
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int | None, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, b""


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def start(
    config: str | Path, data_dir: str | Path, port: int = 0, wait_s: float = 30.0
) -> Prometheus:
    """Start Prometheus on 127.0.0.1 with ``config`` and storage in ``data_dir``; wait until ready."""
    exe = binary()
    if exe is None:
        raise PrometheusMissing(
            "the prometheus binary is not installed: `apt-get install prometheus` "
            "(Debian/Ubuntu) or the release tarball from https://prometheus.io/download/"
        )
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    log = data_dir / "prometheus.log"
    cmd = [
        exe,
        f"--config.file={Path(config).resolve()}",
        f"--storage.tsdb.path={(data_dir / 'tsdb').resolve()}",
        f"--web.listen-address=127.0.0.1:{port}",  # loopback only
        "--storage.tsdb.retention.time=1h",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    prom = Prometheus(proc, f"http://127.0.0.1:{port}", data_dir, log)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with code {proc.returncode}:\n{_tail(log)}")
        if _get(f"{prom.url}/-/ready", timeout=2)[0] == 200:
            return prom
        time.sleep(0.2)
    stop(prom)
    raise RuntimeError(f"prometheus was not ready after {wait_s:.0f} s:\n{_tail(log)}")


def stop(prom: Prometheus, grace_s: float = 10.0) -> int:
    """SIGTERM (Prometheus flushes its head block), then SIGKILL after the grace period."""
    if prom.proc.poll() is None:
        os.killpg(prom.proc.pid, signal.SIGTERM)
        try:
            prom.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(prom.proc.pid, signal.SIGKILL)
            prom.proc.wait()
    return prom.proc.returncode


@contextmanager
def running(
    targets: Sequence[str],
    rule_files: Sequence[str | Path],
    data_dir: str | Path,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    wait_s: float = 30.0,
) -> Iterator[Prometheus]:
    """Write the config into ``data_dir``, start Prometheus, yield it, and always stop it."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "prometheus.yml"
    config.write_text(render_config(targets, rule_files, scrape_interval, evaluation_interval))
    prom = start(config, data_dir, wait_s=wait_s)
    try:
        yield prom
    finally:
        stop(prom)


# --------------------------------------------------------------------------- the HTTP API


def api(prom: Prometheus, path: str, **params) -> dict | list:
    """GET ``/api/v1/<path>`` and return its ``data``; raises with Prometheus' error."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    status, body = _get(f"{prom.url}/api/v1/{path}{query}")
    if status is None:
        raise RuntimeError(f"prometheus at {prom.url} does not answer:\n{_tail(prom.log)}")
    reply = json.loads(body or b"{}")
    if status != 200 or reply.get("status") != "success":
        raise RuntimeError(
            f"prometheus /api/v1/{path}: HTTP {status}: {reply.get('error', body[:200])}"
        )
    return reply["data"]


def query(prom: Prometheus, promql: str) -> list[dict]:
    """An instant query: a list of {"metric": {...}, "value": [time, "value"]}."""
    return api(prom, "query", query=promql)["result"]


def alerts(prom: Prometheus) -> list[dict]:
    """Every active alert (pending or firing), as /api/v1/alerts returns them."""
    return api(prom, "alerts")["alerts"]


def targets_up(prom: Prometheus) -> list[str]:
    """The scrape URLs of the targets whose last scrape succeeded."""
    return [
        t["scrapeUrl"] for t in api(prom, "targets")["activeTargets"] if t.get("health") == "up"
    ]


def wait_for(
    prom: Prometheus,
    check,
    timeout_s: float = 60.0,
    every_s: float = 0.5,
    what: str = "a condition",
):
    """Call ``check(prom)`` until it returns something truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check(prom)
        if found:
            return found
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout_s:.0f} s")
        if not prom.alive():
            raise RuntimeError(f"prometheus exited while waiting for {what}:\n{_tail(prom.log)}")
        time.sleep(every_s)


def wait_for_alert(
    prom: Prometheus,
    name: str,
    states: Sequence[str] = ("firing",),
    timeout_s: float = 60.0,
    every_s: float = 0.5,
) -> dict:
    """The first active alert called ``name`` in one of ``states``; TimeoutError naming what was seen."""
    seen: dict[str, str] = {}

    def check(p):
        for a in alerts(p):
            seen[a["labels"]["alertname"]] = a["state"]
            if a["labels"]["alertname"] == name and a["state"] in states:
                return a
        return None

    try:
        return wait_for(prom, check, timeout_s, every_s, f"alert {name} ({'/'.join(states)})")
    except TimeoutError as e:
        raise TimeoutError(f"{e}; active alerts seen: {seen or 'none'}") from None
