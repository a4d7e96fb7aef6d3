"""The Level 2 controller: watch live traffic, retrain on a trigger, roll out, promote or roll back.

Each simulated day the day's flights go through the router, then the controller ticks::

    idle      every ``retrain.check_every_days``: drift of the recent traffic against the
              champion's training data, live AUC from the labels that have landed, and the
              schedule -> policy.retrain_decision. On a trigger: a new data version in DVC (the
              months landed so far) and a pipeline run; the gate; a candidate server; shadow.
    shadow    the candidate scores a copy of traffic -> policy.shadow_verdict: canary or roll back
    canary    the candidate answers ``rollout.canary_percent`` of requests ->
              policy.canary_verdict: promote (move the alias), roll back, or wait for labels

The router and the model servers are separate processes: the champion keeps serving while the
controller retrains, and a controller that dies mid-rollout is started again and resumes from
``state.json`` (it never promotes a version twice). Every decision is an event with its reasons,
and a tag on the model version in MLflow.

::

    mlops-lab loop --scenario natural          # drift -> retrain -> gate -> shadow -> canary -> promote
    mlops-lab loop --scenario bad-challenger   # ... -> canary -> automated rollback
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from reference.config import Settings
from reference.loop import policy
from reference.loop.state import CANARY, IDLE, PROMOTING, ROLLING_BACK, SHADOW, EventLog, LoopState
from reference.loop.traffic import (
    Ledger,
    Traffic,
    day_of,
    landed_month,
    month_end,
    scenario,
    send_day,
)

FIRST_DAY = "2013-08-01"


def loop_overrides(params) -> list[str]:
    """What every loop pipeline run sets besides the split: the rollout promotes, not the gate;
    and the gate's floors for a one-month holdout (params.yaml, section retrain)."""
    r = params.retrain
    return [
        "gate.auto_promote=false",
        f"gate.min_auc_margin_over_baseline={r.gate_min_auc_margin_over_baseline}",
        f"gate.max_calibration_error={r.gate_max_calibration_error}",
    ]


def loop_settings(settings: Settings, name: str = "level2") -> Settings:
    """Level 2 runs in a workspace of its own (``<workspace>/level2``), like the demo."""
    ws = settings.workspace / name
    tracking = settings.tracking_uri
    if tracking.startswith("sqlite:///") and str(settings.workspace) in tracking:
        tracking = f"sqlite:///{ws / 'mlflow' / 'mlflow.db'}"
    return replace(settings, workspace=ws, tracking_uri=tracking)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (our own child that exited) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _kill(pid: int | None, grace_s: float = 10.0) -> None:
    """SIGCONT (a hung server may be stopped), SIGTERM to drain, SIGKILL after the grace period."""
    if not _alive(pid):
        return
    for sig in (signal.SIGCONT, signal.SIGTERM):
        with contextlib.suppress(OSError):
            os.killpg(pid, sig)
    deadline = time.monotonic() + grace_s
    while _alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


