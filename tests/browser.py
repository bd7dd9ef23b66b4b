"""Headless Chromium for the browser tests: find a binary, and drive one over the DevTools protocol.

:func:`find_chromium` is what the tests skip on (``$CHROMIUM``, a browser on the PATH, or Debian's
``/usr/bin/chromium`` that ``.ci/run`` installs). :func:`headless_chromium` starts one browser for a block and
yields a :class:`DevTools` connection to its page: :meth:`DevTools.open` loads a URL and returns the page's load
problems (uncaught exceptions, failed requests), :meth:`DevTools.evaluate` runs JavaScript in it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")  # Debian/Ubuntu, when not on a CI job's PATH
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1400,1000")
OFFLINE_FLAG = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"  # no host name resolves: no internet
START_TIMEOUT_S = 60


def find_chromium() -> str | None:
    """``$CHROMIUM`` if set (a name on the PATH or a file), else the first of :data:`CHROMIUM_NAMES` on the PATH,
    else :data:`CHROMIUM_PATHS` (``.ci/run`` installs Debian's ``chromium`` there on root CI machines)."""
    if os.environ.get("CHROMIUM"):
        candidate = os.environ["CHROMIUM"]
        return shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
    found = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    return found or next((path for path in CHROMIUM_PATHS if os.access(path, os.X_OK)), None)


@dataclass
class DevTools:
    """One page of a headless Chromium, over its DevTools websocket."""

    socket: Any
    timeout: float = 60.0
    events: list[dict] = field(default_factory=list)
    _next_id: int = 0

    def _receive(self) -> dict:
        return json.loads(self.socket.recv())

    def call(self, method: str, **params: Any) -> dict:
        """Send a DevTools command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = self._receive()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str) -> dict:
        """The first event named ``event`` (received already or next)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for message in self.events:
                if message.get("method") == event:
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event} within {self.timeout} s")
            self.events.append(self._receive())

    def open(self, url: str) -> list[str]:
        """Load ``url`` and wait for its load event; return its problems: uncaught exceptions and failed loads of
        ``file:`` resources (the CDN scripts that cannot load offline are not problems of the page)."""
        self.events.clear()
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            return [f"navigation failed: {result['errorText']}"]
        self.wait_for("Page.loadEventFired")
        requests = {m["params"]["requestId"]: m["params"]["request"]["url"] for m in self.events
                    if m.get("method") == "Network.requestWillBeSent"}
        problems = [m["params"]["exceptionDetails"].get("exception", {}).get("description", "exception")
                    for m in self.events if m.get("method") == "Runtime.exceptionThrown"]
        for message in self.events:
            if message.get("method") == "Network.loadingFailed":
                failed = requests.get(message["params"]["requestId"], "?")
                if failed.startswith("file:"):
                    problems.append(f"{failed}: {message['params'].get('errorText')}")
        return problems

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"JavaScript error: {result['exceptionDetails']}")
        return result["result"].get("value")


@contextmanager
def headless_chromium(user_data_dir: Path, *, offline: bool = True) -> Iterator[DevTools]:
    """A headless Chromium (fresh profile in ``user_data_dir``; no internet with ``offline``) until the block ends."""
    import websocket  # websocket-client, a dependency of jupyter_server

    user_data_dir.mkdir(parents=True, exist_ok=True)
    port_file = user_data_dir / "DevToolsActivePort"
    command = [find_chromium(), *HEADLESS_FLAGS, *([OFFLINE_FLAG] if offline else []),
               f"--user-data-dir={user_data_dir}", "--remote-debugging-port=0", "about:blank"]
    log = user_data_dir.parent / f"{user_data_dir.name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    socket = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.is_file() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Chromium did not start (exit {process.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.loads(response.read())
        page = next(target for target in targets if target.get("type") == "page")
        socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        devtools = DevTools(socket)
        for domain in ("Page", "Runtime", "Network"):
            devtools.call(f"{domain}.enable")
        yield devtools
    finally:
        if socket is not None:
            socket.close()
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the group this helper started (browser + its helpers)
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                pass
