"""benchlib.py — what the Python benches (bench/email.py, bench/chat.py)
share: CPU accounting from /proc, the background-load probe, percentiles,
output, and a pytest stand-in for importing the tests' helpers."""

import os
import sys
import time
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def pytest_stub():
    """conftest.py (and the tests' helpers) import pytest for their
    fixtures; the benches use only their plain helpers, so a stub does when
    pytest is not installed."""
    try:
        import pytest  # noqa: F401
        return
    except ImportError:
        pass
    import types

    m = types.ModuleType("pytest")

    def fixture(*a, **k):
        if a and callable(a[0]) and not k:
            return a[0]
        return lambda f: f

    def fail(msg="", pytrace=True):
        raise RuntimeError(msg)

    class _Mark:
        def __getattr__(self, name):
            return lambda *a, **k: (lambda f: f)

    m.fixture = fixture
    m.hookimpl = lambda *a, **k: (lambda f: f)
    m.fail = fail
    m.mark = _Mark()
    sys.modules["pytest"] = m


def stat_fields(pid):
    try:
        s = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def machine_jiffies():
    """(busy, total) jiffies over all CPUs; busy = not idle and not iowait."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    total = sum(v)
    return total - v[3] - v[4], total


def proc_cpu(pid, children=False):
    """CPU seconds of a process (all its threads); with children, also of
    its children that have exited and been waited for."""
    f = stat_fields(pid)
    if f is None:
        return 0.0
    t = int(f[11]) + int(f[12])
    if children:
        t += int(f[13]) + int(f[14])
    return t / HZ


def bg_load(seconds=1.0):
    a = machine_jiffies()
    time.sleep(seconds)
    b = machine_jiffies()
    return round(100.0 * NCPU * (b[0] - a[0]) / max(b[1] - a[1], 1))


def say(*a):
    print(*a, flush=True)


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q / 100.0 * len(v) + 0.5)) - 1))]
