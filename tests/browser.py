"""A small headless-Chromium driver over the Chrome DevTools Protocol, for tests.

Only aiohttp (its websocket client) and the standard library: no selenium, no playwright.
The API is synchronous; an asyncio loop in a background thread talks to the browser.

    with Browser() as b:
        b.open("http://127.0.0.1:8080/")
        b.wait_for("document.body.dataset.loaded === '1'")
        b.click("button[data-action=normal]")
        b.screenshot("page.png", 1280, 900)
        assert not b.console_errors()
"""
import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    """The path of a Chromium or Chrome executable, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    """The browser failed, or a script threw in the page."""


class Browser:
    def __init__(self, executable=None, width=1280, height=900, timeout=30.0):
        self.executable = executable or find_chromium()
        self.width, self.height, self.timeout = width, height, timeout
        self.proc = None
        self.tmpdir = None
        self._loop = None
        self._thread = None
        self._session = None
        self._ws = None
        self._reader = None
        self._ids = itertools.count(1)
        self._pending = {}    # command id -> future
        self._waiters = []    # (event method, future)
        self._errors = []

    # ------------------------------------------------------------ lifecycle

    def start(self):
        if not self.executable:
            raise BrowserError("no chromium found (tried %s)" % ", ".join(CANDIDATES))
        self.tmpdir = tempfile.mkdtemp(prefix="clogs-chromium-")
        self._log = open(os.path.join(self.tmpdir, "chromium.log"), "wb")
        args = [self.executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars",
                "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={self.tmpdir}",
                f"--window-size={self.width},{self.height}", "about:blank"]
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            port = self._devtools_port()
            page_ws = self._page_websocket(port)
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="chromium-cdp", daemon=True)
            self._thread.start()
            self._run(self._connect(page_ws))
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
            self._viewport(self.width, self.height)
        except BaseException:
            self.close()
            raise
        return self

    def _devtools_port(self):
        marker = Path(self.tmpdir) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                lines = marker.read_text().split()
                if lines:
                    return int(lines[0])
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise BrowserError(f"chromium did not write DevToolsActivePort in {self.timeout}s: {self._log_tail()}")

    def _page_websocket(self, port):
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as resp:
                    targets = json.load(resp)
                for target in targets:
                    if target.get("type") == "page" and target.get("webSocketDebuggerUrl"):
                        return target["webSocketDebuggerUrl"]
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BrowserError(f"no page target on port {port}: {self._log_tail()}")
            time.sleep(0.1)

    def _log_tail(self, n=2000):
        try:
            return (Path(self.tmpdir) / "chromium.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def close(self):
        if self._loop is not None:
            try:
                self._run(self._disconnect(), timeout=5)
            except Exception:
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc = None
        if self.tmpdir:
            self._log.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ protocol

    def _run(self, coro, timeout=None):
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=(timeout or self.timeout) + 5)

    async def _connect(self, url):
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(url, max_msg_size=0, autoping=True)
        self._reader = asyncio.ensure_future(self._read())

    async def _disconnect(self):
        if self._reader:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def _read(self):
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future and not future.done():
                    if "error" in data:
                        future.set_exception(BrowserError(f"CDP error: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
            else:
                self._on_event(data.get("method"), data.get("params", {}))
        for future in self._pending.values():     # the socket closed: fail whoever waits
            if not future.done():
                future.set_exception(BrowserError("devtools connection closed"))

    def _on_event(self, method, params):
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            self._errors.append(f"exception: {text} ({details.get('url', '')}:{details.get('lineNumber', '?')})")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            self._errors.append("console.error: " + " ".join(str(a) for a in args))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self._errors.append(f"log: {entry.get('text', '')} {entry.get('url', '')}".strip())
        for item in list(self._waiters):
            if item[0] == method and not item[1].done():
                item[1].set_result(params)
                self._waiters.remove(item)

    async def _send(self, method, params):
        msg_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        return await asyncio.wait_for(future, self.timeout)

    def send(self, method, **params):
        """Send one raw CDP command; returns its result dict."""
        return self._run(self._send(method, params))

    async def _navigate(self, url, timeout):
        loaded = asyncio.get_running_loop().create_future()
        self._waiters.append(("Page.loadEventFired", loaded))
        result = await self._send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")
        await asyncio.wait_for(loaded, timeout)

    # ------------------------------------------------------------ API

    def open(self, url, timeout=None):
        """Navigate and wait for the load event."""
        self._run(self._navigate(url, timeout or self.timeout), timeout)

    def evaluate(self, js):
        """Evaluate an expression in the page (promises are awaited); returns its JSON value."""
        result = self.send("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{text}\n  in: {js}")
        return result.get("result", {}).get("value")

    def wait_for(self, predicate, timeout=10.0, interval=0.1):
        """Poll a JS expression until it is truthy; returns its value or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(predicate)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for: {predicate}; errors: {self.console_errors()}")
            time.sleep(interval)

    def click(self, selector):
        """A real mouse click (press and release) in the middle of the first element matching the CSS selector."""
        box = self.evaluate(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            e.scrollIntoView({{block: "center", inline: "center"}});
            const r = e.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        if not box:
            raise BrowserError(f"no element matches {selector!r}")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    def _viewport(self, width, height):
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def screenshot(self, path, width=1280, height=900):
        """A full-page PNG at the given viewport size (the page may be taller than height)."""
        self._viewport(width, height)
        # let resize handlers run and the page repaint
        self.evaluate("new Promise(r => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(r)), 250))")
        full = self.evaluate("Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)")
        full = max(int(height), int(full or 0))
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": full, "scale": 1})
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(shot["data"]))
        return Path(path)

    def console_errors(self):
        """Uncaught exceptions, console.error calls and error log entries (e.g. failed loads) so far."""
        if self._loop is not None:
            self._run(asyncio.sleep(0.05))    # let events already received be handled
        return list(self._errors)
