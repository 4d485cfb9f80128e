"""Parity with the real LCMAPS: same lcmaps.db, mapfiles and gridmapdir state, same answer.

Each case builds one site, copies it twice (a gridmapdir copy keeps hard links and readdir
order), maps with Debian's liblcmaps0 and its plugins on one copy and with ``evaluate`` on the
other, then compares success, uid, primary gids, secondary gids, pool index and the complete
final set of leases ({lease file name: account}).
"""

from __future__ import annotations

import os

import pytest
from fixtures.lcmaps import (
    copy_gridmapdir,
    gridmapdir_state,
    lcmaps_available,
    make_gridmapdir,
    make_request,
    run_real_lcmaps,
    write_file,
)
from fixtures.prereq import require

from glexec_py.errors import AuthorizationError
from glexec_py.policy import evaluate

pytestmark = pytest.mark.parity

ALICE = "/DC=org/DC=test/CN=Alice"
BOB = "/DC=org/DC=test/CN=Bob Smith"
CAROL = "/DC=org/DC=test/OU=Unit 7/CN=Carol O'Neil/emailAddress=carol@test.org"
DAVE = "/DC=org/DC=other/CN=Dave"
ATLAS = "/atlas/Role=NULL/Capability=NULL"
ATLAS_PROD = "/atlas/production/Role=NULL/Capability=NULL"
CMS = "/cms/Role=NULL/Capability=NULL"

POOL = ["gxppool001", "gxppool002", "gxppool003", "gxppool004", "gxppool005"]
ATL = ["gxpatl001", "gxpatl002", "gxpatl003", "gxpatlprd001"]
ALL_POOLS = POOL + ATL + ["gxpcms001", "gxpcms002"]

MODULES = """\
path = /usr/lib/lcmaps
localaccount = "lcmaps_localaccount.mod -gridmap {d}/grid-mapfile"
poolaccount = "lcmaps_poolaccount.mod -gridmap {d}/grid-mapfile -gridmapdir {d}/gridmapdir"
poolnowild = "lcmaps_poolaccount.mod -gridmap {d}/grid-mapfile -gridmapdir {d}/gridmapdir"
             " -no_wildcard"
pooloverride = "lcmaps_poolaccount.mod -gridmap {d}/grid-mapfile -gridmapdir {d}/gridmapdir"
               " -override_inconsistency"
ban = "lcmaps_ban_dn.mod -banmapfile {d}/ban-mapfile"
vlg = "lcmaps_voms_localgroup.mod -groupmapfile {d}/groupmapfile -mapmin 0"
vla = "lcmaps_voms_localaccount.mod -gridmap {d}/grid-mapfile"
vlavg = "lcmaps_voms_localaccount.mod -gridmap {d}/grid-mapfile --use-voms-gid"
vpa = "lcmaps_voms_poolaccount.mod -gridmap {d}/grid-mapfile -gridmapdir {d}/gridmapdir"
vpanosec = "lcmaps_voms_poolaccount.mod -gridmap {d}/grid-mapfile -gridmapdir {d}/gridmapdir"
           " -do_not_use_secondary_gids"
vpareq = "lcmaps_voms_poolaccount.mod -gridmap {d}/grid-mapfile -gridmapdir {d}/gridmapdir"
         " --require-primary-gid"
good = "lcmaps_dummy_good.mod"
bad = "lcmaps_dummy_bad.mod"
"""

GRIDMAP = f"""\
# local accounts
"{ALICE}" gxplocal1
"{BOB}" .gxppool
"{BOB}" gxplocal2
"{CAROL}" .gxppool,gxplocal2
"/DC=org/DC=test/CN=Pat*" .gxpatl
"/DC=org/DC=test/CN=*" .gxpcms
"{ATLAS_PROD}" .gxpatl
"/atlas/*" .gxppool
"{CMS}" gxplocal2
"/cms/*" .gxpcms
"""

