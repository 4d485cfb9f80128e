"""condor_update against a real HTCondor starter (Debian 13's condor in a chroot).

A vanilla job (``+WantIOProxy = true``, so the starter accepts job-ad updates over Chirp) runs as
the pilot account inside the chroot and calls the real glexec-py launcher, bind mounted from the
host, with a policy whose mapping rule ends in ``lcmaps_condor_update.mod``. The job ad in
``condor_history`` must then hold ``glexec_user``, ``glexec_x509userproxysubject`` and
``glexec_time``, set by the plugin's Chirp client talking to the starter.
"""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest
from fixtures.credentials import USER_DN

pytestmark = [pytest.mark.htcondor, pytest.mark.root, pytest.mark.slow]

POLICY = """\
# glexec-py HTCondor test: grid-mapfile, then record the mapping in the job ad
gridmapfile = "lcmaps_localaccount.mod -gridmap {site}/grid-mapfile"
condor = "lcmaps_condor_update.mod"

glexec_get_account:
gridmapfile -> condor
"""


def read_text(path: str) -> str:
    try:
        with open(path, errors="replace") as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def wait_for_history(pool, cluster: str, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = pool.run(["condor_history", "-l", cluster, "-limit", "1"]).stdout
        if "JobStatus" in out:
            return out
        time.sleep(1.0)
    return ""


def test_job_ad_shows_the_glexec_attributes(htcondor_pool, site_factory, make_proxy,
                                            gxf_accounts) -> None:
    pool = htcondor_pool
    pilot, target = gxf_accounts["gxfpilot"], gxf_accounts["gxfpay2"]
    for account in (pilot, target):
        pool.add_account(account.pw_name, account.pw_uid)
    site = site_factory(conf={"user_white_list": pilot.pw_name},
                        mapfile=f'"{USER_DN}" {target.pw_name}\n', lcmaps_db=POLICY, pool=[])
    proxy = make_proxy("rfc", owner_uid=pilot.pw_uid)
    jobdir = f"/var/tmp/gxf-condor-{uuid.uuid4().hex[:8]}"
    host_jobdir = str(pool.root) + jobdir
    os.makedirs(host_jobdir, mode=0o755)
    os.chown(host_jobdir, pilot.pw_uid, pilot.pw_gid)
    with open(os.path.join(host_jobdir, "job.sh"), "w") as fh:
        fh.write("#!/bin/sh\n"
                 f"GLEXEC_CLIENT_CERT={proxy} {site.bin} /usr/bin/id -un\n"
                 'echo "glexec exit $?"\n'
                 "sleep 4\n")  # the detached Chirp client talks to this job's starter
    os.chmod(os.path.join(host_jobdir, "job.sh"), 0o755)
    with open(os.path.join(host_jobdir, "job.sub"), "w") as fh:
        fh.write("universe = vanilla\nexecutable = job.sh\noutput = job.out\nerror = job.err\n"
                 "log = job.log\nshould_transfer_files = NO\n+WantIOProxy = true\nqueue\n")
    try:
        submitted = pool.run(["condor_submit", "-terse", "job.sub"], user=pilot.pw_name,
                             cwd=jobdir)
        assert submitted.returncode == 0, submitted.stderr
        cluster = submitted.stdout.strip().split(".")[0]
        ad = wait_for_history(pool, cluster)
        output = read_text(os.path.join(host_jobdir, "job.out"))
        assert ad, f"job {cluster} never finished; out={output!r}"
        assert output.splitlines()[:2] == [target.pw_name, "glexec exit 0"], (
            output, read_text(os.path.join(host_jobdir, "job.err")), site.log_text()[-2000:])
        attrs = dict(line.split(" = ", 1) for line in ad.splitlines() if " = " in line)
        assert attrs.get("glexec_user") == f'"{target.pw_name}"', ad
        assert attrs.get("glexec_x509userproxysubject") == f'"{USER_DN}"'
        assert re.fullmatch(r"\d+", attrs.get("glexec_time", ""))
        assert abs(int(attrs["glexec_time"]) - time.time()) < 600
        assert attrs.get("Owner") == f'"{pilot.pw_name}"'
    finally:
        pool.run(["condor_rm", "-all"])
        for account in (pilot, target):
            pool.remove_account(account.pw_name)
