"""The built-in plugins and the one static table that names them.

Runs as: root (launcher) or anyone (``glexec-policy``). Trusts: only this package's own modules.
Hot path: yes (the engine imports exactly the modules a policy names, through ``BUILTIN``).

``BUILTIN`` maps a plugin name to ``"module:Class"``. A module reference from lcmaps.db or lcas.db
(``lcmaps_poolaccount.mod``, ``/usr/lib/lcmaps/liblcmaps_poolaccount.so``, ``lcas_userban.mod``)
is reduced to its plugin name by ``glexec_py.policy.registry.plugin_name_for``: directory,
``lib``/``lcmaps_``/``lcas_`` prefixes and ``.mod``/``.so`` suffixes are dropped, then ``ALIASES``
applies. Nothing is ever loaded from a path written in a policy file.
"""

from __future__ import annotations

BUILTIN: dict[str, str] = {
    "localaccount": "glexec_py.plugins.localaccount:LocalAccountPlugin",
    "poolaccount": "glexec_py.plugins.poolaccount:PoolAccountPlugin",
    "voms_localgroup": "glexec_py.plugins.voms_localgroup:VomsLocalGroupPlugin",
    "voms_localaccount": "glexec_py.plugins.voms_localaccount:VomsLocalAccountPlugin",
    "voms_poolaccount": "glexec_py.plugins.voms_poolaccount:VomsPoolAccountPlugin",
    "ban_dn": "glexec_py.plugins.ban_dn:BanDnPlugin",
    "posix_enf": "glexec_py.plugins.posix_enf:PosixEnfPlugin",
    "good": "glexec_py.plugins.dummy:GoodPlugin",
    "bad": "glexec_py.plugins.dummy:BadPlugin",
    "userallow": "glexec_py.plugins.userallow:UserAllowPlugin",
    "userban": "glexec_py.plugins.userban:UserBanPlugin",
    "timeslots": "glexec_py.plugins.timeslots:TimeslotsPlugin",
    "rewrite_username": "glexec_py.plugins.rewrite_username:RewriteUsernamePlugin",
    "external": "glexec_py.plugins.external:ExternalPlugin",
    "verify_proxy": "glexec_py.plugins.verify_proxy:VerifyProxyPlugin",
    "condor_update": "glexec_py.plugins.condor_update:CondorUpdatePlugin",
    "tracking": "glexec_py.plugins.tracking:TrackingPlugin",
    "tracking_groupid": "glexec_py.plugins.tracking:TrackingGroupIdPlugin",
}

# Further spellings sites use, reduced as described above. OSG ships copies of a module under a
# second name because LCMAPS cannot load one module twice; glexec-py just instantiates it twice.
ALIASES: dict[str, str] = {
    "dummy_good": "good",
    "dummy_bad": "bad",
    "verify_proxy2": "verify_proxy",
    "voms_localaccount2": "voms_localaccount",
    "voms_poolaccount2": "voms_poolaccount",
    "localaccount2": "localaccount",
    "poolaccount2": "poolaccount",
    "gridmapfile": "localaccount",
    "condor_updates": "condor_update",
    "process_tracking": "tracking",
    "glexec_tracking": "tracking",
    "posix": "posix_enf",
}
