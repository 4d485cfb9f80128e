"""glexec-policy and glexec-gridmapdir as administrators use them."""

from __future__ import annotations

import os

from fixtures.lcmaps import make_gridmapdir, make_request, write_file

from glexec_py.gridmapdir import drop_held_accounts
from glexec_py.policy import evaluate
from glexec_py.tools.gridmapdir import main as gridmapdir_main
from glexec_py.tools.policy import main as policy_main


def test_check_reports_each_error_with_its_line(trusted_tmp, capsys):
    good = write_file(trusted_tmp / "good.db",
                      'g = "lcmaps_dummy_good.mod"\np:\ng -> lcmaps_dummy_bad.mod\n')
    bad = write_file(trusted_tmp / "bad.db", 'g = "lcmaps_dummy_good.mod"\np:\ng ->\n')
    assert policy_main(["check", str(good)]) == 0
    assert policy_main(["check", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4:1: syntax error" in err
    loop = write_file(trusted_tmp / "loop.yaml",
                      "glexec_policy: 1\npolicies:\n  - name: p\n    rules:\n"
                      "      - {run: a, on_success: b}\n      - {run: b, on_success: a}\n")
    assert policy_main(["check", "--no-init", str(loop)]) == 1
    assert f"{loop}:5:9:" in capsys.readouterr().err


def test_check_initialises_plugins(trusted_tmp, capsys):
    db = write_file(trusted_tmp / "l.db",
                    'l = "lcmaps_localaccount.mod -gridmap /nonexistent"\np:\nl -> good\n')
    assert policy_main(["check", "--no-init", str(db)]) == 0
    assert policy_main(["check", str(db)]) == 1
    assert "/nonexistent" in capsys.readouterr().err


def test_convert_both_ways(trusted_tmp, capsys):
    db = write_file(trusted_tmp / "x.db", 'a = "lcmaps_dummy_good.mod"\n'
                    'b = "lcmaps_localaccount.mod -gridmap \\"/x y\\""\np:\n~a -> b\n')
    out = trusted_tmp / "x.yaml"
    assert policy_main(["convert", str(db), "-o", str(out)]) == 0
    assert policy_main(["convert", str(out)]) == 0
    text = capsys.readouterr().out
    assert "~a -> b" in text and 'lcmaps_localaccount.mod -gridmap \\"/x y\\"' in text


def test_plugins_listing(capsys):
    assert policy_main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "poolaccount (lcmaps_poolaccount.mod)" in out and "-override_inconsistency" in out


def test_list_backmap_expire(trusted_tmp, gxp_accounts, capsys):
    gm = make_gridmapdir(trusted_tmp / "gridmapdir", ["gxppool001", "gxppool002"])
    write_file(trusted_tmp / "grid-mapfile", '"/DC=org/*" .gxppool\n')
    db = write_file(trusted_tmp / "lcmaps.db",
                    f'pool = "lcmaps_poolaccount.mod -gridmap {trusted_tmp}/grid-mapfile '
                    f'-gridmapdir {gm}"\ngood = "lcmaps_dummy_good.mod"\np:\npool -> good\n')
    m = evaluate(make_request("/DC=org/CN=Old"), lcmaps_db_file=str(db))
    log = write_file(trusted_tmp / "glexec.log", "\n".join(m.cred_final) + "\nother\n")
    assert gridmapdir_main(["list", str(gm)]) == 0
    assert "/dc=org/cn=old" in capsys.readouterr().out
    assert gridmapdir_main(["backmap", str(gm), str(m.uid), "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "leased to /dc=org/cn=old" in out and 'DN:"/DC=org/CN=Old"' in out
    old = os.lstat(gm / m.username).st_mtime - 7200
    os.utime(gm / m.pool_index, (old, old), follow_symlinks=False)
    evaluate(make_request("/DC=org/CN=New"), lcmaps_db_file=str(db))
    # While this process holds the accounts (as a running launcher would), nothing is expired.
    assert gridmapdir_main(["expire", str(gm), "--older-than", "3600"]) == 1
    assert "held by a running glexec" in capsys.readouterr().err
    assert len(os.listdir(gm)) == 4
    drop_held_accounts()  # the requests are over
    assert gridmapdir_main(["expire", str(gm), "--older-than", "3600", "--dry-run"]) == 0
    assert len(os.listdir(gm)) == 4
    assert gridmapdir_main(["expire", str(gm), "--older-than", "3600"]) == 0
    assert sorted(n for n in os.listdir(gm) if n.startswith("%")) == ["%2fdc%3dorg%2fcn%3dnew"]
