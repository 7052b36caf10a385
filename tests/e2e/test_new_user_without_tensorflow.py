"""Issue 15's "Done means": a new user with their own scikit-learn model and no TensorFlow follows
the README's "Watch your own model" and sees drift for their model at ``GET /models/{name}/drift``.

Nothing of this repository's environment is used. A fresh virtualenv gets a copy of the
repository installed as the README says (``pip install -e .``: no ``train`` extra, so no
TensorFlow; ``import tensorflow`` is checked to fail there) and the user's own stack
(scikit-learn, pandas). The commands are read from the README section itself (its ``bash`` and
``python`` blocks), so the section cannot drift from what works: ``driftwatch up --ingest-only``,
``driftwatch register`` of the CSV the user wrote as the README describes, the user's script running
the README's two ``Client`` lines, and the ``curl`` URL. Only the ports are this machine's
(``--model-port``/``--monitor-port``, the URLs rewritten to match).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftwatch.local_processes import free_port, wait_for_http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Watch your own model"
# Left out of the copy a new user installs: environments, caches, local state, build output.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache",
                                    ".ruff_cache", ".hypothesis", "*.egg-info", "build", "dist", "var", "models",
                                    "test-artifacts", "*.spill")


@dataclass
class Readme:
    """The section's steps: shell commands (argument lists) and the Python lines that log."""

    install: list[str]
    up: list[str]
    register: list[str]
    python: str
    curl_url: str


def _readme_steps() -> Readme:
    text = (ROOT / "README.md").read_text()
    assert SECTION in text, f"README has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    commands = [shlex.split(line, comments=True)
                for lang, body in blocks if lang == "bash"
                for line in body.replace("\\\n", " ").splitlines()]
    commands = [c for c in commands if c]

    def one(prefix: list[str]) -> list[str]:
        found = [c for c in commands if c[: len(prefix)] == prefix]
        assert len(found) == 1, f"README {SECTION!r}: expected one `{' '.join(prefix)} ...`, found {found}"
        return found[0]

    python = [body for lang, body in blocks if lang == "python"]
    assert len(python) == 1, f"README {SECTION!r}: expected one python block, found {len(python)}"
    curl = one(["curl"])
    return Readme(install=one(["pip", "install"]), up=one(["driftwatch", "up"]),
                  register=one(["driftwatch", "register"]), python=python[0],
                  curl_url=next(a for a in curl if "/models/" in a))


@dataclass
class NewUser:
    """A machine with this repository copied and installed in a fresh virtualenv, and a project folder."""

    venv: Path
    repo: Path
    project: Path
    env: dict[str, str]

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, args: list[str], cwd: Path, timeout_s: float = 600) -> str:
        done = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout_s)
        assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout


@pytest.fixture(scope="module")
def new_user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NewUser]:
    home = tmp_path_factory.mktemp("new-user")
    repo, project, venv = home / "driftwatch", home / "my-project", home / "venv"
    shutil.copytree(ROOT, repo, ignore=NOT_COPIED)
    project.mkdir()
    # Nothing from this test run leaks in: no virtualenv, no PYTHONPATH, no Driftwatch or Redis settings.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DRIFTWATCH_", "OTEL_", "PYTHON", "VIRTUAL_ENV", "REDIS_URL"))}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    user = NewUser(venv, repo, project, env)
    started = time.monotonic()
    install = _readme_steps().install
    user.run([user.bin("pip"), *install[1:]], cwd=repo)  # the README's `pip install -e .`, in the repository
    user.run([user.bin("pip"), "install", "scikit-learn", "pandas"], cwd=project)  # the user's own stack
    print(f"\nfresh virtualenv installed in {time.monotonic() - started:.0f} s")
    yield user


USER_MODEL = """
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

def data(n, seed, income_shift=0.0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"age": rng.normal(40, 10, n).round(1), "income": rng.normal(50, 15, n).round(2) + income_shift,
                      "tenure": rng.exponential(3, n).round(2), "visits": rng.poisson(4, n)})
    y = np.where(X["tenure"] + rng.normal(0, 1, n) > 3, "stay", "leave")
    return X, y

X_train, y_train = data(3000, seed=0)
model = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0).fit(X_train, y_train)
"""

