"""The one way the node helper touches a machine: an injectable :class:`Runner`.

Every external command (``iscsiadm``, ``multipath``, ``blockdev``, ``mkfs``...) and every
file access under ``/dev``, ``/sys`` and ``/etc/iscsi`` goes through a runner, so

* tests replace it with a scripted fake and assert the exact argv sequence (os-brick's
  injected executor pattern), and point the roots at a temporary tree;
* a remote node is the same helper over a different runner (:mod:`datera_iac.node.remote`).

Commands are argv lists, never a shell string. Each call states the exit codes it accepts
(``ok_codes``) and a timeout; any other code raises :class:`~datera_iac.errors.CommandFailed`
whose argv, stdout and stderr are already masked: CHAP secrets given as ``secrets=`` and any
``-v`` value that follows a ``-n <...password...>`` key never reach a log or an error.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import attrs

from datera_iac.errors import CommandFailed, NodeError
from datera_iac.secrets import MASK, mask_text

__all__ = [
    "MASK",
    "Result",
    "Runner",
    "LocalRunner",
    "mask_argv",
    "mask_text",
    "TIMEOUT_CODE",
]

log = logging.getLogger(__name__)

#: The pseudo exit code reported when a command was killed at its timeout.
TIMEOUT_CODE = -9

_SECRET_KEY_HINTS = ("password", "passwd", "secret", "pswd")


@attrs.frozen
class Result:
    """What one command did. ``argv`` is the masked argv (safe to print)."""

    argv: tuple[str, ...]
    code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0


def mask_argv(argv: Sequence[str], secrets: Collection[str] = ()) -> list[str]:
    """A copy of ``argv`` safe to log.

    Masks explicit ``secrets`` anywhere, and the value of ``iscsiadm ... -n <key> -v <value>``
    when the key names a password (so a caller that forgot ``secrets=`` still leaks nothing).
    """
    out = [mask_text(a, secrets) for a in argv]
    for i, arg in enumerate(argv):
        if arg in ("-v", "--value") and i >= 2 and argv[i - 2] in ("-n", "--name"):
            key = argv[i - 1].lower()
            if any(h in key for h in _SECRET_KEY_HINTS) and i + 1 < len(out):
                out[i + 1] = MASK
        if "password=" in arg or "password-secret=" in arg:
            out[i] = ",".join(
                p.split("=", 1)[0] + "=" + MASK if p.split("=", 1)[0] == "password" else p
                for p in out[i].split(",")
            )
    return out


class Runner:
    """Base runner: masking, ok-code checks and logging; subclasses execute.

    Subclasses implement :meth:`_execute` (run argv, return code/stdout/stderr) and the file
    primitives. File paths are absolute paths on the target machine; the helper prefixes its
    configurable roots before calling these.
    """

    #: Where this runner acts, for messages ("local", "ssh://root@host:22").
    where: str = "local"

    def run(
        self,
        argv: Sequence[str],
        *,
        ok_codes: Collection[int] = (0,),
        timeout: float = 30.0,
        secrets: Collection[str] = (),
        input: str | None = None,
        meanings: dict[int, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run ``argv``; raise :class:`CommandFailed` unless its exit code is in ``ok_codes``.

        ``meanings`` maps exit codes to a human explanation used in the error text.
        ``env`` adds environment variables (how a secret reaches a tool without argv).
        """
        if isinstance(argv, str):  # a string here is a bug: it would need a shell
            raise TypeError("Runner.run takes an argv list, not a string")
        argv = [str(a) for a in argv]
        shown = mask_argv(argv, secrets)
        log.debug("run [%s]: %s", self.where, " ".join(shown))
        code, out, err = self._execute(argv, timeout=timeout, input=input, env=env)
        result = Result(tuple(shown), code, mask_text(out, secrets), mask_text(err, secrets))
        log.debug("exit %d: %s", code, " ".join(shown))
        if code not in ok_codes:
            meaning = (meanings or {}).get(code)
            if code == TIMEOUT_CODE:
                meaning = f"killed after the {timeout:g}s timeout"
            raise CommandFailed(list(shown), code, result.stderr or result.stdout, meaning)
        return result

    __call__ = run

    # ---- to implement ---------------------------------------------------------------

    def _execute(
        self, argv: list[str], *, timeout: float, input: str | None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_text(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""
        raise NotImplementedError  # pragma: no cover

    def write_text(self, path: str, data: str) -> None:
        raise NotImplementedError  # pragma: no cover

    def exists(self, path: str) -> bool:
        raise NotImplementedError  # pragma: no cover

    def realpath(self, path: str) -> str | None:
        """The resolved path of a link, or None when the link or its target is missing."""
        raise NotImplementedError  # pragma: no cover

    def listdir(self, path: str) -> list[str]:
        """Entry names (sorted); empty when the directory does not exist."""
        raise NotImplementedError  # pragma: no cover

    def makedirs(self, path: str) -> None:
        raise NotImplementedError  # pragma: no cover

    def which(self, program: str) -> bool:
        """Whether ``program`` is installed on the node."""
        raise NotImplementedError  # pragma: no cover


class LocalRunner(Runner):
    """Runs on this machine with :func:`subprocess.run` (``shell=False``)."""

    where = "local"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._env = env

    def _execute(
        self, argv: list[str], *, timeout: float, input: str | None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, str, str]:
        full = None
        if self._env is not None or env:
            full = {**os.environ, **(self._env or {}), **(env or {})}
        try:
            p = subprocess.run(
                argv, shell=False, capture_output=True, text=True, timeout=timeout,
                input=input, env=full, errors="replace",
            )
        except FileNotFoundError:
            raise NodeError(
                f"{argv[0]} is not installed on this node (needed for: {argv[0]} "
                f"{argv[1] if len(argv) > 1 else ''})"
            ) from None
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else ""
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else ""
            return TIMEOUT_CODE, out, err
        return p.returncode, p.stdout, p.stderr

    def read_text(self, path: str) -> str | None:
        try:
            return Path(path).read_text(errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_text(self, path: str, data: str) -> None:
        with open(path, "w") as f:
            f.write(data)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def realpath(self, path: str) -> str | None:
        if not os.path.exists(path):
            return None
        return os.path.realpath(path)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def which(self, program: str) -> bool:
        import shutil

        return shutil.which(program, path=(self._env or {}).get("PATH")) is not None
