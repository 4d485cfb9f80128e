"""posix_enf: the LCMAPS limits as checks, plus uid/gid ranges; never a switch."""

from __future__ import annotations

import pytest
from fixtures.lcmaps import make_request
from glexec_py.plugins.posix_enf import PosixEnfPlugin

from glexec_py.plugin_api import CredentialView, PolicyConfigError


def run(args, **creds):
    p = PosixEnfPlugin()
    p.configure(args)
    return p.run(make_request("/CN=x"), CredentialView(**creds))


def test_limits_and_ranges():
    assert run(["-maxuid", "1"], uid=[500], pgid=[500]).ok
    assert not run(["-maxuid", "1"], uid=[500, 501], pgid=[500]).ok
    assert not run(["-maxsgid", "2"], uid=[500], pgid=[500], sgid=[1, 2, 3]).ok
    assert not run([], uid=[500]).ok  # no primary gid
    assert not run([], uid=[0], pgid=[500]).ok
    assert not run([], uid=[500], pgid=[500], sgid=[0]).ok
    assert run(["-uid-range", "400-600"], uid=[500], pgid=[7]).ok
    assert not run(["-uid-range", "501-600"], uid=[500], pgid=[7]).ok
    assert not run(["-gid-range", "400-600"], uid=[500], pgid=[500], sgid=[27]).ok


@pytest.mark.parametrize("args", [["-set_only_euid", "yes"], ["-maxuid", "x"],
                                  ["-uid-range", "5"], ["-maxpgid", "-1"], ["-bogus"]])
def test_bad_options(args):
    with pytest.raises(PolicyConfigError):
        PosixEnfPlugin().configure(args)
