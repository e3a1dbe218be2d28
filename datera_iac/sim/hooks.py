"""The data-plane hook: how the simulated control plane tells a real target what changed.

The store calls the hook after every request that changed a storage instance's
``admin_state``, ACL, CHAP auth, a volume's size, or the instance's existence. The node
engineer's ``datera_iac/sim/dataplane.py`` implements it on tgtd; by default nothing
happens. Hooks run on the simulator's event loop thread after the store changed and
before the HTTP answer is sent, so when a client sees 200 the target is already set up.
A hook that raises is logged and ignored: the API state stays authoritative.

The entities passed are the API renderings of the app instance and storage instance with
one difference: ``si_entity["auth"]`` carries the real CHAP secrets instead of "(hidden)",
because a target cannot be configured otherwise. Never log them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Dataplane(Protocol):
    """What a data plane implements."""

    def si_changed(self, tenant: str, ai_entity: dict[str, Any], si_entity: dict[str, Any]) -> None:
        """A storage instance was created or changed (state, ACL, auth, volume size)."""

    def si_deleted(self, tenant: str, ai_id: str, si_name: str) -> None:
        """A storage instance is gone (deleted directly or with its app instance)."""

    def reset(self) -> None:
        """The simulator's store was emptied (``SimServer.reset`` / ``/_sim/reset``): drop
        every target and its data, so no LUN outlives the object it belonged to."""


class NullDataplane:
    """The default: no data plane."""

    def si_changed(self, tenant: str, ai_entity: dict[str, Any], si_entity: dict[str, Any]) -> None:
        return None

    def si_deleted(self, tenant: str, ai_id: str, si_name: str) -> None:
        return None

    def reset(self) -> None:
        return None