GROUPMAP = f"""\
"{ATLAS}" gxpvo1
"{ATLAS_PROD}" gxpvo2
"/cms/*" gxpatlas
"""

BAN = f'"{DAVE}"\n"/DC=org/DC=test/CN=Banned*"\n'

# (id, dn, fqans, policies text, selected policies, pool accounts, leases {name: account})
CASES = [
    ("local-exact", ALICE, [], "p:\nlocalaccount -> good\n", "", POOL, {}),
    ("local-no-match", DAVE, [], "p:\nlocalaccount -> good\n", "", POOL, {}),
    ("local-first-suitable-line", BOB, [], "p:\nlocalaccount -> good\n", "", POOL, {}),
    ("local-mixed-mappings", CAROL, [], "p:\nlocalaccount -> good\n", "", POOL, {}),
    ("pool-new-lease", BOB, [], "p:\npoolaccount -> good\n", "", POOL, {}),
    ("pool-special-chars", CAROL, [], "p:\npoolaccount -> good\n", "", POOL, {}),
    ("pool-reuse-lease", BOB, [], "p:\npoolaccount -> good\n", "", POOL,
     {BOB: "gxppool004"}),
    ("pool-exhausted", BOB, [], "p:\npoolaccount -> good\n", "", POOL,
     {f"/CN=other{i}": a for i, a in enumerate(POOL)}),
    ("pool-exhausted-fallback", BOB, [],
     "p:\npoolaccount -> good\nq:\nlocalaccount -> good\n", "", POOL,
     {f"/CN=other{i}": a for i, a in enumerate(POOL)}),
    ("pool-wildcard-line", "/DC=org/DC=test/CN=Zed", [], "p:\npoolaccount -> good\n", "",
     ALL_POOLS, {}),
    ("pool-strict-prefix", "/DC=org/DC=test/CN=Pat", [], "p:\npoolaccount -> good\n", "",
     ALL_POOLS, {f"/CN=x{i}": a for i, a in enumerate(ATL[:3])}),
    ("pool-no-wildcard", "/DC=org/DC=test/CN=Zed", [], "p:\npoolnowild -> good\n", "",
     ALL_POOLS, {}),
    ("pool-inconsistent-lease", BOB, [], "p:\npoolaccount -> good\n", "", ALL_POOLS,
     {BOB: "gxpcms001"}),
    ("pool-override-inconsistency", BOB, [], "p:\npooloverride -> good\n", "", ALL_POOLS,
     {BOB: "gxpcms001"}),
    ("pool-orphan-lease", BOB, [], "p:\npoolaccount -> good\n", "", POOL, {BOB: ""}),
    ("ban-banned-falls-through", DAVE, [],
     "p:\nban -> localaccount\nq:\nbad -> good\n", "", POOL, {}),
    ("ban-pattern", "/DC=org/DC=test/CN=Banned Guy", [],
     "p:\nban -> poolaccount\npoolaccount -> good\n", "", ALL_POOLS, {}),
    ("ban-not-banned", ALICE, [], "p:\nban -> localaccount\nlocalaccount -> good\n", "",
     POOL, {}),
    ("negated-rule", ALICE, [], "p:\n~localaccount -> bad\n", "", POOL, {}),
    ("failure-branch", BOB, [], "p:\nbad -> good | poolaccount\npoolaccount -> good\n", "",
     POOL, {}),
    ("policy-selection", ALICE, [],
     "first:\npoolaccount -> good\nsecond:\nlocalaccount -> good\n", "second", ALL_POOLS, {}),
    ("voms-group-pool", DAVE, [ATLAS, ATLAS_PROD], "v:\nvlg -> vpa\nvpa -> good\n", "",
     ALL_POOLS, {}),
    ("voms-group-pool-no-secondary", DAVE, [ATLAS, ATLAS_PROD],
     "v:\nvlg -> vpanosec\nvpanosec -> good\n", "", ALL_POOLS, {}),
    ("voms-prod-first", DAVE, [ATLAS_PROD, ATLAS], "v:\nvlg -> vpa\nvpa -> good\n", "",
     ALL_POOLS, {}),
    ("voms-localaccount", DAVE, [CMS], "v:\nvlg -> vla\nvla -> good\n", "", ALL_POOLS, {}),
    ("voms-localaccount-voms-gid", DAVE, [CMS], "v:\nvlg -> vlavg\nvlavg -> good\n", "",
     ALL_POOLS, {}),
    ("voms-require-pgid-fails", DAVE, ["/other/Role=NULL/Capability=NULL", ATLAS],
     "v:\nvlg -> vpareq\nvpareq -> good\n", "", ALL_POOLS, {}),
    ("voms-failure-branch-is-per-rule", DAVE, ["/cms/sub/Role=NULL/Capability=NULL"],
     "v:\nvlg -> vla | vpa\nvla -> good\nvpa -> good\n", "", ALL_POOLS, {}),
    ("voms-reuse-group-lease", DAVE, [ATLAS], "v:\nvlg -> vpa\nvpa -> good\n", "",
     ALL_POOLS, {f"{DAVE}\x01gxpvo1": "gxppool002"}),
]

