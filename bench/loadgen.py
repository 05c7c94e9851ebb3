"""Closed-loop HTTP load: `concurrency` connections each POST a fixed JSON body back to back for a while.

wrk is the generator of record: it is C, costs the shared CPUs little and so leaves them to the server.
The asyncio + httpx fallback exists for machines without wrk (CI); it burns a core or more of Python on
the same machine as the server, so its figures understate the server and its `generator` string says so.

Both report the same `LoadResult`. Their counting differs in details that matter when reading errors:

- Non-2xx answers are `status` errors. wrk itself counts only statuses above 399, so a wrong status
  below 400 (a 307 trailing-slash redirect, a 204) would pass as success: one request is sent before the
  run and a mismatch below 400 stops it with a RuntimeError. An `expected_status` outside 2xx switches
  wrk to a per-response Lua hook that counts every other status as an error (slower, exact).
- `requests` counts every completed response, error statuses included; latencies cover the same set.
- wrk's `timeout` counts responses slower than `timeout_s` (still counted as requests) plus, at each
  2 s check, connections waiting past it (one stuck request can count several times); wrk abandons
  nothing. The fallback's `timeout` counts requests it abandoned (those are not counted as requests).
- wrk refuses to start when the first connection is refused (RuntimeError); the fallback runs and
  counts `connect` errors.
- wrk takes whole seconds only: durations, warm-up and timeout are rounded up to whole seconds there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

ERROR_KINDS = ("connect", "read", "write", "timeout", "status", "other")
RESULT_MARKER = "SHELFCAST_RESULT "
WRK_MAX_THREADS = 2  # this machine has 2 cores, and the server needs them more than wrk does
CONTENT_TYPE = {"Content-Type": "application/json"}

# Each wrk thread runs this script in its own Lua state; setup() and done() run in a separate one.
# The body comes from a file named in the environment, so no byte of it ever needs Lua escaping.
_WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("SHELFCAST_WRK_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
%(hook)s
function done(summary, latency, requests)
  local status = summary.errors.status
  %(status)s
  io.write(string.format(
    '%(marker)s{"duration_us": %%d, "requests": %%d, "connect": %%d, "read": %%d, "write": %%d, '
    .. '"status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.duration, summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    status, summary.errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""

# Only for a non-2xx expected status: wrk parses headers and body for every response once `response` exists.
_WRK_STATUS_HOOK = """
local expected = tonumber(os.getenv("SHELFCAST_WRK_EXPECT"))
unexpected = 0
function response(status, headers, body)
  if status ~= expected then
    unexpected = unexpected + 1
  end
end
"""
_WRK_STATUS_SUM = """status = 0
  for _, thread in ipairs(threads) do
    status = status + thread:get("unexpected")
  end"""


@dataclass(frozen=True)
class LoadResult:
    """One measured run. Latencies in milliseconds; 0.0 when no request completed."""

    generator: str
    concurrency: int
    duration_s: float
    requests: int
    errors: dict[str, int]
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict:
        return {**asdict(self), "errors": dict(self.errors)}


def available_generator(prefer: str = "auto") -> str:
    """ "wrk" when it is on PATH (unless `prefer` is "python"), else "python"."""
    if prefer not in ("auto", "wrk", "python"):
        raise ValueError(f"unknown generator {prefer!r}: use 'auto', 'wrk' or 'python'")
    if prefer != "python" and shutil.which("wrk"):
        return "wrk"
    return "python"


def run_load(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    duration_s: float,
    generator: str = "auto",
    expected_status: int = 200,
    timeout_s: float = 10.0,
    warmup_s: float = 1.0,
) -> LoadResult:
    """POST `body` to `url` from `concurrency` closed-loop connections for `duration_s`, after a discarded warm-up.

    `generator` "auto" takes wrk when installed; "wrk" insists on it (RuntimeError without it).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if duration_s <= 0 or warmup_s < 0 or timeout_s <= 0:
        raise ValueError("duration_s and timeout_s must be positive, warmup_s not negative")
    chosen = available_generator() if generator == "auto" else generator
    if chosen == "wrk":
        wrk = shutil.which("wrk")
        if wrk is None:
            raise RuntimeError("generator 'wrk' requested but wrk is not on PATH")
        return _run_wrk(wrk, url, body, concurrency, duration_s, expected_status, timeout_s, warmup_s)
    if chosen == "python":
        return asyncio.run(_run_python(url, body, concurrency, duration_s, expected_status, timeout_s, warmup_s))
    raise ValueError(f"unknown generator {generator!r}: use 'auto', 'wrk' or 'python'")


# --- wrk ------------------------------------------------------------------------------------------


@functools.cache
def _wrk_version(wrk: str) -> str:
    """ "wrk 4.1.0" from `wrk -v` (which prints the version, then usage, and exits 1)."""
    result = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    match = re.search(r"(\d+\.\d+\.\d+)", result.stdout)
    return f"wrk {match.group(1)}" if match else "wrk (unknown version)"


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))


def _wrk_threads(concurrency: int) -> int:
    """wrk gives each thread connections // threads, so a thread count that does not divide would drop some."""
    return WRK_MAX_THREADS if concurrency % WRK_MAX_THREADS == 0 else 1


def _check_status_below_400(url: str, body: bytes, expected_status: int, timeout_s: float) -> None:
    """wrk counts only statuses above 399 as errors: refuse a run whose answers would pass unnoticed."""
    try:
        with httpx.Client(timeout=timeout_s, trust_env=False) as client:
            status = client.post(url, content=body, headers=CONTENT_TYPE).status_code
    except (httpx.HTTPError, httpx.InvalidURL):
        return  # wrk reports transport problems itself
    if status != expected_status and status < 400:
        raise RuntimeError(
            f"{url} answered {status}, not {expected_status}: wrk would count every such answer as a success"
        )


