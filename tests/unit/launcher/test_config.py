"""glexec.conf parsing: original keys, defaults, strict validation, the shipped sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from glexec_py.config import KEYS, parse_config, render_sample
from glexec_py.errors import SiteError

REPO = Path(__file__).resolve().parents[3]


def test_shipped_sample_is_generated_from_the_key_table():
    assert (REPO / "etc" / "glexec.conf").read_text() == render_sample()


def test_defaults_when_only_the_section_is_given():
    site = parse_config("[glexec]\n")
    assert site.linger is True
    assert site.create_target_proxy is True
    assert site.user_white_list == ()
    assert site.log_destination == "syslog"
    assert site.log_level == 3
    assert site.target_lock_mechanism == "flock"
    assert site.epilogue_timeout == 300


def test_original_keys_as_sites_write_them():
    text = """
# OSG-style
[glexec]
linger = no
user_white_list = .pilot, cmsprod , atlas
preserve_env_variables = CONDOR_INHERIT, _CONDOR_EXECUTE, SLURM_*
create_target_proxy = no
log_destination = file
log_file = /var/log/glexec/glexec_log
log_level = 5
silent_logging = no
syslog_facility = LOG_LOCAL1
lcmaps_db_file = /etc/lcmaps.db
lcmaps_get_account_policy = glexec:glexec_fallback
lcmaps_log_file = /var/log/glexec/lcas_lcmaps.log
lcmaps_debug_level = 3
use_lcas = no
lock_mechanism = fcntl
tracking_gid_ranges = 65000-65049, 20000
"""
    site = parse_config(text)
    assert site.linger is False
    assert site.user_white_list == (".pilot", "cmsprod", "atlas")
    assert site.preserve_env_variables == ("CONDOR_INHERIT", "_CONDOR_EXECUTE", "SLURM_*")
    assert site.lcmaps_get_account_policy == ("glexec", "glexec_fallback")
    assert site.target_lock_mechanism == "fcntl"
    assert site.tracking_gid_ranges == ((65000, 65049), (20000, 20000))


@pytest.mark.parametrize("text", [
    "[glexec]\n[dummy]\n",
    "[glexec]\nno_such_key = 1\n",
    "[glexec]\nlinger = maybe\n",
    "[glexec]\nlinger = yes\nlinger = no\n",
    "linger = yes\n",
    "",
    "[glexec]\nlog_level = 9\n",
    "[glexec]\nlog_file = relative/path\n",
    "[glexec]\npreserve_env_variables = MALLOC_CHECK_\n",
    "[glexec]\npreserve_env_variables = malloc_perturb_\n",
    "[glexec]\npreserve_env_variables = A=B\n",
    "[glexec]\nsyslog_facility = LOG_KERN\n",
    "[glexec]\ntracking_gid_ranges = 10-5\n",
    "[glexec]\nlock_mechanism = flock\ntarget_lock_mechanism = fcntl\n",
    "[glexec]\nthis line has no equals sign\n",
    "[glexec\n",
])
def test_strict_validation(text):
    with pytest.raises(SiteError):
        parse_config(text, "/etc/glexec.conf")


def test_error_names_the_line():
    with pytest.raises(SiteError, match=r"glexec.conf:3: unknown key 'lingr'"):
        parse_config("[glexec]\n\nlingr = yes\n", "/etc/glexec.conf")


def test_every_key_has_help_and_a_valid_default():
    for key in KEYS:
        assert key.help, key.name
    parse_config("[glexec]\n" + "".join(f"{k.name} = {k.default}\n" for k in KEYS
                                          if k.name != "lock_mechanism"))
