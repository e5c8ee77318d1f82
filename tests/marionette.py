"""Headless Firefox driven over Marionette, its own automation protocol, so the HTML tests need no driver package."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

# a fresh profile: Marionette on a free port (written to MarionetteActivePort), and nothing fetched in the
# background, so a page that fetches nothing is all the browser asks for
PREFERENCES = {"marionette.port": 0, "app.update.disabledForTesting": True, "browser.shell.checkDefaultBrowser": False,
               "browser.safebrowsing.malware.enabled": False, "browser.safebrowsing.phishing.enabled": False,
               "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.enabled": False,
               "network.captive-portal-service.enabled": False, "network.connectivity-service.enabled": False,
               "extensions.update.enabled": False, "browser.startup.homepage_override.mstone": "ignore",
               "browser.newtabpage.enabled": False, "browser.startup.page": 0}


def executable() -> str | None:
    """Debian's firefox-esr, or a firefox on the PATH."""
    return shutil.which("firefox-esr") or shutil.which("firefox")


class Firefox:
    """One headless Firefox: ``call`` sends a WebDriver command (``WebDriver:Navigate``, …) and returns its value."""

    def __init__(self, program: str, profile: Path, start_timeout: float = 120):
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                                                 for k, v in PREFERENCES.items()), encoding="utf-8")
        env = {**os.environ, "HOME": str(profile), "MOZ_HEADLESS": "1"}
        self.process = subprocess.Popen([program, "--headless", "--marionette", "--no-remote", "--profile", str(profile)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        self.socket = socket.create_connection(("127.0.0.1", _port(profile, self.process, start_timeout)), timeout=120)
        self.buffer, self.serial = b"", 0
        self._read()                                    # the server's greeting: {"marionetteProtocol": 3, …}
        self.call("WebDriver:NewSession", {"capabilities": {}})

    def call(self, command: str, parameters: dict[str, Any] | None = None) -> Any:
        self.serial += 1
        message = json.dumps([0, self.serial, command, parameters or {}]).encode()
        self.socket.sendall(str(len(message)).encode() + b":" + message)
        _, serial, error, result = self._read()
        assert serial == self.serial and error is None, (command, error)
        return result

    def run(self, script: str, url: str) -> Any:
        """Open ``url`` and return what ``script`` (a function body) returns there."""
        self.call("WebDriver:Navigate", {"url": url})
        return self.call("WebDriver:ExecuteScript", {"script": script, "args": []})["value"]

    def close(self) -> None:
        try:
            self.call("Marionette:Quit")
        finally:
            self.socket.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def _read(self) -> Any:
        """One message: its length in decimal, a colon, then that many bytes of JSON."""
        while b":" not in self.buffer:
            self.buffer += self._receive()
        length, _, rest = self.buffer.partition(b":")
        while len(rest) < int(length):
            rest += self._receive()
        self.buffer = rest[int(length):]
        return json.loads(rest[:int(length)])

    def _receive(self) -> bytes:
        data = self.socket.recv(1 << 16)
        if not data:
            raise ConnectionError("Firefox closed the Marionette connection")
        return data


def _port(profile: Path, process: subprocess.Popen, timeout: float) -> int:
    """The port Firefox chose, from the file it writes into its profile once Marionette listens."""
    found = profile / "MarionetteActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found.exists() and found.read_text().strip():
            return int(found.read_text())
        if process.poll() is not None:
            raise RuntimeError(f"Firefox exited with status {process.returncode} before Marionette listened")
        time.sleep(0.1)
    process.kill()
    raise TimeoutError(f"Firefox did not start Marionette within {timeout} s")
