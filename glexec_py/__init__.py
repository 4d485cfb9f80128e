"""glexec-py: a gLExec-compatible privileged identity-switch launcher for grid pilot jobs.

Runs as: anyone. Hot path: yes (keep this module import-free).
"""

__version__ = "0.1.0"
