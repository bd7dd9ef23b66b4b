"""``make lab``: JupyterLab serves the notebooks, and headless Chromium renders one (skipped without Chromium).

JupyterLab starts on loopback with a random token and port, on a *copy* of the notebook in ``tmp_path`` (so the
browser's session can never autosave into ``notebooks/``), and is always shut down. The browser test opens notebook
06 (or the last notebook while 06 does not exist), saves a screenshot to ``runs/jupyterlab/notebookNN.png`` and
checks that the page is not blank and that the DOM holds the notebook's title. Point ``$CHROMIUM`` at a browser
binary to run it where none is on the PATH.
"""
from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import find_chromium  # shared with test_site.py
from reid_lab import paths
from reid_lab.tutorial.notebook import NOTEBOOK_DIR, list_notebooks

TARGET = "06_attention_visualization.ipynb"
START_TIMEOUT_S = 60


def notebook_under_test() -> Path:
    """Notebook 06, or the last notebook of the tutorial while 06 is not written yet."""
    target = NOTEBOOK_DIR / TARGET
    return target if target.is_file() else list_notebooks()[-1]


def first_heading(notebook: Path) -> str:
    """The text of the first ``#`` heading of the notebook's markdown, without markdown emphasis."""
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return re.sub(r"[*_`]", "", line[2:]).strip()
    raise AssertionError(f"{notebook} has no '# ' heading")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def get(self, route: str, *, token: bool = True) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + route)
        if token:
            request.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, b""


@contextmanager
def jupyterlab(notebook_dir: Path, state_dir: Path) -> Iterator[Lab]:
    """Run ``jupyter lab`` on 127.0.0.1 with a random token until the block ends, then shut it down.

    Jupyter's runtime, config, settings and workspace folders live in ``state_dir``: nothing is written to the
    user's ``~/.jupyter`` or ``~/.local/share/jupyter``.
    """
    port, token = _free_port(), secrets.token_hex(16)
    settings = state_dir / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(state_dir / "runtime"), JUPYTER_CONFIG_DIR=str(state_dir / "config"),
               JUPYTERLAB_SETTINGS_DIR=str(state_dir / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(state_dir / "workspaces"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
               f"--IdentityProvider.token={token}", "--notebook-dir", str(notebook_dir)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers run as root; JupyterLab refuses that without this flag
    log = state_dir / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if lab.get("/api/status")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter lab did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield lab
    finally:
        _stop(lab)


def _stop(lab: Lab) -> None:
    """Ask the server to shut down (it stops its kernels); signal its process group if it does not."""
    if lab.process.poll() is None:
        try:
            request = urllib.request.Request(lab.url + "/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {lab.token}"})
            urllib.request.urlopen(request, timeout=10).close()
            lab.process.wait(timeout=20)
        except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if lab.process.poll() is not None:
            break
        os.killpg(lab.process.pid, sig)  # the group this test started (server + kernels), by its id
        try:
            lab.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def lab_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A folder holding a copy of the notebook under test, and a folder for Jupyter's state."""
    folder, state = tmp_path / "notebooks", tmp_path / "jupyter"
    folder.mkdir()
    state.mkdir()
    shutil.copy2(notebook_under_test(), folder)
    return folder, state


def test_jupyterlab_serves_the_notebook_on_loopback_and_shuts_down(lab_copy):
    folder, state = lab_copy
    notebook = notebook_under_test()
    with jupyterlab(folder, state) as lab:
        assert lab.get("/api/status", token=False)[0] == 403  # the token is required
        status, body = lab.get(f"/api/contents/{notebook.name}")
        model = json.loads(body)
        assert status == 200 and model["type"] == "notebook"
        sources = ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]]
        assert [c["source"] for c in model["content"]["cells"]] == sources
        status, page = lab.get(f"/lab/tree/{notebook.name}")
        assert status == 200 and b"jupyter-config-data" in page  # the JupyterLab application page
    assert lab.process.poll() is not None
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        lab.get("/api/status")


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (chromium, chromium-browser, google-chrome or $CHROMIUM)")
def test_notebook_renders_in_headless_chromium(lab_copy, tmp_path):
    folder, state = lab_copy
    notebook = notebook_under_test()
    screenshot = paths.runs_root() / "jupyterlab" / f"notebook{notebook.name[:2]}.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    browser = [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1000", "--virtual-time-budget=15000"]
    with jupyterlab(folder, state) as lab:
        url = f"{lab.url}/lab/tree/{notebook.name}?token={lab.token}"
        shot = subprocess.run([*browser, f"--screenshot={screenshot}", url], capture_output=True, text=True,
                              timeout=180)
        dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert screenshot.is_file(), f"no screenshot (exit {shot.returncode}):\n{shot.stderr[-2000:]}"
    pixels = np.asarray(Image.open(screenshot).convert("RGB"))
    assert pixels.shape == (1000, 1400, 3)
    _, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    # a blank or splash-only page is one colour; a rendered notebook measured std 39, top colour 61 % of pixels
    assert pixels.std() > 10 and counts.max() / counts.sum() < 0.9, (pixels.std(), counts.max() / counts.sum())
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom.stdout)).split())
    assert first_heading(notebook) in text, f"the notebook title is not in the rendered page (exit {dom.returncode})"


def test_find_chromium_falls_back_to_the_debian_path(monkeypatch):
    """``.ci/run`` installs Debian's chromium as /usr/bin/chromium; found even when /usr/bin is not on the PATH."""
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: path == "/usr/bin/chromium")
    assert find_chromium() == "/usr/bin/chromium"
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert find_chromium() is None
