"""LCMAPS evaluation semantics: branches, fall-through, reset, selection, init failures."""

from __future__ import annotations

import pytest
from fixtures.lcmaps import make_request, write_file

from glexec_py.errors import AuthorizationError
from glexec_py.plugin_api import PolicyConfigError
from glexec_py.policy import evaluate

ALICE = "/DC=org/DC=test/CN=Alice"
BOB = "/DC=org/DC=test/CN=Bob"


@pytest.fixture
def site(trusted_tmp, gxp_accounts):
    write_file(trusted_tmp / "grid-mapfile",
               f'"{ALICE}" gxplocal1\n"{BOB}" gxplocal2\n')
    write_file(trusted_tmp / "bob-only", f'"{BOB}" gxplocal2\n')
    return trusted_tmp


def db(site, body: str) -> str:
    head = (f'alice = "lcmaps_localaccount.mod -gridmap {site}/grid-mapfile"\n'
            f'bobonly = "lcmaps_localaccount.mod -gridmap {site}/bob-only"\n'
            'good = "lcmaps_dummy_good.mod"\nbad = "lcmaps_dummy_bad.mod"\n')
    return str(write_file(site / "lcmaps.db", head + body))


def test_success_branch_runs_and_ends_successfully(site):
    m = evaluate(make_request(ALICE), lcmaps_db_file=db(site, "p:\nalice -> good | bad\n"))
    assert (m.username, m.policy) == ("gxplocal1", "p")
    assert m.sgids == (47200, 47201)
    assert [s for _p, s, _ok, _r in m.trace] == ["alice", "good"]


def test_failure_branch_then_terminal_state(site):
    m = evaluate(make_request(BOB), lcmaps_db_file=db(site, "p:\nbad -> good | bobonly\n"))
    assert m.username == "gxplocal2"
    assert [s for _p, s, _ok, _r in m.trace] == ["bad", "bobonly"]


def test_failure_without_branch_falls_through_with_reset_store(site):
    # Policy p maps Alice, then fails at 'bad' without an alternative: p's data must be gone.
    path = db(site, "p:\nalice -> bad\nq:\nbobonly -> good\n")
    with pytest.raises(AuthorizationError) as exc:
        evaluate(make_request(ALICE), lcmaps_db_file=path)
    assert "no policy yielded a mapping" in exc.value.message
    m = evaluate(make_request(BOB), lcmaps_db_file=path)
    assert (m.username, m.policy, m.sgids) == ("gxplocal2", "q", (47200,))


def test_negated_rule_success_ends_chain(site):
    path = db(site, "p:\n~bobonly -> bad\n")
    assert evaluate(make_request(BOB), lcmaps_db_file=path).username == "gxplocal2"
    with pytest.raises(AuthorizationError):
        evaluate(make_request(ALICE), lcmaps_db_file=path)


def test_success_without_uid_is_denied(site):
    with pytest.raises(AuthorizationError, match="mapped no uid"):
        evaluate(make_request(ALICE), lcmaps_db_file=db(site, "p:\n~good -> bad\n"))


def test_selection_filters_but_keeps_file_order(site):
    path = db(site, "first:\nalice -> good\nsecond:\nbobonly -> good\nthird:\nbad -> good\n")
    m = evaluate(make_request(BOB), lcmaps_db_file=path, policy_names=["third", "second"])
    assert m.policy == "second"
    m = evaluate(make_request(ALICE), lcmaps_db_file=path, policy_names=["second:first"])
    assert m.policy == "first"
    with pytest.raises(AuthorizationError):
        evaluate(make_request(ALICE), lcmaps_db_file=path, policy_names=["second"])


def test_unknown_policy_name_is_a_site_error(site):
    with pytest.raises(PolicyConfigError, match="'nosuch' not found"):
        evaluate(make_request(ALICE), lcmaps_db_file=db(site, "p:\nalice -> good\n"),
                 policy_names=["nosuch"])


def test_every_plugin_is_initialised_even_in_unselected_policies(site):
    body = ('broken = "lcmaps_localaccount.mod -gridmap /nonexistent/grid-mapfile"\n'
            "p:\nalice -> good\nunused:\nbroken -> good\n")
    with pytest.raises(PolicyConfigError, match="broken"):
        evaluate(make_request(ALICE), lcmaps_db_file=db(site, body), policy_names=["p"])


def test_unknown_option_is_an_init_failure(site):
    body = 'x = "lcmaps_localaccount.mod -bogus"\np:\nx -> good\n'
    with pytest.raises(PolicyConfigError, match="unknown option '-bogus'"):
        evaluate(make_request(ALICE), lcmaps_db_file=db(site, body))


def test_untrusted_policy_file_is_refused(site):
    path = db(site, "p:\nalice -> good\n")
    import os

    os.chmod(path, 0o666)
    with pytest.raises(PolicyConfigError.__mro__[1], match="writable"):
        evaluate(make_request(ALICE), lcmaps_db_file=path)


def test_cred_final_line_format(site):
    m = evaluate(make_request(ALICE), lcmaps_db_file=db(site, "p:\nalice -> good\n"))
    assert m.cred_final == [
        f"LCMAPS CRED FINAL: DN:\"{ALICE}\"->mapped uid:'47210',pgid:'47200',"
        f"sgid:'47200',sgid:'47201'"]
