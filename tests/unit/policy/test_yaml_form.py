"""The YAML policy form: safe loading, strictness, and the same meaning as lcmaps.db."""

from __future__ import annotations

from pathlib import Path

import pytest

from glexec_py.plugin_api import PolicyConfigError
from glexec_py.policy.lcmaps_db import parse_lcmaps_db
from glexec_py.policy.yaml_form import parse_yaml_policy, render_yaml_policy
from glexec_py.tools.policy import describe

ETC = Path(__file__).resolve().parents[3] / "etc"

GOOD = b"""\
glexec_policy: 1
modules:
  local: {module: lcmaps_localaccount.mod, args: [-gridmap, "/etc/a b"]}
  on: {module: lcmaps_dummy_good.mod}
policies:
  - name: p
    rules:
      - {run: local, on_success: on}
      - {run: on, on_failure: local2}
"""


def test_yaml_maps_to_lcmaps_rules_and_keeps_words_as_written():
    pf = parse_yaml_policy(GOOD, "/y.yaml")
    assert "on" in pf.variables  # not True
    assert [r.as_lcmaps() for r in pf.policies[0].rules] == ["local -> on", "~on -> local2"]
    assert pf.variables["local"].value == 'lcmaps_localaccount.mod -gridmap "/etc/a b"'


@pytest.mark.parametrize(("text", "message"), [
    (b"glexec_policy: 1\nglexec_policy: 1\npolicies: []\n", "2:1: duplicate key"),
    (b"glexec_policy: 1\npolicies: !!python/object/apply:os.system [id]\n", "not allowed"),
    (b"glexec_policy: 1\nx: &a 1\npolicies: *a\n", "anchors and aliases"),
    (b"glexec_policy: 01\npolicies: []\n", "only glexec_policy: 1"),
    (b"glexec_policy: 1\npolicies:\n  - {name: p, rules: [{run: a}]}\n", "needs on_success"),
    (b"glexec_policy: 1\npolicies:\n  - {name: p, rules: [{run: a-b, on_success: c}]}\n",
     "state names"),
    (b"glexec_policy: 1\npolicies:\n  - {name: p, rules: [{run: a, on_success: a}]}\n",
     "infinite loop"),
    (b"glexec_policy: 1\npolicies: [\n", "YAML syntax error"),
    (b"", "empty"),
])
def test_yaml_errors(text, message):
    with pytest.raises(PolicyConfigError, match=message):
        parse_yaml_policy(text, "/y.yaml")


@pytest.mark.parametrize("name", ["gridmapfile", "pool", "voms-pool", "declare-only"])
def test_samples_in_both_forms_mean_the_same(name):
    db = parse_lcmaps_db((ETC / "lcmaps" / f"lcmaps-{name}.db").read_bytes(), "db")
    yml = parse_yaml_policy((ETC / "policy" / f"{name}.yaml").read_bytes(), "y.yaml")
    assert describe(db) == describe(yml)
    again = parse_yaml_policy(render_yaml_policy(db).encode(), "r.yaml")
    assert describe(again) == describe(db)
