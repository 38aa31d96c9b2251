"""The built-in page, in headless Chromium (Debian's `chromium`), driven over the Chrome DevTools
Protocol with the `websockets` package: live camera images of 16 envs, a screenshot after 5 s that
differs from one at 1 s, the Reset button resetting an env (seen on its episode topic), and with 64
envs only the cameras on screen subscribed.

Skipped when Chromium is not installed (scripts/setup.sh installs it).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from test_viewer import bins, http, viewer_server  # noqa: F401  (fixtures and helpers)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("ROBOSIM_REQUIRE_CHROMIUM") == "1":
        raise RuntimeError("chromium is not installed (scripts/setup.sh installs it)")
    pytest.skip("chromium is not installed (scripts/setup.sh installs it)", allow_module_level=True)


class Browser:
    """One headless Chromium page, driven over the DevTools protocol."""

    def __init__(self, url: str, width=1400, height=1000):
        self.profile = Path(tempfile.mkdtemp(prefix="robosim-chromium-"))
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        port_file = self.profile / "DevToolsActivePort"
        while not port_file.exists() or not port_file.read_text().strip():
            assert self.process.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        target = next(p for p in pages if p["type"] == "page")
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(target["webSocketDebuggerUrl"], max_size=256 << 20, open_timeout=10))
        self.ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def call(self, method: str, **params):
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv(timeout=60))
            if m.get("id") == i:
                assert "error" not in m, m
                return m.get("result", {})

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def screenshot(self, selector: str | None = None) -> bytes:
        """A PNG of the page, or of the element `selector` only."""
        params: dict = {"format": "png"}
        if selector:
            box = self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }})()")
            params["clip"] = {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])

    def close(self):
        with contextlib.suppress(Exception):
            self._stack.close()
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def wait(self, expression: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.2)


# For every env card: does its canvas hold a drawn camera image (its size set, pixels not all black)?
DRAWN = """[...document.querySelectorAll('.env canvas')].map(c => {
  if (c.width <= 64) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 30) return true;
  return false;
})"""


def test_the_page_shows_live_cameras_of_16_envs_and_its_reset_button_resets_an_env(bins, tmp_path_factory, tmp_path):  # noqa: F811
    import robosim
    from robosim.msgs.robosim import msg_pb2

    with viewer_server(bins, tmp_path_factory, "Scenes/object_tracker", 16) as s:
        browser = Browser(f"http://127.0.0.1:{s.viewer}/")
        try:
            browser.wait("document.querySelectorAll('.env').length === 16")
            browser.wait(f"({DRAWN}).every(x => x)", timeout=60)
            time.sleep(1)
            # The grid alone (the header's message rate changes by itself): the cameras must change it.
            first = browser.screenshot("#grid")
            time.sleep(4)
            later = browser.screenshot("#grid")
            (tmp_path / "viewer-1s.png").write_bytes(first)
            (tmp_path / "viewer-5s.png").write_bytes(later)
            assert first[:8] == b"\x89PNG\r\n\x1a\n" and first != later
            assert browser.js("window.robosimViewer.frames") > 16 * 5
            # The Reset button of env 3: its episode ends with reason "reset" and a new one starts.
            with robosim.Client(s.address, name="py_viewer_probe") as client:
                sub = client.subscribe("/env_3/episode", msg_pb2.EpisodeEvent, qos="reliable")
                time.sleep(0.5)
                browser.js("document.getElementById('reset-3').click(), true")
                deadline = time.monotonic() + 15
                events = []
                while not any(e.kind == msg_pb2.EpisodeEvent.ENDED and e.reason == "reset" for e in events):
                    assert time.monotonic() < deadline, events
                    with contextlib.suppress(TimeoutError):
                        events.append(sub.recv(timeout=1))
                assert all(e.env_id == 3 for e in events)
            browser.wait("window.robosimViewer.episodes.some(e => e.env === 3 && e.reason === 'reset')")
        finally:
            browser.close()


def test_with_64_envs_the_page_subscribes_only_to_the_cameras_on_screen(bins, tmp_path_factory):  # noqa: F811
    with viewer_server(bins, tmp_path_factory, "Scenes/object_tracker", 64) as s:
        browser = Browser(f"http://127.0.0.1:{s.viewer}/", width=1000, height=700)
        try:
            browser.wait("document.querySelectorAll('.env').length === 64")
            browser.wait("window.robosimViewer.subscribed().some(t => t.includes('/camera/'))")
            time.sleep(1)
            cameras = lambda: sorted(int(t.split("/")[1][4:]) for t in browser.js("window.robosimViewer.subscribed()") if "/camera/" in t)
            on_screen = cameras()
            assert 0 < len(on_screen) < 32 and 0 in on_screen and 63 not in on_screen, on_screen
            browser.js("window.scrollTo(0, document.body.scrollHeight), true")
            browser.wait("window.robosimViewer.subscribed().includes('/env_63/camera/' + window.robosimViewer.subscribed().find(t => t.includes('/camera/')).split('/camera/')[1])")
            scrolled = cameras()
            assert 63 in scrolled and 0 not in scrolled and len(scrolled) < 32, scrolled
            # The bridge agrees: one viewer, about one screen of subscriptions (cameras, poses, 64 episode topics).
            stats = http(s.viewer, "/api/stats")
            assert stats["clients"][0]["subscriptions"] < 64 + 2 * 32, stats
        finally:
            browser.close()
