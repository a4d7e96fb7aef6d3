"""A workspace built once and copied: every absolute path it recorded points at the copy."""

from __future__ import annotations

import sqlite3

from reference.labkit.checkpoint import relocate


def test_relocate_rewrites_recorded_paths_and_nothing_else(tmp_path):
    src, dst = tmp_path / "built", tmp_path / "lab05"
    (src / "mlflow" / "artifacts" / "m1").mkdir(parents=True)
    (src / "project" / ".git" / "objects").mkdir(parents=True)
    (src / "mlflow" / "artifacts" / "m1" / "MLmodel").write_text(
        f"artifact_path: {src}/mlflow/artifacts/m1\n"
    )
    (src / "project" / ".git" / "objects" / "ab").write_text(f"{src}")  # content-addressed: kept
    db = src / "mlflow" / "mlflow.db"
    con = sqlite3.connect(db)
    con.execute("create table experiments (id integer, artifact_location varchar(256))")
    con.execute("insert into experiments values (1, ?)", (f"file://{src}/mlflow/artifacts",))
    con.commit()
    con.close()
    dst.mkdir()
    relocate(src, dst)
    assert (
        dst / "mlflow" / "artifacts" / "m1" / "MLmodel"
    ).read_text() == f"artifact_path: {dst}/mlflow/artifacts/m1\n"
    assert (dst / "project" / ".git" / "objects" / "ab").read_text() == str(src)
    con = sqlite3.connect(dst / "mlflow" / "mlflow.db")
    assert (
        con.execute("select artifact_location from experiments").fetchone()[0]
        == f"file://{dst}/mlflow/artifacts"
    )
    con.close()
    # the original is untouched
    assert str(src) in (src / "mlflow" / "artifacts" / "m1" / "MLmodel").read_text()
