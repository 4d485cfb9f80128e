"""Measure gridmapdir lease cost against the directory size (reuse and new lease).

Run as root: ``/opt/glexec-py-dev/bin/python bench/bench_pool.py [--accounts 100 1000 5000]``.
Builds a gridmapdir under /run/glexec-py-bench with N account files, half of them leased, then
times ``acquire_lease`` for an identity that already holds a lease (the common repeated call)
and for a new identity (allocation under the lock), in-process. Both use glexec_py.leaseindex
(root-only hints, verified with lstat) and so stay flat as the directory grows; bench/run.sh
measures the same through whole launcher calls, against real LCMAPS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time

from glexec_py.gridmapdir import (
    PoolRequest,
    acquire_lease,
    encode_lease_name,
    lock_gridmapdir,
    open_gridmapdir,
)

BASE = "/run/glexec-py-bench"


def build(n: int) -> str:
    path = f"{BASE}/gm{n}"
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, mode=0o755)
    os.chmod(BASE, 0o755)  # noqa: S103 - the trust checks need a root-owned 0755 path
    for i in range(n):
        name = f"{path}/pool{i:05d}"
        with open(name, "w"):
            pass
        if i % 2 == 0:
            os.link(name, f"{path}/{encode_lease_name(f'/DC=org/CN=user{i}')}")
    return path


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def measure(fd: int, n: int, repeat: int) -> tuple[float, float]:
    existing = PoolRequest(encode_lease_name(f"/DC=org/CN=user{n - 2}"), "pool")
    reuse = timed(lambda: acquire_lease(fd, existing), repeat)
    counter = iter(range(10**9))

    def new_lease() -> None:
        lock_gridmapdir(fd)
        req = PoolRequest(encode_lease_name(f"/DC=org/CN=new{next(counter)}"), "pool")
        acquire_lease(fd, req)

    return reuse, timed(new_lease, min(repeat, n // 2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"{'accounts':>8} {'reuse ms':>9} {'new ms':>8}")
    for n in args.accounts:
        path = build(n)
        fd = open_gridmapdir(path)
        try:
            reuse, new = measure(fd, n, args.repeat)
        finally:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        print(f"{n:>8} {reuse:>9.2f} {new:>8.2f}")


if __name__ == "__main__":
    main()