EXPECTED_DENIALS = {"local-no-match", "pool-exhausted", "pool-strict-prefix", "pool-no-wildcard",
                    "pool-inconsistent-lease", "ban-banned-falls-through", "ban-pattern",
                    "voms-require-pgid-fails", "voms-failure-branch-is-per-rule"}


def _lease_name(identity: str) -> str:
    from glexec_py.gridmapdir import encode_lease_name

    dn, _, groups = identity.partition("\x01")
    return encode_lease_name(dn, groups.split(":") if groups else ())


def _build_site(root, accounts, leases):
    template = make_gridmapdir(root / "template", accounts)
    for identity, account in leases.items():
        name = _lease_name(identity)
        if account:
            os.link(template / account, template / name)
        else:
            write_file(template / name, b"")
    sites = []
    for side in ("lcmaps", "glexec"):
        d = root / side
        d.mkdir(mode=0o755)
        copy_gridmapdir(template, d / "gridmapdir")
        write_file(d / "grid-mapfile", GRIDMAP)
        write_file(d / "groupmapfile", GROUPMAP)
        write_file(d / "ban-mapfile", BAN)
        sites.append(d)
    return sites


@pytest.mark.parametrize(("case", "dn", "fqans", "policies", "selected", "accounts", "leases"),
                         CASES, ids=[c[0] for c in CASES])
def test_same_mapping_as_lcmaps(trusted_tmp, gxp_accounts, case, dn, fqans, policies,
                                selected, accounts, leases):
    require(lcmaps_available(), "needs liblcmaps0 and the LCMAPS plugins")
    lc_dir, gx_dir = _build_site(trusted_tmp, accounts, leases)
    for d in (lc_dir, gx_dir):
        write_file(d / "lcmaps.db", MODULES.format(d=d) + "\n" + policies)

    real = run_real_lcmaps(lc_dir / "lcmaps.db", dn, fqans, selected)
    assert real["rc"] != "init", f"LCMAPS could not initialise, see {lc_dir}/lcmaps.log"
    try:
        m = evaluate(make_request(dn, fqans), lcmaps_db_file=str(gx_dir / "lcmaps.db"),
                     policy_names=[selected] if selected else ())
        ours = {"rc": 0, "uid": m.uid, "pgid": list(m.pgids), "sgid": list(m.sgids),
                "pool": m.pool_index}
    except AuthorizationError:
        ours = {"rc": 1}
    if real["rc"] != 0:
        real = {"rc": 1}
    assert ours == real, case
    assert (ours["rc"] == 0) == (case not in EXPECTED_DENIALS), case
    assert gridmapdir_state(gx_dir / "gridmapdir") == gridmapdir_state(lc_dir / "gridmapdir")


def test_table_is_large_enough():
    assert len(CASES) >= 20
