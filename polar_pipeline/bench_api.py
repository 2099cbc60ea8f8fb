"""API figures for ``make bench``: wrk, a separate process, against uvicorn worker processes over a snapshot.

For each route and concurrency it prints requests/s and p50/p99 latency, first with nothing else running,
then while this process publishes new snapshot generations in a loop (each publish swaps the file every
request after it reads). Errors (non-2xx answers, socket errors) are counted: the bar is zero.

Run on its own over an existing POLAR_HOME (e.g. after ``make demo``)::

    python -m polar_pipeline.bench_api --home .demo/home --user USER_ID
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from polar_pipeline.api_keys import ApiKeyStore

ROUTES: tuple[str, ...] = ("insights", "sleep?days=30", "baselines")
CONCURRENCY: tuple[int, ...] = (1, 8)
DURATION_SECONDS = 5
WORKERS = 2
WRITER_NICENESS = 10
STARTUP_SECONDS = 5
WRK_MISSING = "wrk is not installed (Debian: apt-get install wrk); API figures skipped"


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: throughput, latency percentiles and every kind of failure it saw."""

    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """The figures of ``wrk --latency`` output."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output, re.MULTILINE
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return LoadResult(
        requests=int(find(r"^\s*(\d+) requests in")[1]),
        requests_per_second=float(find(r"^Requests/sec:\s+([\d.]+)")[1]),
        p50_ms=_latency_ms(find(r"^\s+50%\s+(\S+)")[1]),
        p99_ms=_latency_ms(find(r"^\s+99%\s+(\S+)")[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    )


def run_wrk(url: str, api_key: str, concurrency: int, seconds: int) -> LoadResult:
    """wrk with one thread and ``concurrency`` keep-alive connections for ``seconds``."""
    command = [
        "wrk", "--latency", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s",
        "-H", f"X-API-Key: {api_key}", url,
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_wrk(completed.stdout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_api(home: Path, workers: int) -> Iterator[str]:
    """uvicorn with ``workers`` processes over POLAR_HOME=``home``, access log off; yields its base URL."""
    port = _free_port()
    env = os.environ | {"POLAR_HOME": str(home)}
    command = [
        sys.executable, "-m", "uvicorn", "polar_api.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {server.stderr.read() if server.stderr else ''}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@contextmanager
def repeatedly(action: Callable[[], object]) -> Iterator[list[float]]:
    """Run ``action`` back to back in a thread until the block ends; yields the durations so far."""
    stop = threading.Event()
    durations: list[float] = []

    def loop() -> None:
        # The writer yields the CPU to the API, as `polar-flow dev` runs Dagster (nice 10): publishing is
        # background work, a reader is someone waiting.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICENESS)
        while not stop.is_set():
            started = time.perf_counter()
            action()
            durations.append(time.perf_counter() - started)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield durations
    finally:
        stop.set()
        thread.join(timeout=120)


def api_figures(
    home: Path, user_id: str, publish: Callable[[], object], seconds: int = DURATION_SECONDS
) -> int:
    """Print the table; returns the number of failed requests (non-2xx or socket errors) seen."""
    if shutil.which("wrk") is None:
        print(f"  {WRK_MISSING}", flush=True)
        return 0
    keys = ApiKeyStore(home / "control.sqlite3")
    key = keys.create(None, admin=True, name="bench", rate_limit_per_minute=10**9)
    failed = 0
    with serve_api(home, WORKERS) as base:
        # /health answers once one worker is up; the others may still be importing. Let every worker start
        # and warm up before anything is measured.
        run_wrk(f"{base}/health", key.secret, 8, STARTUP_SECONDS)
        for route in ROUTES:
            url = f"{base}/api/v1/users/{user_id}/{route}"
            if (status := httpx.get(url, headers={"X-API-Key": key.secret}, timeout=10).status_code) != 200:
                print(f"  /{route}: HTTP {status}, skipped", flush=True)
                failed += 1
                continue
            for concurrency in CONCURRENCY:
                for during in ("alone", "publishing"):
                    if during == "alone":
                        run_wrk(url, key.secret, concurrency, 1)  # warm-up: each worker's first answers
                        result = run_wrk(url, key.secret, concurrency, seconds)
                        extra = ""
                    else:
                        with repeatedly(publish) as publishes:
                            result = run_wrk(url, key.secret, concurrency, seconds)
                        extra = f", {len(publishes)} publishes"
                    failed += result.errors
                    print(
                        f"  /{route:<14} c={concurrency} {during:<10} {result.requests_per_second:8.0f} req/s"
                        f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                        f"  errors {result.errors}{extra}",
                        flush=True,
                    )
    print(f"  ({WORKERS} uvicorn worker processes; wrk: 1 thread, {seconds} s per row)", flush=True)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, required=True, help="POLAR_HOME with a published snapshot")
    parser.add_argument("--user", required=True, help="a user id in the snapshot")
    parser.add_argument("--seconds", type=int, default=DURATION_SECONDS)
    args = parser.parse_args()
    os.environ["POLAR_HOME"] = str(args.home)
    from polar_pipeline.operations import publish
    from polar_pipeline.settings import get_settings

    settings = get_settings()
    print("API figures", flush=True)
    failed = api_figures(args.home, args.user, lambda: publish(settings), args.seconds)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
