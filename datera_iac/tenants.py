"""Tenant paths: the one place that says how a tenant is written, joined and confined.

A leaf (imports only :mod:`datera_iac.errors`): the shared configuration, the DSP client
and every resource kind normalize tenants here, so ``x``, ``root/x`` and ``/root/x`` are one
tenant everywhere, and an id names its tenant the same way in every kind.

* :func:`tenant_path`: the configuration's and the client's normalization (``ValueError``).
* :func:`normalize_tenant`: a user's input (``InputError`` naming the kind and field; the
  DSP's stricter name rule).
* :func:`join_id` / :func:`split_id`: tenant-qualified ids.
* :func:`tenant_boundary` / :func:`check_tenant`: the subtree a configuration confines to.
"""

from __future__ import annotations

import re
from typing import Any

from datera_iac.errors import InputError

__all__ = [
    "ROOT",
    "TENANT_SEGMENT_RE",
    "check_tenant",
    "join_id",
    "normalize_tenant",
    "split_id",
    "tenant_boundary",
    "tenant_name",
    "tenant_parent",
    "tenant_path",
]

#: The root tenant's path.
ROOT = "/root"

#: One segment of a tenant path (the DSP's tenant route regex, plus the POST name rule).
TENANT_SEGMENT_RE = re.compile(
    r"^(?:[A-Za-z_][A-Za-z0-9_.\-]{2,63}|[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})$"
)
#: What the configuration accepts in ``datera_tenant_id`` (Cinder's looser rule).
_CONFIG_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def tenant_path(value: str) -> str:
    """The one normalization of a tenant: ``x`` -> ``/root/x``; ``/root/x`` stays;
    ``root`` / ``/root`` -> ``/root``; ``a/b`` -> ``/root/a/b``.

    Unlike the Cinder driver, a name that merely *contains* "root" is not mapped to /root.
    Raises ValueError for a segment with characters a DSP tenant name cannot hold.
    """
    text = value.strip()
    segments = [s for s in text.split("/") if s]
    if segments and segments[0] == "root":
        segments = segments[1:]
    for seg in segments:
        if not _CONFIG_SEGMENT_RE.match(seg):
            raise ValueError(
                f"tenant name segment {seg!r} may hold only letters, digits, '_', '-', '.'"
            )
    return "/".join([ROOT, *segments])


def normalize_tenant(value: str | None, *, kind: str = "", field: str = "tenant") -> str | None:
    """One spelling for a tenant: ``x``, ``root/x``, ``/root/x`` and ``/root/x/`` all become
    ``/root/x``; ``root`` and ``/root`` become ``/root``; None stays None.

    Raises InputError for an empty segment or one the DSP would refuse."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(
            f"must be a string, got {type(value).__name__}", kind=kind or None, field=field,
            fix="write a tenant name like 'team-a' or a path like '/root/team-a'",
        )
    text = value.strip().strip("/")
    parts = text.split("/") if text else []
    if parts and parts[0] == "root":
        parts = parts[1:]
    for seg in parts:
        if not TENANT_SEGMENT_RE.fullmatch(seg):
            raise InputError(
                f"{value!r} is not a valid tenant path (segment {seg!r})", kind=kind or None,
                field=field,
                fix="each tenant name is 3-64 letters, digits, '_', '-' or '.', starting "
                "with a letter or '_' (e.g. '/root/team-a')",
            )
    return "/".join([ROOT, *parts]) if parts else ROOT


def tenant_name(path: str) -> str:
    """The last segment of a tenant path ("/root/a/b" -> "b")."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def tenant_parent(path: str) -> str:
    """The parent of a tenant path ("/root/a/b" -> "/root/a"; "/root" -> "/root")."""
    head = path.rstrip("/").rsplit("/", 1)[0]
    return head or ROOT


def join_id(tenant: str, leaf: str) -> str:
    """A tenant-qualified id: ``/root/x`` + ``<ai id>`` -> ``/root/x/<ai id>``."""
    return f"{tenant.rstrip('/')}/{leaf}"


def split_id(value: str, default_tenant: str | None) -> tuple[str | None, str]:
    """Split a tenant-qualified id into (tenant, leaf).

    ``/root/x/<leaf>`` -> (``/root/x``, leaf); a bare ``<leaf>`` -> (default_tenant, leaf);
    ``x:<leaf>`` (Cinder's ``tenant:`` prefix) -> (``/root/x``, leaf)."""
    text = value.strip()
    if text.startswith("/"):
        head, _, leaf = text.rstrip("/").rpartition("/")
        return (normalize_tenant(head) if head else default_tenant), leaf
    if ":" in text:
        head, _, leaf = text.partition(":")
        return normalize_tenant(head), leaf
    return default_tenant, text


def tenant_boundary(ctx: Any) -> str | None:
    """The tenant subtree a context may act in, or None when it is not confined.

    A configuration whose ``datera_tenant_id`` names a tenant (``team-a``) confines every
    operation to that tenant and the tenants below it: an id or a ``tenant`` naming
    another subtree is refused before any call. ``None`` (the root tenant) and ``Map``
    (one tenant per OpenStack project) are not confined: the credentials decide."""
    config = getattr(ctx, "config", None)
    if config is None or getattr(config, "tenant_mode", "none") != "name":
        return None
    return normalize_tenant(config.tenant_for())


def check_tenant(ctx: Any, tenant: str, *, kind: str, field: str) -> str:
    """Return ``tenant`` when the context may act in it; raise InputError otherwise."""
    bound = tenant_boundary(ctx)
    if bound is not None and tenant != bound and not tenant.startswith(bound.rstrip("/") + "/"):
        raise InputError(
            f"{tenant!r} is outside the configured tenant {bound!r}", kind=kind, field=field,
            fix=f"use an id or tenant under {bound}, or change datera_tenant_id",
        )
    return tenant