def _run_wrk_once(
    wrk: str, url: str, script: Path, env: dict[str, str], concurrency: int, seconds: int, timeout: int
) -> dict[str, int]:
    command = [
        wrk,
        f"-t{_wrk_threads(concurrency)}",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        f"{timeout}s",
        "-s",
        str(script),
        url,
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=seconds + timeout + 60, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"wrk did not finish: {' '.join(command)}") from error
    if result.returncode != 0:
        raise RuntimeError(f"wrk exited with {result.returncode}: {result.stderr.strip() or result.stdout.strip()}")
    for line in result.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    raise RuntimeError(f"wrk printed no result line; stderr: {result.stderr.strip()!r}; stdout: {result.stdout!r}")


def _run_wrk(
    wrk: str,
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    expected_status: int,
    timeout_s: float,
    warmup_s: float,
) -> LoadResult:
    exact_status = not 200 <= expected_status < 300
    if not exact_status:
        _check_status_below_400(url, body, expected_status, timeout_s)
    script_text = _WRK_SCRIPT % {
        "hook": _WRK_STATUS_HOOK if exact_status else "",
        "status": _WRK_STATUS_SUM if exact_status else "",
        "marker": RESULT_MARKER,
    }
    timeout = _whole_seconds(timeout_s)
    with tempfile.TemporaryDirectory(prefix="shelfcast-wrk-") as directory:
        script = Path(directory) / "post.lua"
        script.write_text(script_text, encoding="utf-8")
        body_file = Path(directory) / "body.json"
        body_file.write_bytes(body)
        env = {**os.environ, "SHELFCAST_WRK_BODY": str(body_file), "SHELFCAST_WRK_EXPECT": str(expected_status)}
        if warmup_s > 0:
            _run_wrk_once(wrk, url, script, env, concurrency, _whole_seconds(warmup_s), timeout)
        raw = _run_wrk_once(wrk, url, script, env, concurrency, _whole_seconds(duration_s), timeout)
    duration = raw["duration_us"] / 1e6
    requests = raw["requests"]
    return LoadResult(
        generator=_wrk_version(wrk),
        concurrency=concurrency,
        duration_s=duration,
        requests=requests,
        errors={kind: int(raw.get(kind, 0)) for kind in ERROR_KINDS},
        requests_per_s=requests / duration if duration > 0 else 0.0,
        p50_ms=raw["p50_us"] / 1e3 if requests else 0.0,
        p90_ms=raw["p90_us"] / 1e3 if requests else 0.0,
        p99_ms=raw["p99_us"] / 1e3 if requests else 0.0,
        max_ms=raw["max_us"] / 1e3 if requests else 0.0,
    )


# --- python fallback --------------------------------------------------------------------------------


async def _python_phase(
    clients: list[httpx.AsyncClient], url: str, body: bytes, duration_s: float, expected_status: int
) -> tuple[float, list[int], dict[str, int]]:
    """One worker per client loops until the deadline; returns elapsed seconds, latencies (ns) and errors."""
    errors = dict.fromkeys(ERROR_KINDS, 0)
    latencies: list[int] = []
    deadline = time.perf_counter_ns() + int(duration_s * 1e9)

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter_ns() < deadline:
            start = time.perf_counter_ns()
            try:
                response = await client.post(url, content=body)
            except httpx.TimeoutException:  # before ConnectError: ConnectTimeout is a timeout
                errors["timeout"] += 1
                continue
            except httpx.ConnectError:
                errors["connect"] += 1
                await asyncio.sleep(0.001)  # a refused connection fails at once: do not spin the CPU
                continue
            except (httpx.ReadError, httpx.RemoteProtocolError):
                errors["read"] += 1
                continue
            except httpx.WriteError:
                errors["write"] += 1
                continue
            except httpx.HTTPError:
                errors["other"] += 1
                continue
            latencies.append(time.perf_counter_ns() - start)
            if response.status_code != expected_status:
                errors["status"] += 1

    began = time.perf_counter_ns()
    await asyncio.gather(*(worker(client) for client in clients))
    return (time.perf_counter_ns() - began) / 1e9, latencies, errors


async def _run_python(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    expected_status: int,
    timeout_s: float,
    warmup_s: float,
) -> LoadResult:
    if httpx.URL(url).scheme not in ("http", "https"):
        raise RuntimeError(f"not an http(s) URL: {url}")
    # One client (one keep-alive connection) per worker rather than one pool of `concurrency`: httpcore's pool
    # slows down as it grows (encode/httpx#3215); at 64 connections a shared pool gave a quarter of the rate.
    # trust_env=False: a proxy from the environment must not sit between the generator and a loopback server.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=None)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(limits=limits, timeout=timeout_s, headers=CONTENT_TYPE, trust_env=False)
            )
            for _ in range(concurrency)
        ]
        if warmup_s > 0:
            await _python_phase(clients, url, body, warmup_s, expected_status)
        duration, latencies, errors = await _python_phase(clients, url, body, duration_s, expected_status)
    requests = len(latencies)
    if requests:
        p50, p90, p99 = np.percentile(np.asarray(latencies, dtype=np.float64) / 1e6, [50, 90, 99])
        maximum = max(latencies) / 1e6
    else:
        p50 = p90 = p99 = maximum = 0.0
    return LoadResult(
        generator=f"python-httpx {httpx.__version__} (fallback: shares the CPUs with the server, understates it)",
        concurrency=concurrency,
        duration_s=duration,
        requests=requests,
        errors=errors,
        requests_per_s=requests / duration if duration > 0 else 0.0,
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(maximum),
    )