# As the README says: held-out rows with the model's prediction, predict_proba's columns and the label.
WRITE_REFERENCE = USER_MODEL + """
X_test, y_test = data(2000, seed=1)
reference = X_test.assign(prediction=model.predict(X_test), label=y_test)
reference[["p_leave", "p_stay"]] = model.predict_proba(X_test)
reference.to_csv("reference.csv", index=False)
"""

# The user's service at work: X is this run's traffic; then the README's lines, as they stand.
LOG = USER_MODEL + """
import sys
X, _ = data(int(sys.argv[1]), seed=int(sys.argv[2]), income_shift=float(sys.argv[3]))
"""


def _get(url: str) -> dict[str, Any]:
    answer = httpx.get(url, timeout=30)
    return answer.json() if answer.status_code == 200 else {}


def _report_of_window(url: str, window: int, stack: subprocess.Popen[bytes], timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        report = _get(url)
        if report.get("window") == window:
            return report
        assert stack.poll() is None, "driftwatch up exited"
        assert time.monotonic() < deadline, f"no report of window {window} at {url} in {timeout_s:.0f} s: {report}"
        time.sleep(0.5)


def test_a_new_user_without_tensorflow_follows_the_readme_and_sees_drift(new_user: NewUser) -> None:
    started = time.monotonic()
    steps = _readme_steps()
    not_there = subprocess.run([new_user.bin("python"), "-c", "import tensorflow"], env=new_user.env,
                               capture_output=True, text=True, timeout=120)
    assert not_there.returncode != 0 and "No module named 'tensorflow'" in not_there.stderr, not_there.stderr

    model_port, monitor_port = free_port(), free_port()

    def here(value: str) -> str:  # the README's ports -> this machine's free ones
        return value.replace("localhost:8000", f"127.0.0.1:{model_port}").replace(
            "localhost:8001", f"127.0.0.1:{monitor_port}")

    window = int(steps.up[steps.up.index("--window-size") + 1])
    up = [new_user.bin("driftwatch"), *steps.up[1:], "--model-port", str(model_port),
          "--monitor-port", str(monitor_port)]
    with (new_user.project / "up.log").open("wb") as log:
        stack = subprocess.Popen(up, cwd=new_user.project, env=new_user.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for port in (model_port, monitor_port):
            wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout_s=180, processes=[stack])
        project = new_user.project
        new_user.run([new_user.bin("python"), "-c", textwrap.dedent(WRITE_REFERENCE)], cwd=project)
        new_user.run([new_user.bin("driftwatch"), *(here(a) for a in steps.register[1:])], cwd=project)
        model = steps.register[steps.register.index("--name") + 1]
        drift_url = "http://" + here(steps.curl_url).removeprefix("http://")
        assert f"/models/{model}/drift" in drift_url, drift_url

        script = LOG + here(steps.python)
        python = new_user.bin("python")
        new_user.run([python, "-c", script, str(2 * window), "2", "0"], cwd=project)  # two windows as in training
        steady = _report_of_window(drift_url, 1, stack)
        assert steady["model"] == model and steady["window_size"] == window
        assert steady["status"] == "ok" and steady["drifted_features"] == [], steady["drifted_features"]

        new_user.run([python, "-c", script, str(window), "3", "40"], cwd=project)  # income moves by 2.7 sd
        moved = _report_of_window(drift_url, 2, stack)
        assert moved["status"] == "drift" and moved["drifted_features"] == ["income"], moved["drifted_features"]
        assert "tensorflow" not in (new_user.project / "up.log").read_text().lower()
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            code = stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
            raise
    assert code == 0, (new_user.project / "up.log").read_text()[-3000:]
    print(f"README steps in {time.monotonic() - started:.0f} s")
