"""Property tests: malformed lcmaps.db, YAML policies and grid-mapfiles never escape as a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glexec_py.plugin_api import PolicyConfigError
from glexec_py.policy.lcmaps_db import parse_lcmaps_db
from glexec_py.policy.mapfile import parse_mapfile
from glexec_py.policy.model import compile_policy
from glexec_py.policy.yaml_form import parse_yaml_policy

pytestmark = pytest.mark.fuzz

TOKENS = ["a", "b", "good", "lcmaps_dummy_good.mod", "path", "=", "->", "|", "~", ":", '"',
          '"x y"', "\\", "#", "\n", " ", "\t", "-", "p:", "q:", "\x00", "\r", "é", '\\"']
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_lcmaps_db_from_tokens(parts):
    text = "".join(parts)
    try:
        pf = parse_lcmaps_db(text.encode("utf-8"), "/f")
        compile_policy(pf)
    except PolicyConfigError as e:
        assert str(e).startswith("/f:")


@SETTINGS
@given(st.binary(max_size=300))
def test_lcmaps_db_from_bytes(data):
    try:
        parse_lcmaps_db(data, "/f")
    except PolicyConfigError as e:
        assert str(e).startswith("/f:")


@SETTINGS
@given(st.binary(max_size=400) | st.text(alphabet='"\\ \t,#\n\r/=abc.\x00', max_size=200))
def test_mapfile(data):
    if isinstance(data, str):
        data = data.encode()
    try:
        for entry in parse_mapfile(data, "/m"):
            assert entry.line >= 1 and "\n" not in entry.subject
    except PolicyConfigError as e:
        assert str(e).startswith("/m:")


@SETTINGS
@given(st.text(alphabet="glexec_policy:1\n -{}[],\"'&*!?#runo_sucesfailmd", max_size=200))
def test_yaml_policy(text):
    try:
        parse_yaml_policy(text.encode(), "/y.yaml")
    except PolicyConfigError as e:
        assert str(e).startswith("/y.yaml")
