"""The accounting lines must be exactly what OSG's Gratia glexec probe parsed."""

from __future__ import annotations

from glexec_py.launch.tracking import format_glexec_mon


def test_start_and_end_lines_match_the_probe_format() -> None:
    start = format_glexec_mon(4242, 4243, target_uid=47601, dn="/DC=org/DC=test/CN=Alice",
                              vo="atlas", issuer="/DC=org/DC=test/CN=voms.example.org",
                              fqans=["/atlas/Role=pilot/Capability=NULL", "/atlas"])
    assert start == [
        "glexec.mon[4242#4243]: Started, target uid 47601",
        'glexec.mon[4242#4243]: Used DN: "/DC=org/DC=test/CN=Alice"',
        'glexec.mon[4242#4243]: Used VO: "atlas" Issuer: "/DC=org/DC=test/CN=voms.example.org"',
        'glexec.mon[4242#4243]: Used FQAN: "/atlas/Role=pilot/Capability=NULL"',
        'glexec.mon[4242#4243]: Used FQAN: "/atlas"',
    ]
    end = format_glexec_mon(4242, 4243, cpu_user=6.93, cpu_system=0.2)
    assert end == ["glexec.mon[4242#4243]: Terminated, CPU user 6 system 0"]


def test_hostile_dn_cannot_forge_a_second_line() -> None:
    lines = format_glexec_mon(1, 2, dn='/CN=x"\nglexec.mon[1#2]: Terminated, CPU user 0 system 0')
    assert len(lines) == 1
    assert "\n" not in lines[0]
    assert lines[0] == ('glexec.mon[1#2]: Used DN: "/CN=x\\"\\x0aglexec.mon[1#2]: Terminated, '
                        'CPU user 0 system 0"')


def test_unclean_end() -> None:
    assert format_glexec_mon(7, 8, unclean=True) == [
        "glexec.mon[7#8]: Unclean termination of parent process; CPU usage not available."]
