"""External JSON filters: protocol, privilege drop, schema validation, timeouts."""

from __future__ import annotations

import pwd

import pytest
from fixtures.lcmaps import make_request, write_file

from glexec_py.errors import AuthorizationError, SiteError
from glexec_py.plugin_api import PolicyConfigError
from glexec_py.policy import evaluate

NOBODY = pwd.getpwnam("nobody").pw_uid


def site(d, script: str, opts: str = "-may-set uid,pgid") -> str:
    write_file(d / "filter", "#!/usr/bin/python3\n" + script, 0o755)
    write_file(d / "gm", '"/CN=x" gxplocal1\n')
    return str(write_file(d / "lcmaps.db",
                          f'local = "lcmaps_localaccount.mod -gridmap {d}/gm"\n'
                          f'ext = "lcmaps_external.mod -exec {d}/filter -user nobody '
                          f'-timeout 2 {opts}"\ngood = "lcmaps_dummy_good.mod"\n'
                          "p:\nlocal -> ext\next -> good\n"))


def test_filter_sees_context_runs_unprivileged_and_changes_uid(plugin_site):
    path = site(plugin_site, f"""\
import json, os, sys
doc = json.load(sys.stdin)
assert doc["schema"] == 1 and doc["request"]["dn"] == "/CN=x"
assert doc["creds"]["uid"] == [47210]
assert os.getuid() == {NOBODY} and os.geteuid() == {NOBODY} and os.getgroups() in ([], [65534])
assert os.environ == {{}} or set(os.environ) <= {{"LC_CTYPE"}}
print(json.dumps({{"result": "ok", "set": {{"uid": [47211]}}}}))
""")
    m = evaluate(make_request("/CN=x"), lcmaps_db_file=path)
    assert m.uid == 47211 and m.username == "gxplocal2"


@pytest.mark.parametrize(("script", "error"), [
    ('print(\'{"result": "fail", "reason": "no"}\')', AuthorizationError),
    ("import sys; sys.exit(1)", AuthorizationError),
    ("import sys; sys.exit(3)", SiteError),
    ("print('not json')", SiteError),
    ('print(\'{"result": "ok", "set": {"sgid": [0]}}\')', SiteError),
    ('print(\'{"result": "ok", "set": {"uid": [4294967295]}}\')', SiteError),
    ('print(\'{"result": "ok", "set": {"uid": "0"}}\')', SiteError),
    ('print(\'{"result": "maybe"}\')', SiteError),
    ("import time; time.sleep(5)", SiteError),
])
def test_filter_outcomes(plugin_site, script, error):
    with pytest.raises(error):
        evaluate(make_request("/CN=x"), lcmaps_db_file=site(plugin_site, script))


def test_untrusted_filter_is_refused(plugin_site):
    path = site(plugin_site, "print('{}')")
    (plugin_site / "filter").chmod(0o777)
    with pytest.raises(PolicyConfigError, match="writable"):
        evaluate(make_request("/CN=x"), lcmaps_db_file=path)


def test_filter_never_runs_as_root(plugin_site):
    with pytest.raises(PolicyConfigError, match="never run as root"):
        evaluate(make_request("/CN=x"),
                 lcmaps_db_file=site(plugin_site, "", "-user root"))
