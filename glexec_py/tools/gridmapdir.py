"""``glexec-gridmapdir``: list, back-map, release and expire pool-account leases.

Runs as: root (release/expire change the gridmapdir; list/backmap only read). Trusts: the
gridmapdir after ``glexec_py.trust``; /proc for running processes. Hot path: no.

  glexec-gridmapdir list DIR [--json]
  glexec-gridmapdir backmap DIR ACCOUNT|UID [--log FILE ...]
      which DN(s) hold the account and since when; with --log also every past mapping of that
      uid found in glexec/LCMAPS logs (``LCMAPS CRED FINAL`` lines).
  glexec-gridmapdir release DIR ACCOUNT [--no-files-in DIR ...] [--dry-run]
  glexec-gridmapdir expire DIR --older-than SECONDS [--no-files-in DIR ...] [--dry-run]

LCMAPS never expires leases; these commands make it safe: a lease is only removed while holding
the same directory lock the launcher takes to allocate (so no launcher is mid-lease), only when
no process of the account's uid is running, and (with --no-files-in) when the account owns no
file below the given directories (EGI-SVG-2011-1474: a re-leased account must not meet its
previous holder's processes or files). Exit 0 on success, 1 when something was refused.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import sys
import time

from glexec_py import gridmapdir as gmd
from glexec_py.errors import GlexecError


def processes_of(uid: int) -> list[int]:
    """Pids with ``uid`` as real, effective, saved or filesystem uid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if str(uid) in line.split()[1:]:
                            pids.append(int(entry))
                        break
        except OSError:
            continue
    return pids


def owns_files(uid: int, roots: list[str]) -> str | None:
    """The first path under ``roots`` owned by ``uid`` (symlinks not followed), or None."""
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    if os.lstat(path).st_uid == uid:
                        return path
                except OSError:
                    continue
    return None


def _fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def cmd_list(args: argparse.Namespace) -> int:
    fd = gmd.open_gridmapdir(args.dir)
    try:
        leases = gmd.list_leases(fd)
    finally:
        os.close(fd)
    if args.json:
        print(json.dumps([{"account": lease.account, "lease": lease.name,
                           "identity": gmd.decode_lease_name(lease.name),
                           "mtime": lease.mtime} for lease in leases], indent=1))
        return 0
    for lease in leases:
        print(f"{lease.account or '(orphan)':<16} {_fmt_time(lease.mtime)}  "
              f"{gmd.decode_lease_name(lease.name)}")
    return 0


def _account_and_uid(text: str) -> tuple[str | None, int | None]:
    try:
        pw = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
        return pw.pw_name, pw.pw_uid
    except (KeyError, ValueError):
        return (None, int(text)) if text.isdigit() else (text, None)


def trawl_logs(paths: list[str], uid: int) -> list[str]:
    """Log lines recording a mapping to ``uid`` (LCMAPS/glexec-py CRED FINAL lines)."""
    needle = f"->mapped uid:'{uid}'"
    hits = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                hits.extend(line.rstrip("\n") for line in f
                            if "CRED FINAL" in line and needle in line)
        except OSError as e:
            print(f"{path}: {e.strerror}", file=sys.stderr)
    return hits


def cmd_backmap(args: argparse.Namespace) -> int:
    account, uid = _account_and_uid(args.account)
    fd = gmd.open_gridmapdir(args.dir)
    try:
        leases = [lease for lease in gmd.list_leases(fd) if lease.account == account]
    finally:
        os.close(fd)
    for lease in leases:
        print(f"{account}: leased to {gmd.decode_lease_name(lease.name)} "
              f"(last used {_fmt_time(lease.mtime)}; lease file {lease.name})")
    if not leases:
        print(f"{args.account}: no current lease")
    if args.log and uid is not None:
        for line in trawl_logs(args.log, uid):
            print(line)
    return 0


def _release_one(fd: int, lease: gmd.Lease, args: argparse.Namespace) -> str | None:
    """Why ``lease`` must stay, or None after releasing it (caller holds the lock)."""
    if lease.account and gmd.account_in_use(fd, lease.account):
        return f"{lease.account} is held by a running glexec"
    try:
        uid = pwd.getpwnam(lease.account).pw_uid if lease.account else None
    except KeyError:
        uid = None
    if uid is not None:
        pids = processes_of(uid)
        if pids:
            return f"{lease.account} still runs processes {pids[:10]}"
        path = owns_files(uid, args.no_files_in or [])
        if path:
            return f"{lease.account} still owns {path}"
    if not args.dry_run:
        gmd.release_lease(fd, lease.name)
    return None


def cmd_release(args: argparse.Namespace, *, expire: bool = False) -> int:
    fd = gmd.open_gridmapdir(args.dir)
    refused = 0
    try:
        gmd.lock_gridmapdir(fd)
        now = time.time()
        for lease in gmd.list_leases(fd):
            if expire:
                if now - lease.mtime < args.older_than:
                    continue
            elif lease.account != args.account:
                continue
            why = _release_one(fd, lease, args)
            verb = "would release" if args.dry_run else "released"
            if why:
                refused += 1
                print(f"kept {lease.account}: {why}", file=sys.stderr)
            else:
                print(f"{verb} {lease.account or '(orphan)'} "
                      f"({gmd.decode_lease_name(lease.name)})")
    finally:
        os.close(fd)
    return 1 if refused else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glexec-gridmapdir",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list leases")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("backmap", help="account or uid -> DN(s) and lease time")
    p.add_argument("dir")
    p.add_argument("account")
    p.add_argument("--log", action="append", default=[], help="log file to search")
    p.set_defaults(func=cmd_backmap)
    for name in ("release", "expire"):
        p = sub.add_parser(name, help=f"{name} leases safely")
        p.add_argument("dir")
        if name == "release":
            p.add_argument("account")
        else:
            p.add_argument("--older-than", type=float, required=True, metavar="SECONDS")
        p.add_argument("--no-files-in", action="append", default=[], metavar="DIR")
        p.add_argument("--dry-run", action="store_true")
        p.set_defaults(func=(lambda a, e=(name == "expire"): cmd_release(a, expire=e)))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GlexecError as e:
        print(f"glexec-gridmapdir: {e.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