class Controller:
    """The Level 2 loop over one workspace: ``run`` replays days, ``tick`` decides after each."""

    def __init__(self, settings: Settings, scenario_name: str = "natural", log=print):
        import httpx

        from reference.logs import quiet_libraries

        # a lab, a script or a bench drives the controller without the CLI: MLflow's INFO lines
        # ("Creating initial MLflow database tables...") go to the workspace's log, not the screen
        quiet_libraries(settings.workspace)
        self.settings = settings
        self.dir = settings.workspace / "loop"
        self.state_path = self.dir / "state.json"
        self.state = LoopState.load(self.state_path)
        self.events = EventLog(self.dir / "events.jsonl")
        self.ledger = Ledger(self.dir / "ledger.jsonl")
        self.days_log = self.dir / "days.jsonl"
        self.pipeline_log = self.dir / "pipeline.log"
        self.log = log
        self.plan = scenario(scenario_name)
        self.state.scenario = scenario_name
        self.http = httpx.Client(timeout=30)
        self._traffic: Traffic | None = None
        self._params = None
        self._router_lines: dict[str, dict] = {}
        self._router_offset = 0
        self._reference: tuple[str, object] | None = None  # (version, DriftReference)

    # -------------------------------------------------------------------------------- helpers
    @property
    def params(self):
        if self._params is None:
            from reference.config import load_params

            self._params = load_params(self.settings.project / "params.yaml")
        return self._params

    @property
    def traffic(self) -> Traffic:
        if self._traffic is None:
            self._traffic = Traffic.load(self.plan)
        return self._traffic

    def save(self) -> None:
        self.state.save(self.state_path)

    def event(self, day, kind: str, reasons=(), version=None, **metrics) -> None:
        self.events.append(str(day) if day else None, kind, reasons, version, **metrics)
        who = f" v{version}" if version else ""
        when = f"[{day}] " if day else ""
        self.log(f"{when}{kind}{who}: {'; '.join(reasons)}" if reasons else f"{when}{kind}{who}")

    def _tag(self, version: str, tags: dict[str, str]) -> None:
        from reference import registry

        c = registry.client(self.settings)
        for key, value in tags.items():
            c.set_model_version_tag(self.settings.model_name, version, key, str(value)[:5000])

    # ------------------------------------------------------------------------------ processes
    def _start_server(self, version: str, fault: str = "none") -> dict:
        from reference.serve import client

        server = client.start(
            self.settings,
            name=self.settings.model_name,
            args=["--model-uri", f"models:/{self.settings.model_name}/{version}", "--fault", fault],
            log=self.dir / f"server-v{version}.log",
        )
        return {"version": version, "url": server.url, "pid": server.proc.pid, "fault": fault}

    def _start_router(self) -> dict:
        from reference.loop.router import spawn

        champion = self.state.champion
        proc, url = spawn(
            champion["url"], champion["version"], self.dir, self.params.rollout.timeout_s
        )
        return {"url": url, "pid": proc.pid}

    def _route(self, **config) -> None:
        resp = self.http.put(f"{self.state.router['url']}/router/config", json=config)
        if resp.status_code != 200:
            raise RuntimeError(f"the router refused {config}: {resp.text}")

    def _ready(self, server: dict | None) -> bool:
        from reference.serve.client import get_status

        return (
            server is not None
            and _alive(server.get("pid"))
            and get_status(f"{server['url']}/v2/health/ready") == 200
        )

    def ensure_running(self) -> None:
        """Start what is not running (first run), or re-attach to what is (a resumed controller)."""
        from reference import registry

        champion_mv = registry.version_by_alias(self.settings, registry.CHAMPION)
        if champion_mv is None:
            raise RuntimeError("no champion: bootstrap() first")
        version = str(champion_mv.version)
        st = self.state
        if st.champion is None or st.champion["version"] != version or not self._ready(st.champion):
            if st.champion and _alive(st.champion.get("pid")):
                _kill(st.champion["pid"])
            info = self._run_info(version)
            st.champion = self._start_server(version) | info
            self.log(f"champion v{version} serving at {st.champion['url']}")
        if st.router is None or not _alive(st.router.get("pid")):
            st.router = self._start_router()
            self.log(f"router at {st.router['url']} (mode off: the champion answers)")
        self._route(champion={"url": st.champion["url"], "version": st.champion["version"]})
        if st.phase in (SHADOW, CANARY) and st.candidate and self._ready(st.candidate):
            self._route_phase()
            # a dead candidate is found by the next tick and rolled back
        self.save()

    def _route_phase(self) -> None:
        cand = {"url": self.state.candidate["url"], "version": self.state.candidate["version"]}
        if self.state.phase == SHADOW:
            self._route(candidate=cand, mode="shadow", percent=0)
        else:
            r = self.params.rollout
            self._route(
                candidate=cand, mode="canary", percent=r.canary_percent, mirror=r.canary_mirror
            )

    def shutdown(self) -> None:
        """Stop the router and the servers (the state stays: a later run starts them again)."""
        for part in (self.state.router, self.state.candidate, self.state.champion):
            if part:
                _kill(part.get("pid"))
                part["pid"] = None
        self.save()

    def _run_info(self, version: str) -> dict:
        """What the registry knows of a version: its holdout AUC and the months it saw."""
        from reference import registry

        run = registry.version_run(self.settings, version)
        holdout = json.loads(run.data.tags.get("split.holdout", "[]"))
        train = json.loads(run.data.tags.get("split.train", "[1]"))
        return {
            "auc": run.data.metrics.get("holdout.auc"),
            "landed": max(holdout) if holdout else 0,
            "train_months": train,
        }

    # ------------------------------------------------------------------------------ bootstrap
    def bootstrap(self, first_day: str = FIRST_DAY) -> None:
        """A champion trained on what had landed before ``first_day`` (Level 1, auto-promoted)."""
        from reference import registry
        from reference.pipeline import run_pipeline

        if registry.version_by_alias(self.settings, registry.CHAMPION) is not None:
            return
        landed = day_of(first_day).month - 1
        split = policy.training_split(landed)
        self.log(f"bootstrap: a Level 1 champion from the months landed before {first_day}")
        self.log(f"    pipeline output: {self.pipeline_log}")
        overrides = [f"{k}={v}" for k, v in split.items()] + [
            *loop_overrides(self.params),
            "gate.auto_promote=true",
        ]
        if not self._bootstrap_from_cache(first_day, overrides):
            result = run_pipeline(self.settings, log=self.pipeline_log, overrides=overrides)
            if not result.ok or registry.version_by_alias(self.settings, registry.CHAMPION) is None:
                raise RuntimeError(f"the bootstrap pipeline did not produce a champion ({result})")
        version = str(registry.version_by_alias(self.settings, registry.CHAMPION).version)
        train_end = split["split.train_end"]
        self.event(
            None,
            "bootstrap",
            [
                f"months 1-{landed} had landed: trained on 1-{train_end}, early stopping on "
                f"{train_end + 1}, gated on {landed}; the champion"
            ],
            version,
        )

    # ---------------------------------------------------------------------------------- run
    def _bootstrap_from_cache(self, first_day: str, overrides: list[str]) -> bool:
        """Under the test suite (MLOPS_LAB_CHECKPOINT_CACHE set): each distinct bootstrap is built
        once per session, by the same pipeline run, and copied here. False: build it here."""
        import hashlib

        from reference import registry
        from reference.labkit.checkpoint import CACHE_ENV, relocate
        from reference.pipeline import run_pipeline

        cache = os.environ.get(CACHE_ENV)
        ws = self.settings.workspace
        if not cache or self.settings.tracking_uri != f"sqlite:///{ws / 'mlflow' / 'mlflow.db'}":
            return False
        # the day itself does not matter, only what had landed by then (the split is among the
        # overrides): the stories that start in the same month share one build
        key = hashlib.sha1(json.dumps([overrides, self.settings.model_name]).encode()).hexdigest()[
            :12
        ]
        folder = Path(cache) / f"loop-bootstrap-{key}"
        built, log = folder / "workspace", folder / "pipeline.log"
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            there = replace(
                self.settings,
                workspace=built,
                tracking_uri=f"sqlite:///{built / 'mlflow' / 'mlflow.db'}",
            )
            result = run_pipeline(there, log=log, overrides=overrides)
            if not result.ok or registry.version_by_alias(there, registry.CHAMPION) is None:
                raise RuntimeError(f"the bootstrap pipeline did not produce a champion ({result})")
            (folder / "done").write_text(f"built for {first_day}\n")
        relocate(built, ws)
        self.pipeline_log.parent.mkdir(parents=True, exist_ok=True)
        self.pipeline_log.write_text(
            f"(the test session's bootstrap, built once and copied from {built})\n"
            + log.read_text()
        )
        return True

    def run(
        self,
        first_day: str = FIRST_DAY,
        days: int | None = None,
        until_decision: bool = True,
        last_day: str = "2013-12-31",
        keep_serving: bool = False,
        stop_at_phase: str | None = None,
    ) -> LoopState:
        """Replay day after day from where the state left off; stop after a promotion or a
        rollback (``until_decision``), after ``days`` days, on reaching ``stop_at_phase``, or at
        ``last_day``. ``keep_serving`` leaves the router and servers up for a later run."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap(first_day)
        if self.state.last_check_day is None:  # the first check after a full window of traffic
            self.state.last_check_day = (day_of(first_day) - dt.timedelta(1)).isoformat()
        if self.state.day is not None:
            self.event(self.state.day, "resume", [f"phase {self.state.phase}"])
        self.ensure_running()
        if self.state.phase == PROMOTING:
            self._promote(self.state.day, ("resumed mid-promotion",))
        elif self.state.phase == ROLLING_BACK:
            self._rollback(self.state.day, ("resumed mid-rollback",))
        decisions = len(self.state.decided)
        day = day_of(self.state.day) + dt.timedelta(1) if self.state.day else day_of(first_day)
        done = 0
        try:
            while day <= day_of(last_day) and (days is None or done < days):
                codes = send_day(
                    self.http, self.state.router["url"], self.settings.model_name,
                    self.traffic.frame(day), day, self.ledger,
                )  # fmt: skip
                self.state.day = day.isoformat()
                self.tick(day, codes)
                self.save()
                done += 1
                day += dt.timedelta(1)
                if until_decision and len(self.state.decided) > decisions:
                    break
                if stop_at_phase and self.state.phase == stop_at_phase:
                    break
        finally:
            if not keep_serving:
                self.shutdown()
        return self.state

    # --------------------------------------------------------------------------------- tick
    def tick(self, day: dt.date, codes: dict[int, int] | None = None) -> None:
        st = self.state
        record = {"day": day.isoformat(), "phase": st.phase, "codes": codes or {}}
        record["champion"] = st.champion["version"] if st.champion else None
        record["candidate"] = st.candidate["version"] if st.candidate else None
        if st.phase in (SHADOW, CANARY):
            self._incident(day)
            self._judge(day)
        elif st.phase == IDLE:
            self._maybe_retrain(day)
        record["percent"] = self.params.rollout.canary_percent if st.phase == CANARY else 0
        with self.days_log.open("a") as f:
            f.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------------------ retrain
    def _maybe_retrain(self, day: dt.date) -> None:
        p = self.params.retrain
        st = self.state
        landed = landed_month(day, p.label_delay_days)
        champion_landed = st.champion.get("landed", 0)
        since = (day - day_of(st.last_retrain_day)).days if st.last_retrain_day else None
        due = (
            st.last_check_day is None
            or (day - day_of(st.last_check_day)).days >= p.check_every_days
        )
        if due:
            health = self._check(day)
            st.last_check_day = day.isoformat()
        elif st.pending:
            health = policy.Health(**{**st.pending, "drifted": tuple(st.pending["drifted"])})
        else:
            return
        health = replace(
            health,
            days_since_retrain=since,
            champion_data_age_days=(day - month_end(champion_landed)).days
            if champion_landed
            else 999,
            # a month neither the champion nor the last retrain (rejected or rolled back) saw
            new_month_landed=landed > max(champion_landed, st.last_retrain_landed or 0),
        )
        verdict = policy.retrain_decision(health, p)
        triggered = verdict.action == policy.RETRAIN or len(verdict.reasons) > 1
        if due:
            self.event(
                day,
                "check",
                verdict.reasons,
                st.champion["version"],
                drift_threshold=p.drift_share,
                **verdict.metrics,
            )
        st.pending = asdict(health) if triggered and verdict.action != policy.RETRAIN else None
        if verdict.action == policy.RETRAIN:
            self._retrain(day, landed, verdict.reasons)

    def _window(self, day: dt.date, days: int):
        """The flights of the last ``days`` days, as upstream sent them."""
        import pandas as pd

        frames = [self.traffic.frame(day - dt.timedelta(i)) for i in range(days)]
        return pd.concat(frames, ignore_index=True)

    def _check(self, day: dt.date) -> policy.Health:
        from reference import monitor
        from reference.drift_reference import span

        p = self.params.retrain
        st = self.state
        current = self._window(day, p.window_days)
        reference = self._drift_reference(day)
        drift_share, drifted = None, ()
        try:
            result = monitor.drift_report(
                reference.sample, current, thresholds=reference.thresholds
            )
            drift_share, drifted = result.drift_share, tuple(result.drifted_features)
        except (KeyError, ValueError) as e:  # a renamed column: the window cannot be compared
            self.event(day, "incident", [f"the drift check could not run: {e}"])
        evidence = self._evidence(since_day=day - dt.timedelta(p.window_days - 1), as_of=day)
        y, scores = evidence["labels"], evidence["champion_scores"]
        known = ~np.isnan(y)
        live_auc = None
        if known.sum() >= 2 and len(np.unique(y[known])) == 2:
            from reference.metrics import roc_auc

            live_auc = roc_auc(y[known], scores[known])
        rejected = evidence["champion_rejected"]
        if evidence["requests"] and rejected / evidence["requests"] > 0.01:
            self.event(
                day,
                "incident",
                [
                    f"{rejected}/{evidence['requests']} requests rejected by the champion (4xx): the "
                    "input contract is broken upstream; retraining cannot fix this, the sender must"
                ],
            )
        return policy.Health(
            drift_share=drift_share,
            drifted=drifted,
            live_auc=live_auc,
            labelled=int(known.sum()),
            champion_auc=st.champion.get("auc"),
            reference=f"v{st.champion['version']}'s months {span(reference.months)}",
        )

    def _drift_reference(self, day: dt.date):
        """The champion's drift reference: its last training months, with thresholds set by their
        own weeks (reference/drift_reference.py). Calibrated once per champion and recorded on
        its version, so a promotion resets the check and a resumed loop reads it back."""
        from reference import drift_reference, ingest, registry

        st, p = self.state, self.params.retrain
        version = st.champion["version"]
        if self._reference is not None and self._reference[0] == version:
            return self._reference[1]
        months = drift_reference.recent_months(
            st.champion["train_months"], p.drift_reference_months
        )
        frame = ingest.read_months(list(months), self.settings.project / ingest.BATCH_DIR)
        mv = registry.client(self.settings).get_model_version(self.settings.model_name, version)
        ref = drift_reference.DriftReference.from_tags(mv.tags)
        if ref is not None and ref.same_recipe(months, p.window_days, p.drift_margin):
            ref = drift_reference.with_sample(ref, frame)
        else:
            ref = drift_reference.calibrate(frame, months, p.window_days, margin=p.drift_margin)
            self._tag(version, ref.to_tags())
            self.event(day, "drift-reference", [ref.describe()], version, months=list(months))
        self._reference = (version, ref)
        return ref

    def _retrain(self, day: dt.date, landed: int, reasons) -> None:
        from reference.pipeline import failing_checks, run_pipeline

        st = self.state
        split = policy.training_split(landed)
        overrides = [f"{k}={v}" for k, v in split.items()] + loop_overrides(self.params)
        fault_month = day_of(self.plan.fault_from).month if self.plan.fault_from else None
        if self.plan.data_fault and fault_month and fault_month <= landed:
            overrides += [
                f"ingest.inject_fault={self.plan.traffic_fault}",
                f"ingest.fault_month={fault_month}",
            ]
        else:
            overrides += ["ingest.inject_fault=none"]
        self.event(day, "retrain", [*reasons, f"new data version: months 1-{landed} landed"])
        st.last_retrain_day, st.last_retrain_landed, st.pending = day.isoformat(), landed, None
        self.save()
        self.log(
            f"    pipeline: train 1-{split['split.train_end']}, gate on {landed} (output: {self.pipeline_log})"
        )
        result = run_pipeline(self.settings, overrides, log=self.pipeline_log)
        if not result.ok:
            checks = failing_checks(self.settings.project)
            self.event(
                day,
                "retrain-stopped",
                [
                    f"pipeline stopped at {result.failed_stage}",
                    *checks[:3],
                    "nothing registered; the champion keeps serving",
                ],
            )
            return
        gate = result.gate
        if gate is None:
            self.event(
                day, "retrain-stopped", ["nothing changed since the last run: no new candidate"]
            )
            return
        version = str(gate["candidate_version"])
        self._tag(version, {"loop.trigger": "; ".join(reasons), "loop.data_commit": result.commit})
        rules = {r["name"]: r for r in gate["rules"]}
        if not gate["promote"]:
            failed = [
                f"{name} {r['value']} (needs {r['op']} {r['threshold']}; {r['detail']})"
                for name, r in rules.items()
                if r["verdict"] == "fail"
            ]
            self.event(day, "gate-reject", failed, version)
            self._tag(version, {"loop.decision": "gate-rejected"})
            return
        self.event(
            day,
            "gate-pass",
            [
                f"holdout 2013-{landed:02d}: {rules['auc_vs_champion']['detail']}",
                rules["auc_over_baseline"]["detail"],
            ],
            version,
        )
        fault = self.plan.candidate_fault
        st.candidate = self._start_server(version, fault) | self._run_info(version)
        st.phase, st.phase_since_day, st.phase_since_time = SHADOW, day.isoformat(), time.time()
        self._route_phase()
        self.save()
        self.event(
            day,
            "shadow",
            [
                f"the candidate scores a copy of every request{' (served with fault ' + fault + ')' if fault != 'none' else ''}"
            ],
            version,
        )

    # ------------------------------------------------------------------------------ rollout
    def _incident(self, day: dt.date) -> None:
        """The crash and hang scenarios: one day into the canary, the candidate's server fails."""
        st = self.state
        kind = self.plan.candidate_incident
        if not kind or st.phase != CANARY or not st.candidate or st.candidate.get("incident"):
            return
        if (day - day_of(st.phase_since_day)).days < 1:
            return
        pid = st.candidate["pid"]
        os.killpg(pid, signal.SIGKILL if kind == "crash" else signal.SIGSTOP)
        st.candidate["incident"] = kind
        self.event(
            day,
            "incident",
            [
                f"scenario: the candidate's server was {'killed' if kind == 'crash' else 'frozen (SIGSTOP)'}"
            ],
            st.candidate["version"],
        )

    def _router_log(self) -> dict[str, dict]:
        """The router's log by request id (a replayed id keeps its latest answer). Read
        incrementally: each tick parses only what the router appended since the last one."""
        log = self.dir / "router.jsonl"
        if log.exists():
            with log.open("rb") as f:
                f.seek(self._router_offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
            self._router_offset += len(complete)
            for raw in complete.splitlines():
                if raw.strip():
                    rec = json.loads(raw)
                    self._router_lines[rec["request_id"]] = rec
        return self._router_lines

    def _evidence(
        self,
        since_day: dt.date | None = None,
        since_time: float | None = None,
        as_of: dt.date | None = None,
        mode: str | None = None,
    ) -> dict:
        """Join the router's log with the ledger and the labels known on ``as_of``."""
        lines = self._router_log()
        champ, cand, rows, flown, lat_k, lat_c = [], [], [], [], [], []
        requests = errors = rejected = 0
        for rid, rec in lines.items():
            entry = self.ledger.rows.get(rid)
            if entry is None:
                continue
            if since_day and day_of(entry[0]) < since_day:
                continue
            if since_time and rec["time"] < since_time:
                continue
            if mode and (rec["mode"] != mode or rec.get("candidate") is None):
                continue  # evidence of a rollout: requests both models were asked
            k = rec["champion"] or {}
            if k.get("code") and 400 <= k["code"] < 500:
                rejected += 1  # the sender's mistake, not evidence about either model
                if mode:
                    continue
            requests += 1
            if mode:
                c = rec.get("candidate") or {}
                if c.get("code") != 200 and not (c.get("code") and 400 <= c["code"] < 500):
                    errors += 1
                lat_c.append(c.get("ms") or self.params.rollout.timeout_s * 1000)
                lat_k.append(k.get("ms") or 0.0)
                if k.get("scores") and c.get("scores") and len(k["scores"]) == len(entry[1]):
                    champ += k["scores"]
                    cand += c["scores"]
                    rows += entry[1]
                    flown += [entry[0]] * len(entry[1])
            elif k.get("scores") and len(k["scores"]) == len(entry[1]):
                champ += k["scores"]
                rows += entry[1]
                flown += [entry[0]] * len(entry[1])
        labels = (
            self.traffic.labels(
                np.array(rows, dtype=int), as_of, self.params.retrain.label_delay_days
            )
            if as_of
            else np.full(len(rows), np.nan)
        )
        known = ~np.isnan(labels)
        return {
            "labelled_days": len({d for d, k in zip(flown, known, strict=True) if k}),
            "requests": requests,
            "candidate_errors": errors,
            "champion_rejected": rejected,
            "champion_scores": np.array(champ, dtype=float),
            "candidate_scores": np.array(cand, dtype=float),
            "labels": labels,
            "champion_p95": float(np.percentile(lat_k, 95)) if lat_k else 0.0,
            "candidate_p95": float(np.percentile(lat_c, 95)) if lat_c else 0.0,
        }

    def _judge(self, day: dt.date) -> None:
        st = self.state
        p = self.params.rollout
        version = st.candidate["version"]
        if not self._ready(st.candidate):
            pid = st.candidate.get("pid")
            deadline = time.monotonic() + 3.0
            while _alive(pid) and time.monotonic() < deadline:
                # a server killed a moment ago may still be exiting (longer on a busy machine):
                # let it finish, so the reason says what happened, not what it looked like
                _reap(pid)
                time.sleep(0.05)
            alive = _alive(pid)
            why = "is not answering its readiness probe" if alive else "has exited"
            self._rollback(day, (f"the candidate's server {why}",))
            return
        e = self._evidence(since_time=st.phase_since_time, as_of=day, mode=st.phase)
        paired = policy.Paired(
            requests=e["requests"],
            candidate_errors=e["candidate_errors"],
            champion_latency_p95_ms=e["champion_p95"],
            candidate_latency_p95_ms=e["candidate_p95"],
            champion_scores=e["champion_scores"],
            candidate_scores=e["candidate_scores"],
            labels=e["labels"],
            labelled_days=e["labelled_days"] if st.phase == CANARY else None,
        )
        if st.phase == SHADOW:
            verdict = policy.shadow_verdict(paired, p, (day - day_of(st.phase_since_day)).days)
            if verdict.action == policy.PASS:
                self.event(
                    day,
                    "canary",
                    [
                        *verdict.reasons,
                        f"the candidate now answers {p.canary_percent:g}% of requests",
                    ],
                    version,
                    **verdict.metrics,
                )
                st.phase, st.phase_since_day, st.phase_since_time = (
                    CANARY,
                    day.isoformat(),
                    time.time(),
                )
                self._route_phase()
                self.save()
            elif verdict.action == policy.ROLLBACK:
                self._rollback(day, verdict.reasons, verdict.metrics)
            return
        days = (day - day_of(st.phase_since_day)).days
        verdict = policy.canary_verdict(paired, p, days)
        if verdict.action == policy.PROMOTE:
            self._promote(day, verdict.reasons, verdict.metrics)
        elif verdict.action == policy.ROLLBACK:
            self._rollback(day, verdict.reasons, verdict.metrics)
        else:
            self.event(day, "canary-wait", verdict.reasons, version, **verdict.metrics)

    def _already(self, kind: str, version: str) -> bool:
        return any(e["kind"] == kind and e["version"] == version for e in self.events.read())

    def _promote(self, day, reasons, metrics=None) -> None:
        """Move the alias, point the router at the new champion, retire the old one. Idempotent:
        a controller restarted at any point of this finishes it without a second promotion."""
        from reference import registry

        st = self.state
        cand, old = st.candidate, st.champion
        version = cand["version"]
        st.phase = PROMOTING
        self.save()
        c = registry.client(self.settings)
        current = registry.version_by_alias(self.settings, registry.CHAMPION)
        if current is None or str(current.version) != version:
            c.set_registered_model_alias(self.settings.model_name, registry.CHAMPION, version)
            self._tag(version, {"previous_champion": old["version"]})
        self._tag(version, {"loop.decision": "promoted", "loop.reasons": "; ".join(reasons)})
        if self._ready(cand):
            self._route(
                champion={"url": cand["url"], "version": version},
                candidate=None,
                mode="off",
                percent=0,
            )
        if not self._already("promote", version):
            self.event(
                day,
                "promote",
                [*reasons, f"champion v{old['version']} -> v{version}"],
                version,
                **(metrics or {}),
            )
        st.decided[version] = "promoted"
        st.champion, st.candidate = {k: v for k, v in cand.items() if k != "fault"}, None
        st.phase, st.phase_since_day, st.phase_since_time = IDLE, None, None
        self.save()
        time.sleep(0.2)  # requests already on their way to the old champion finish there
        _kill(old.get("pid"))
        if not self._ready(st.champion):  # resumed after the new champion's server went away
            self.ensure_running()

    def _rollback(self, day, reasons, metrics=None) -> None:
        """Traffic back to the champion at once, the candidate stopped, the alias untouched."""
        st = self.state
        cand = st.candidate
        version = cand["version"] if cand else None
        st.phase = ROLLING_BACK
        self.save()
        self._route(candidate=None, mode="off", percent=0)
        if cand:
            _kill(cand.get("pid"))
            self._tag(version, {"loop.decision": "rolled_back", "loop.reasons": "; ".join(reasons)})
        if version and not self._already("rollback", version):
            self.event(
                day,
                "rollback",
                [*reasons, f"champion v{st.champion['version']} keeps serving"],
                version,
                **(metrics or {}),
            )
        if version:
            st.decided[version] = "rolled_back"
        st.candidate, st.phase, st.phase_since_day, st.phase_since_time = None, IDLE, None, None
        self.save()
