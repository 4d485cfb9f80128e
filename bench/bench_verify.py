"""Benchmark: cost of proxy verification per call (cold import vs warm verify).

Usage (as root, from /work/main):  /opt/glexec-py-dev/bin/python bench/bench_verify.py
Builds a test CA with scripts/make-test-ca.sh under /run/glexec-py-tests, makes proxies with
grid-proxy-init / voms-proxy-fake, then reports:
  * cold: a fresh ``python3 -I`` process importing glexec_py.credentials and verifying once,
    minus the bare interpreter (what a launcher call with a chain-cache miss pays);
  * warm: best-of-N per-call time of load_and_verify in one process (libraries loaded).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    from fixtures.credentials import ProxyFactory, TestCA

    from glexec_py.credentials import load_and_verify

    base = Path("/run/glexec-py-tests")
    base.mkdir(mode=0o755, exist_ok=True)
    root = base / f"gxc-bench-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run([str(REPO / "scripts" / "make-test-ca.sh"), str(root)], check=True,
                       capture_output=True)
        ca = TestCA(root)
        (root / "proxies").mkdir(mode=0o755)
        factory = ProxyFactory(ca, root / "proxies")
        kinds = ["rfc", "legacy", "proxy-of-proxy", "voms", "ec-proxy"]
        print(f"{'proxy':16} {'warm median':>12} {'warm best':>10}")
        for kind in kinds:
            data = factory.bytes_of(kind)
            load_and_verify(data, certdir=str(ca.certdir), vomsdir=str(ca.vomsdir))
            times = []
            for _ in range(200):
                start = time.perf_counter()
                load_and_verify(data, certdir=str(ca.certdir), vomsdir=str(ca.vomsdir))
                times.append(time.perf_counter() - start)
            print(f"{kind:16} {statistics.median(times) * 1e3:10.3f}ms "
                  f"{min(times) * 1e3:8.3f}ms")
        proxy = factory(kinds[0])
        code = ("from glexec_py.credentials import load_and_verify; "
                f"load_and_verify(open({str(proxy)!r},'rb').read(), certdir={str(ca.certdir)!r},"
                f" vomsdir={str(ca.vomsdir)!r})")
        site = subprocess.run([sys.executable, "-c", "import glexec_py, os; "
                               "print(os.path.dirname(os.path.dirname(glexec_py.__file__)))"],
                              capture_output=True, text=True, check=True).stdout.strip()
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": site}

        def timed(argv: list[str]) -> float:
            runs = []
            for _ in range(15):
                start = time.perf_counter()
                subprocess.run(argv, check=True, env=env, capture_output=True)
                runs.append(time.perf_counter() - start)
            return min(runs)

        bare = timed([sys.executable, "-c", "pass"])
        imp = timed([sys.executable, "-c", "import glexec_py.credentials"])
        cold = timed([sys.executable, "-c", code])
        print(f"interpreter start              {bare * 1e3:8.1f} ms")
        print(f"+ import glexec_py.credentials {(imp - bare) * 1e3:8.1f} ms (no cryptography)")
        print(f"+ first verify (cold, incl. cryptography import) {(cold - bare) * 1e3:8.1f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench_verify: run as root (the test CA lives in /run/glexec-py-tests)")
    main()
