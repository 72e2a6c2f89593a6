"""Open a local HTML file in headless Chromium through the DevTools protocol (``--remote-debugging-pipe``):
the console messages and exceptions, every network request, an attribute of <body>, a screenshot."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def private_env(profile: Path) -> dict[str, str]:
    """The browser's home, config and cache inside ``profile`` (else it writes ~/.config/chromium
    and ~/.cache/dconf whatever --user-data-dir says)."""
    env = dict(os.environ)
    # not TMPDIR: the browser's singleton socket lives there, and a socket path must stay short
    for name, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache")):
        (profile / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        env[name] = str(profile / sub)
    return env


class Pipe:
    """DevTools protocol over fds 3 (commands in) and 4 (replies out), NUL-separated JSON."""

    def __init__(self, browser: str, profile: Path, size: tuple[int, int]) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire():  # the child: its fd 3 reads our commands, its fd 4 writes replies
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)  # never clobbered below
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.process = subprocess.Popen(
            [browser, "--headless=new", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--metrics-recording-only", "--mute-audio",
             "--hide-scrollbars", "--disable-breakpad", "--disable-crash-reporter",
             "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",  # nothing leaves the machine
             f"--crash-dumps-dir={profile / 'crashes'}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire, stdin=subprocess.DEVNULL, env=private_env(profile),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 15) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read(deadline))
        except TimeoutError:
            pass

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from the browser")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed the pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - it is going away either way
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def render(browser: str, page: Path, screenshot: Path, profile: Path, marker: str, size=(1280, 2400),
           timeout: float = 15, probe: str | None = None) -> dict:
    """Load ``page``, wait until <body> has attribute ``marker`` (or an error attribute), take a
    full-width screenshot. Returns marker value, console messages, exceptions, network URLs, and
    the value of the JavaScript expression ``probe`` evaluated after the marker (e.g. a hover)."""
    pipe = Pipe(browser, profile, size)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride", {"width": size[0], "height": size[1], "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        deadline, value, error = time.monotonic() + timeout, None, None
        expression = (f"[document.body && document.body.getAttribute({json.dumps(marker)}),"
                      f" document.body && document.body.getAttribute('data-plots-error')]")
        while time.monotonic() < deadline:
            result = pipe.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                               session=session)
            value, error = (result.get("result", {}).get("value") or [None, None])
            if value is not None or error is not None:
                break
            pipe.drain(0.1)
        pipe.drain(0.3)
        probed = None
        if probe is not None:
            probed = pipe.send("Runtime.evaluate", {"expression": probe, "returnByValue": True, "awaitPromise": True},
                               session=session).get("result", {}).get("value")
            pipe.drain(0.2)
        shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    finally:
        pipe.close()
    console = [e["params"] for e in pipe.events if e.get("method") == "Runtime.consoleAPICalled"]
    logs = [e["params"]["entry"] for e in pipe.events if e.get("method") == "Log.entryAdded"]
    return {"marker": value, "error": error, "probe": probed,
            "console_errors": [c for c in console if c.get("type") in ("error", "assert")]
                              + [entry for entry in logs if entry.get("level") == "error"],
            "exceptions": [e["params"] for e in pipe.events if e.get("method") == "Runtime.exceptionThrown"],
            "requests": [e["params"]["request"]["url"] for e in pipe.events
                         if e.get("method") == "Network.requestWillBeSent"]}
