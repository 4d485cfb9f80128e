"""Everything the launch step needs, decided before any process is created.

Runs as: root. Trusts: values already validated by earlier steps. Hot path: yes.
"""

from __future__ import annotations


class LaunchPlan:
    """The payload to start and how: command, identity, environment, proxy, cwd, mode."""

    __slots__ = ("command", "uid", "gid", "groups", "switch", "env", "cwd", "umask",
                 "proxy_path", "proxy_data", "lock", "no_symlink", "linger", "grace",
                 "epilogue", "epilogue_user", "epilogue_group", "epilogue_timeout",
                 "invoker_pid", "tracking")

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.pop(name, None))
        if fields:
            raise TypeError(f"unknown launch fields: {sorted(fields)}")
