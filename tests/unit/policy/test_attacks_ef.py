"""Attack catalogue groups E (DN and mapping) and F (gridmapdir and pool state), one test each.

Names follow the catalogue ids (security.md section 6). Every negative case also checks that
nothing was left behind in the gridmapdir.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from fixtures.lcmaps import gridmapdir_state, make_gridmapdir, make_request, write_file

from glexec_py.errors import AuthorizationError, SiteError
from glexec_py.gridmapdir import encode_lease_name
from glexec_py.plugin_api import PolicyConfigError, Result
from glexec_py.policy import evaluate
from glexec_py.policy.credstore import CredStore
from glexec_py.policy.mapfile import parse_mapfile

BASE = "/DC=org/DC=test"
POOL = ["gxppool001", "gxppool002", "gxppool003"]


@pytest.fixture
def site(trusted_tmp, gxp_accounts):
    make_gridmapdir(trusted_tmp / "gridmapdir", POOL)
    return trusted_tmp


def setup(site, gridmap: str, body: str = "p:\nlocal -> good | pool\npool -> good\n",
          ban: str = "") -> str:
    write_file(site / "grid-mapfile", gridmap)
    write_file(site / "ban", ban)
    head = (f'local = "lcmaps_localaccount.mod -gridmap {site}/grid-mapfile"\n'
            f'pool = "lcmaps_poolaccount.mod -gridmap {site}/grid-mapfile '
            f'-gridmapdir {site}/gridmapdir"\n'
            f'ban = "lcmaps_ban_dn.mod -banmapfile {site}/ban"\n'
            'good = "lcmaps_dummy_good.mod"\n')
    return str(write_file(site / "lcmaps.db", head + body))


def leases(site) -> dict[str, str]:
    return gridmapdir_state(site / "gridmapdir")


def denied(path: str, dn: str, fqans=()) -> AuthorizationError:
    with pytest.raises(AuthorizationError) as exc:
        evaluate(make_request(dn, fqans), lcmaps_db_file=path)
    return exc.value


# --- E: DN and mapping -------------------------------------------------------------------

def test_e53_single_cn_with_slash_is_not_two_cns(site):
    path = setup(site, f'"{BASE}/CN=alice/CN=root" gxplocal1\n')
    denied(path, BASE + "/CN=alice\\/CN=root")
    assert leases(site) == {}
    assert encode_lease_name(BASE + "/CN=alice\\/CN=root") != encode_lease_name(
        BASE + "/CN=alice/CN=root")


def test_e55_multivalued_rdn_is_not_two_rdns(site):
    path = setup(site, f'"{BASE}/CN=a/UID=b" gxplocal1\n')
    denied(path, BASE + "/CN=a+UID=b")
    path = setup(site, f'"{BASE}/UID=b+CN=a" gxplocal1\n')
    assert evaluate(make_request(BASE + "/CN=a+UID=b"),
                    lcmaps_db_file=path).username == "gxplocal1"


def test_e57_case_variant_of_banned_dn_is_banned(site):
    body = "p:\nban -> local\nlocal -> good\n"
    path = setup(site, f'"{BASE}/CN=Eve" gxplocal1\n', body, ban=f'"{BASE}/CN=Eve"\n')
    denied(path, BASE + "/CN=EVE")
    denied(path, "/dc=ORG/dc=test/cn=eve")


def test_e57_case_variant_of_mapped_dn_maps_the_same(site):
    path = setup(site, f'"{BASE}/CN=Eve/emailAddress=eve@test.org" gxplocal1\n')
    m = evaluate(make_request(BASE + "/CN=eve/E=EVE@test.org"), lcmaps_db_file=path)
    assert m.username == "gxplocal1"  # documented difference: LCMAPS' strcmp would refuse


def test_e58_proxy_cn_suffix_never_maps_as_the_eec(site):
    path = setup(site, f'"{BASE}/CN=alice" gxplocal1\n"{BASE}/CN=alice" .gxppool\n')
    denied(path, BASE + "/CN=alice/CN=proxy")
    denied(path, BASE + "/CN=alice/CN=12345")
    assert leases(site) == {}


def test_e60_mapfile_formats(site):
    data = ('\ufeff"/CN=a b" x\r\n'          # BOM and CRLF: accepted
            '\t "/CN=q\\"uote" y # comment\n'  # escaped quote kept verbatim, comment dropped
            '"/CN=t"\tz1,\tz2   \n').encode()
    entries = parse_mapfile(data, "/m")
    assert [(e.subject, e.mappings) for e in entries] == [
        ("/CN=a b", ("x",)), ('/CN=q\\"uote', ("y",)), ("/CN=t", ("z1", "z2"))]
    for bad, line in [(b'"/CN=a" x\n"/CN=b\x00" y\n', 2), (b'"/CN=a x\n', 1),
                      (b"ok x\n" + b'"/CN=' + b"a" * 1030 + b'" x\n', 2),
                      (b'"/CN=a" x \\\n', 1), (b'"/CN=a" \xff\n', 1)]:
        with pytest.raises(PolicyConfigError, match=f"/m:{line}:"):
            parse_mapfile(bad, "/m")


def test_e60_overlong_line_never_becomes_an_entry(site):
    # LCMAPS would parse the tail after 1023 bytes as a new line naming gxplocal1.
    long_dn = "/CN=" + "x" * 1019
    path = setup(site, f'"{long_dn}" "{BASE}/CN=mallory" gxplocal1\n')
    with pytest.raises(PolicyConfigError, match="longer than 1023"):
        evaluate(make_request(BASE + "/CN=mallory"), lcmaps_db_file=path)


def test_e61_same_dn_twice_first_line_wins(site):
    path = setup(site, f'"{BASE}/CN=twice" gxplocal2\n"{BASE}/CN=twice" gxplocal1\n')
    assert evaluate(make_request(BASE + "/CN=twice"),
                    lcmaps_db_file=path).username == "gxplocal2"


def test_e62_mapping_to_root_is_refused(site):
    path = setup(site, f'"{BASE}/CN=r" root\n"{BASE}/CN=d" daemon\n', "p:\nlocal -> good\n")
    denied(path, BASE + "/CN=r")
    assert evaluate(make_request(BASE + "/CN=d"), lcmaps_db_file=path).uid == 1


def test_e62_account_outside_the_pool_is_never_leased(site):
    # gxpatl001 sits in the gridmapdir but is not "gxppool" + digits.
    write_file(site / "gridmapdir" / "gxpatl001", b"")
    write_file(site / "gridmapdir" / "gxppoolx", b"")
    for name in POOL:
        os.link(site / "gridmapdir" / name, site / "gridmapdir" / f"%2fother{name}")
    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    denied(path, BASE + "/CN=new")
    assert set(leases(site).values()) == set(POOL)


def test_e63_invalid_ids_from_a_plugin_are_errors():
    store = CredStore("/CN=x")
    for bad in (4294967295, -1, "1000", 2**40):
        with pytest.raises(SiteError):
            store.apply(Result.success(uid=[bad]), "evil")
    assert store.uid == []


def test_e64_gid_range_limits_groups(site):
    write_file(site / "grid-mapfile", f'"{BASE}/CN=g" gxplocal1\n')
    path = write_file(site / "lcmaps.db",
                      f'local = "lcmaps_localaccount.mod -gridmap {site}/grid-mapfile"\n'
                      'posix = "lcmaps_posix_enf.mod -gid-range 47200-47200"\n'
                      "p:\nlocal -> posix\n")
    denied(str(path), BASE + "/CN=g")  # gxplocal1 is also in gxpvo1 (47201)


def test_e67_hostile_fqans_and_groups_stay_inside_the_directory(site):
    name = encode_lease_name("/vo/../../etc:x\n/Role=NULL")
    assert "/" not in name and "\n" not in name and ":" not in name and ".." not in name
    write_file(site / "gm", '"/vo/*" .gxppool\n')
    write_file(site / "lcmaps.db",
               f'vpa = "lcmaps_voms_poolaccount.mod -gridmap {site}/gm '
               f'-gridmapdir {site}/gridmapdir --use-account-gid"\n'
               'good = "lcmaps_dummy_good.mod"\np:\nvpa -> good\n')
    m = evaluate(make_request(BASE + "/CN=f", ["/vo/../x\n:y"]),
                 lcmaps_db_file=str(site / "lcmaps.db"))
    assert m.pool_index == encode_lease_name(BASE + "/CN=f")
    assert sorted(os.listdir(site)) == ["gm", "gridmapdir", "lcmaps.db"]


# --- F: gridmapdir and pool state ---------------------------------------------------------

def test_f68_untrusted_gridmapdir_is_a_site_error(site):
    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    os.chmod(site / "gridmapdir", 0o775)
    with pytest.raises(PolicyConfigError, match="writable by group"):
        evaluate(make_request(BASE + "/CN=a"), lcmaps_db_file=path)
    os.chmod(site / "gridmapdir", 0o755)
    os.chown(site / "gridmapdir", 47221, 0)
    with pytest.raises(PolicyConfigError, match="owned by uid 47221"):
        evaluate(make_request(BASE + "/CN=a"), lcmaps_db_file=path)
    assert leases(site) == {}


@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_f70_lease_name_planted_as_non_file(site, kind):
    dn = BASE + "/CN=victim"
    lease = site / "gridmapdir" / encode_lease_name(dn)
    if kind == "symlink":
        os.symlink("gxppool001", lease)
    else:
        lease.mkdir()
    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    denied(path, dn)
    assert os.lstat(site / "gridmapdir" / "gxppool001").st_nlink == 1
    assert (lease.is_symlink() if kind == "symlink" else lease.is_dir())


def test_f70_orphan_lease_is_replaced_like_lcmaps(site):
    dn = BASE + "/CN=orphan"
    write_file(site / "gridmapdir" / encode_lease_name(dn), b"")
    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    m = evaluate(make_request(dn), lcmaps_db_file=path)
    assert leases(site) == {encode_lease_name(dn): m.username}


def test_f71_exhausted_pool_is_203_without_fallback(site):
    for i, name in enumerate(POOL):
        os.link(site / "gridmapdir" / name, site / "gridmapdir" / f"%2fcn%3dother{i}")
    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    before = leases(site)
    err = denied(path, BASE + "/CN=late")
    assert err.exit_code == 203 and "no pool-entry available" in err.detail
    assert leases(site) == before


def test_f72_overlong_lease_name_is_refused_not_truncated(site):
    dn = BASE + "/CN=" + "\u00e9" * 40  # 6 bytes per character after encoding
    assert len(encode_lease_name(dn)) > 255
    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    assert "longer than 255" in denied(path, dn).detail
    assert leases(site) == {}


def test_f73_dns_differing_in_case_share_one_lease(site):
    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    a = evaluate(make_request(BASE + "/CN=Case"), lcmaps_db_file=path)
    b = evaluate(make_request(BASE + "/CN=CASE"), lcmaps_db_file=path)
    assert a.username == b.username and len(leases(site)) == 1


def test_f75_account_with_processes_is_not_released(site):
    from glexec_py.gridmapdir import drop_held_accounts
    from glexec_py.tools.gridmapdir import main as gridmapdir_main

    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    m = evaluate(make_request(BASE + "/CN=busy"), lcmaps_db_file=path)
    drop_held_accounts()  # the launcher is gone; only the payload's process holds the account
    proc = subprocess.Popen(["/bin/sleep", "30"], user=m.uid, group=m.pgid, extra_groups=[])
    try:
        assert gridmapdir_main(["release", str(site / "gridmapdir"), m.username]) == 1
        assert len(leases(site)) == 1
    finally:
        proc.kill()
        proc.wait()
    assert gridmapdir_main(["release", str(site / "gridmapdir"), m.username]) == 0
    assert leases(site) == {}


def test_f76_link_count_above_two_is_refused(site):
    dn = BASE + "/CN=shared"
    gm = site / "gridmapdir"
    os.link(gm / "gxppool001", gm / encode_lease_name(dn))
    os.link(gm / "gxppool001", gm / "%2fcn%3dsomeoneelse")
    path = setup(site, f'"{BASE}/*" .gxppool\n', "p:\npool -> good\n")
    assert "link count 3" in denied(path, dn).detail
    assert os.lstat(gm / "gxppool001").st_nlink == 3


def test_f77_readonly_gridmapdir_is_202_without_partial_lease(site):
    mnt = site / "ro"
    mnt.mkdir(mode=0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)],
                   check=True)
    try:
        make_gridmapdir(mnt / "gridmapdir", POOL)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        write_file(site / "grid-mapfile", f'"{BASE}/*" .gxppool\n')
        path = write_file(site / "lcmaps.db",
                          f'pool = "lcmaps_poolaccount.mod -gridmap {site}/grid-mapfile '
                          f'-gridmapdir {mnt}/gridmapdir"\n'
                          'good = "lcmaps_dummy_good.mod"\np:\npool -> good\n')
        with pytest.raises(SiteError, match="Read-only file system"):
            evaluate(make_request(BASE + "/CN=ro"), lcmaps_db_file=str(path))
        assert gridmapdir_state(mnt / "gridmapdir") == {}
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
