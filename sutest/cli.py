"""``glexec-sutest``: build the stand-alone sutest probe and run the batch-interop matrix.

Runs as: root. Trusts: its arguments (an administrator's tool). Hot path: no.

    glexec-sutest build --uid 5002 [--gid 5002] [-o /usr/local/sbin/sutest]
    glexec-sutest run --system slurm|sge|torque-rules [--configs cgroup,linuxproc,pgid]
                      [--sutest PATH [--sutest-user PILOT]]
                      [--glexec /usr/sbin/glexec --proxy FILE --pilot ACCOUNT
                       [--glexec-dropping PATH]]
                      [--bring-up scripts/slurm-up.sh] [--shapes ...] [--json F] [--svg F]
    glexec-sutest report RESULT.json [--svg F]

``--sutest`` adds the stand-alone probe's column (it must start as root: a root job, or with
``--sutest-user`` a setuid-root copy run by that account, for batch systems that refuse root
jobs); ``--glexec`` adds the column of the installed glexec-py launcher, called by the pilot
account with the payload's proxy (``--glexec-dropping``: a launcher of a site that does not keep
the tracking gids, for the ``gid_dropped`` shape). Both columns run side by side.
Exit status of ``run``: 0 if every cell is as expected (caught, or the batch system's documented
limit), 1 if any cell is unexpected.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from importlib import resources


def build_sutest(uid: int, gid: int, output: str, cc: str = "cc") -> str:
    source = resources.files("glexec_py.sutest").joinpath("sutest.c")
    with resources.as_file(source) as path:
        subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", f"-DSUTEST_UID={uid}",
                        f"-DSUTEST_GID={gid}", "-o", output, str(path)], check=True)
    os.chmod(output, 0o755)  # noqa: S103 - root runs it; not setuid, not writable
    return output


def make_driver(system: str, bring_up: str | None):
    if system == "slurm":
        from glexec_py.sutest.drivers.slurm import SlurmDriver
        return SlurmDriver(bring_up)
    if system == "sge":
        from glexec_py.sutest.drivers.sge import SgeDriver
        return SgeDriver(bring_up)
    if system == "torque-rules":
        from glexec_py.sutest.drivers.torque import TorqueRulesDriver
        return TorqueRulesDriver()
    raise SystemExit(f"glexec-sutest: unknown batch system {system!r}")


def run(args: argparse.Namespace) -> int:
    from glexec_py.sutest.drivers import run_matrix
    from glexec_py.sutest.matrix import MatrixResult, glexec_launcher, sutest_launcher
    from glexec_py.sutest.report import render_svg, render_text

    driver = make_driver(args.system, args.bring_up)
    configs = args.configs.split(",") if args.configs else list(driver.configs) or [""]
    launchers = []
    if args.sutest:
        launchers.append(sutest_launcher(os.path.abspath(args.sutest), args.sutest_user))
    if args.glexec:
        if not (args.proxy and args.pilot):
            raise SystemExit("glexec-sutest: --glexec needs --proxy and --pilot")
        launchers.append(glexec_launcher(args.glexec, os.path.abspath(args.proxy), args.pilot,
                                         args.glexec_dropping))
    if not launchers:
        raise SystemExit("glexec-sutest: give --sutest and/or --glexec")
    shapes = args.shapes.split(",") if args.shapes else None
    result = MatrixResult(meta={"system": args.system, "configs": configs,
                                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")})
    started = time.monotonic()
    for config in configs:
        driver.start(config)
        result.cells.extend(run_matrix(driver, config, launchers, shapes))
    driver.stop()
    result.meta["seconds"] = round(time.monotonic() - started, 1)
    text = render_text(result)
    sys.stdout.write(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(result.to_json())
    if args.svg:
        with open(args.svg, "w") as fh:
            fh.write(render_svg(result))
    return 1 if result.failures() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glexec-sutest", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile the stand-alone sutest probe")
    b.add_argument("--uid", type=int, required=True)
    b.add_argument("--gid", type=int)
    b.add_argument("-o", "--output", default="sutest")
    b.add_argument("--cc", default=shutil.which("cc") or "cc")
    r = sub.add_parser("run", help="run the matrix against a batch system")
    r.add_argument("--system", required=True, choices=["slurm", "sge", "torque-rules"])
    r.add_argument("--configs", help="comma-separated configurations (Slurm: proctrack plugins)")
    r.add_argument("--sutest", help="path of a built sutest binary")
    r.add_argument("--sutest-user", help="submit the sutest jobs as this account")
    r.add_argument("--glexec", help="path of an installed glexec-py launcher")
    r.add_argument("--glexec-dropping", help="a launcher whose site drops the tracking gids")
    r.add_argument("--proxy", help="the payload's proxy, owned by --pilot, mode 0600")
    r.add_argument("--pilot", help="the pilot account the glexec jobs run as")
    r.add_argument("--bring-up", help="script that brings up/reconfigures the batch system")
    r.add_argument("--shapes", help="comma-separated subset of the payload shapes")
    r.add_argument("--json")
    r.add_argument("--svg")
    p = sub.add_parser("report", help="render a saved JSON result")
    p.add_argument("result")
    p.add_argument("--svg")
    args = parser.parse_args(argv)
    if args.command == "build":
        build_sutest(args.uid, args.gid if args.gid is not None else args.uid, args.output,
                     args.cc)
        return 0
    if args.command == "report":
        from glexec_py.sutest.matrix import MatrixResult
        from glexec_py.sutest.report import render_svg, render_text
        with open(args.result) as fh:
            result = MatrixResult.from_json(fh.read())
        sys.stdout.write(render_text(result))
        if args.svg:
            with open(args.svg, "w") as fh:
                fh.write(render_svg(result))
        return 0
    if os.geteuid() != 0:
        parser.error("run needs root")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
