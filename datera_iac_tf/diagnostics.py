"""Exceptions -> Terraform diagnostics. A user error is a diagnostic, never a traceback.

* :class:`InputError` points at the attribute (``path``) so Terraform underlines it.
* :class:`DspError` says which request failed and what the DSP answered.
* :class:`Unreachable`: the first resource's diagnostic says why the DSP is unreachable,
  the others point to it (Terraform shows one diagnostic per resource).
* :class:`WaitTimeout` says what was awaited and which ``timeouts`` key raises the limit.
* Anything else is a provider bug: one diagnostic with the exception type and message,
  the traceback goes to stderr (Terraform's provider log, ``TF_LOG=debug``).

Secret values are scrubbed from every message before it leaves the provider.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable

from tf.utils import Diagnostics

from datera_iac.secrets import SHOWN, mask_text
from datera_iac.errors import (
    ConfigError,
    DateraIacError,
    DspError,
    InputError,
    NotFound,
    Unreachable,
    WaitTimeout,
)

__all__ = ["report", "scrub"]

log = logging.getLogger("datera_iac_tf")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value (3 characters or more) in ``text`` with ``(sensitive)``."""
    return mask_text(text, secrets, mask=SHOWN, min_len=3)


def report(
    diags: Diagnostics,
    exc: BaseException,
    *,
    what: str,
    attributes: Iterable[str] = (),
    secrets: Iterable[str] = (),
    operation: str | None = None,
) -> None:
    """Add one error diagnostic for ``exc`` raised while doing ``what`` (e.g.
    ``"datera_volume create"``). ``attributes`` are the schema's attribute names: an
    InputError whose field is one of them gets an attribute path."""
    secrets = list(secrets)
    msg = scrub(str(exc), secrets)
    if isinstance(exc, InputError):
        root = (exc.field or "").split(".")[0]
        path = [root] if root and root in set(attributes) else None
        label = f"Invalid {exc.field}" if exc.field else "Invalid configuration"
        diags.add_error(f"{what}: {label}", msg, path=path)
    elif isinstance(exc, ConfigError):
        diags.add_error("Invalid Datera provider configuration", msg)
    elif isinstance(exc, Unreachable):
        diags.add_error(f"{what}: DSP unreachable", scrub(exc.per_resource(), secrets))
    elif isinstance(exc, NotFound):
        diags.add_error(f"{what}: not found on the DSP", msg)
    elif isinstance(exc, DspError):
        status = f" (HTTP {exc.status})" if exc.status else ""
        diags.add_error(f"{what}: the DSP refused the request{status}", msg)
    elif isinstance(exc, WaitTimeout):
        hint = (f"Raise the limit with `timeouts = {{ {operation} = \"...\" }}`."
                if operation else "")
        diags.add_error(f"{what}: timed out", f"{msg.rstrip('.')}. {hint}".strip())
    elif isinstance(exc, DateraIacError):
        diags.add_error(f"{what}: failed", msg)
    else:
        log.error("internal error during %s:\n%s", what,
                  scrub("".join(traceback.format_exception(exc)), secrets))
        diags.add_error(
            f"{what}: internal error in terraform-provider-datera",
            f"{type(exc).__name__}: {msg}. This is a provider bug; run with TF_LOG=debug "
            "for the provider's traceback.",
        )
