"""Fixtures of the ingest tests: local sites, and no connection outside loopback."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import httpcore
import pytest

from tests.ingest.sites import STATIC_SITE, Site


@pytest.fixture
def static_site_at():
    """start(host, routes {path: (status, content type, body)}) -> (url, arrivals());
    arrivals() stops the site and gives [(monotonic time, path)] of the requests."""
    procs = []

    def start(host: str, routes: dict) -> tuple[str, callable]:
        proc = subprocess.Popen([sys.executable, "-c", STATIC_SITE, host, json.dumps(routes)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        port = int(proc.stdout.readline())

        def arrivals() -> list[tuple[float, str]]:
            proc.terminate()
            lines = proc.stdout.read().split("\n")
            return [(float(t), p) for t, p in (line.split(" ", 1) for line in lines if line)]

        return f"http://{host}:{port}", arrivals

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture
def site_at():
    sites = []

    def make(host: str = "127.0.0.1", port: int = 0) -> Site:
        sites.append(Site(host, port))
        return sites[-1]

    yield make
    for site in sites:
        site.close()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Every connection the crawler opens must go to loopback; anything else fails the test."""
    real = httpcore.AnyIOBackend.connect_tcp

    async def connect(self, host, port, *args, **kwargs):
        assert ipaddress.ip_address(host).is_loopback, f"the crawler tried to connect to {host}"
        return await real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect)
