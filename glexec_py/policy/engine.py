"""Run a compiled policy with LCMAPS' state machine; initialise every plugin up front.

Runs as: root. Trusts: the compiled policy (from trusted files) and the plugin classes the
registry loaded. Hot path: yes.

LCMAPS semantics (``evaluationmanager.c``, ``pdl_main.c``): evaluation starts at the first rule of
the first (selected) policy. Success moves to the rule's success branch; no success branch (a
``~A`` rule, or a terminal state) ends the whole evaluation successfully. Failure moves to the
failure branch; without one, evaluation jumps to the first rule of the *next* selected policy in
file order with an emptied credential store; after the last policy it fails. A selection list
filters policies but never reorders them. Every plugin of every policy is initialised before
anything runs, and one initialisation failure is fatal (202). A plugin *failure* is data
(fall through); a plugin *exception* is an error (202), never confused with a failure.
"""

from __future__ import annotations

from glexec_py.errors import AuthorizationError, GlexecError, SiteError
from glexec_py.plugin_api import PolicyConfigError, Result
from glexec_py.policy.credstore import CredStore
from glexec_py.policy.registry import load_plugin_class

TYPE_CHECKING = False  # typing itself is not imported at run time (hot path)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from glexec_py.plugin_api import Plugin, Request
    from glexec_py.policy.model import CompiledPolicy

MAX_STEPS = 10000  # cycles are refused at compile time; this only bounds a corrupted cache


class Outcome:
    """What one evaluation produced: the policy that succeeded, its store, and the trace."""

    __slots__ = ("policy", "store", "trace")

    def __init__(self, policy: str | None, store: CredStore | None,
                 trace: list[tuple[str, str, bool, str]]) -> None:
        self.policy = policy
        self.store = store
        self.trace = trace


class Engine:
    """A compiled policy with its plugins configured (LCMAPS ``lcmaps_init``)."""

    __slots__ = ("compiled", "plugins")

    def __init__(self, compiled: CompiledPolicy) -> None:
        self.compiled = compiled
        self.plugins: dict[str, Plugin] = {}
        instances: dict[tuple[str, tuple[str, ...]], Plugin] = {}
        for state, (name, _module, args) in compiled.states.items():
            key = (name, tuple(args))
            plugin = instances.get(key)
            if plugin is None:
                plugin = configure_plugin(name, args, state)
                instances[key] = plugin
            self.plugins[state] = plugin

    def select(self, policy_names: Sequence[str]) -> list[tuple]:
        if not policy_names:
            return list(self.compiled.policies)
        known = set(self.compiled.policy_names())
        missing = [n for n in policy_names if n not in known]
        if missing:
            raise PolicyConfigError(f"{self.compiled.source}: policy "
                                    f"{', '.join(repr(m) for m in missing)} not found")
        wanted = set(policy_names)
        return [p for p in self.compiled.policies if p[0] in wanted]

    def run(self, request: Request, policy_names: Sequence[str] = (),
            mode: str = "run") -> Outcome:
        trace: list[tuple[str, str, bool, str]] = []
        steps = 0
        for name, start, table in self.select(policy_names):
            store = CredStore(request.dn)
            state: str | None = start
            while state is not None:
                steps += 1
                if steps > MAX_STEPS:
                    raise SiteError(f"policy {name}: evaluation does not terminate")
                result = self._run_state(state, request, store, mode)
                trace.append((name, state, result.ok, result.reason))
                branches = table.get(state)
                if result.ok:
                    store.apply(result, state)
                    nxt = branches[0] if branches else None
                    if nxt is None:
                        return Outcome(name, store, trace)
                    state = nxt
                else:
                    state = branches[1] if branches else None
        return Outcome(None, None, trace)

    def _run_state(self, state: str, request: Request, store: CredStore, mode: str) -> Result:
        plugin = self.plugins[state]
        try:
            if mode == "verify":
                result = plugin.verify(request, store.view())
            else:
                result = plugin.run(request, store.view())
        except GlexecError:
            raise
        except Exception as e:  # noqa: BLE001 - a plugin bug is a site error, not a denial
            raise SiteError(f"plugin {state} failed: {type(e).__name__}: {e}")
        if not isinstance(result, Result):
            raise SiteError(f"plugin {state} returned {type(result).__name__}, not a Result")
        return result


def configure_plugin(name: str, args: Sequence[str], state: str) -> Plugin:
    """Load, instantiate and configure one plugin; any problem is PolicyConfigError (202)."""
    cls = load_plugin_class(name)
    try:
        plugin = cls()
        plugin.configure(list(args))
    except PolicyConfigError:
        raise
    except GlexecError as e:
        raise PolicyConfigError(f"plugin {state} ({name}): {e.message}")
    except Exception as e:  # noqa: BLE001 - LCMAPS: any init failure aborts initialisation
        raise PolicyConfigError(f"plugin {state} ({name}): initialisation failed: "
                                f"{type(e).__name__}: {e}")
    return plugin


def deny(outcome: Outcome, message: str) -> AuthorizationError:
    steps = "; ".join(f"{p}/{s}:{'ok' if ok else 'fail'}{'(' + r + ')' if r else ''}"
                      for p, s, ok, r in outcome.trace)
    return AuthorizationError(message, detail=steps)
