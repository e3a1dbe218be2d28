"""A remote node over SSH (paramiko): the same Runner interface, so the helper, its
command sequences and its masking are identical for local and remote nodes.

A node is written ``ssh://user@host:port`` with optional query parameters:
``key=<private key file>`` and ``known_hosts=<file>`` (default ``~/.ssh/known_hosts``).
An unknown or changed host key is refused (paramiko's RejectPolicy): attaching storage to
a host you have not verified is not something to do silently.

SSH runs commands through the remote user's shell; argv elements are quoted with
:func:`shlex.quote` one by one, so an argument is never split or interpreted. Files are
read and written over SFTP.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import socket
import stat
import threading
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

from datera_iac.errors import InputError, NodeError
from datera_iac.node.runner import TIMEOUT_CODE, Runner

__all__ = ["NodeUrl", "parse_node", "SshRunner"]


@attrs.frozen
class NodeUrl:
    """A parsed ``ssh://user@host:port?key=...&known_hosts=...``."""

    user: str
    host: str
    port: int = 22
    key_file: str | None = None
    known_hosts: str | None = None

    def __str__(self) -> str:
        q = []
        if self.key_file:
            q.append(f"key={self.key_file}")
        if self.known_hosts:
            q.append(f"known_hosts={self.known_hosts}")
        return f"ssh://{self.user}@{self.host}:{self.port}" + ("?" + "&".join(q) if q else "")


def parse_node(value: str, *, field: str = "node") -> NodeUrl | None:
    """None for the local node ("local" or empty); a NodeUrl for ``ssh://``; InputError
    for anything else. Passwords in the URL are refused (they would land in state)."""
    fix = "write the node as 'local' or ssh://user@host[:port][?key=<file>]"
    if value and any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise InputError(f"node {value!r} holds whitespace or control characters",
                         kind="NodeAttachment", field=field, fix=fix)
    text = value or "local"
    if text == "local":
        return None
    parts = urlsplit(text)
    if parts.scheme != "ssh" or not parts.hostname:
        raise InputError(f"node {value!r} is not 'local' or an ssh:// URL",
                         kind="NodeAttachment", field=field, fix=fix)
    if parts.password:
        raise InputError("a password in the node URL would be stored in state",
                         kind="NodeAttachment", field=field,
                         fix="use key authentication (?key=<private key file>) or an agent")
    try:
        port = parts.port or 22
    except ValueError:
        raise InputError(f"node {value!r} has an invalid port", kind="NodeAttachment",
                         field=field, fix=fix) from None
    q = parse_qs(parts.query)
    unknown = set(q) - {"key", "known_hosts"}
    if unknown:
        raise InputError(f"unknown node URL parameter(s) {', '.join(sorted(unknown))}",
                         kind="NodeAttachment", field=field, fix="allowed: key, known_hosts")
    return NodeUrl(
        user=unquote(parts.username or "root"), host=parts.hostname, port=port,
        key_file=q["key"][0] if "key" in q else None,
        known_hosts=q["known_hosts"][0] if "known_hosts" in q else None,
    )


class SshRunner(Runner):
    """Runs commands and file operations on a remote node over one SSH connection."""

    def __init__(self, node: NodeUrl, *, connect_timeout: float = 15.0) -> None:
        self.node = node
        self.where = f"ssh://{node.user}@{node.host}:{node.port}"
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._sftp: Any = None
        self._lock = threading.Lock()

    # ---- connection -------------------------------------------------------------------

    def _connect(self) -> Any:
        with self._lock:
            if self._client is not None:
                return self._client
            import paramiko  # type: ignore[import-untyped]

            client = paramiko.SSHClient()
            known = self.node.known_hosts or os.path.expanduser("~/.ssh/known_hosts")
            if os.path.exists(known):
                client.load_host_keys(known)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                client.connect(
                    self.node.host, port=self.node.port, username=self.node.user,
                    key_filename=self.node.key_file, timeout=self.connect_timeout,
                    banner_timeout=self.connect_timeout, auth_timeout=self.connect_timeout,
                    look_for_keys=self.node.key_file is None, allow_agent=True,
                )
            except paramiko.SSHException as e:
                client.close()
                raise NodeError(f"cannot connect to {self.where}: {e} (host keys from "
                                f"{known})") from None
            except OSError as e:
                client.close()
                raise NodeError(f"cannot connect to {self.where}: {e}") from None
            self._client = client
            return client

    def sftp(self) -> Any:
        if self._sftp is None:
            self._sftp = self._connect().open_sftp()
        return self._sftp

    def close(self) -> None:
        with self._lock:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> "SshRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- commands ----------------------------------------------------------------------

    def _execute(self, argv: list[str], *, timeout: float, input: str | None,
                 env: Any = None) -> tuple[int, str, str]:
        if env:
            raise NodeError(f"environment variables cannot be passed to {self.where} "
                            "(sshd drops them unless AcceptEnv allows it)")

        client = self._connect()
        command = " ".join(shlex.quote(a) for a in argv)
        chan = client.get_transport().open_session(timeout=self.connect_timeout)
        chan.settimeout(timeout)
        try:
            chan.exec_command(command)
            if input is not None:
                chan.sendall(input.encode())
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            while True:
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                elif chan.exit_status_ready() and (chan.eof_received or chan.closed):
                    # sshd may send the exit status before the command's last output:
                    # done only at EOF (it follows the data); drain what came meanwhile
                    while chan.recv_ready():
                        out += chan.recv(65536)
                    while chan.recv_stderr_ready():
                        err += chan.recv_stderr(65536)
                    break
                elif time.monotonic() > deadline:
                    return TIMEOUT_CODE, out.decode(errors="replace"), err.decode(
                        errors="replace")
                else:
                    time.sleep(0.005)
            code = chan.recv_exit_status()
        except socket.timeout:
            return TIMEOUT_CODE, "", ""
        finally:
            chan.close()
        text = err.decode(errors="replace")
        if code == 127 and ("not found" in text or "No such file" in text):
            raise NodeError(f"{argv[0]} is not installed on {self.where}")
        return code, out.decode(errors="replace"), err.decode(errors="replace")

    # ---- files -------------------------------------------------------------------------

    def read_text(self, path: str) -> str | None:
        try:
            with self.sftp().open(path, "r") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return None
        except OSError:
            return None

    def write_text(self, path: str, data: str) -> None:
        with self.sftp().open(path, "w") as f:
            f.write(data.encode())

    def exists(self, path: str) -> bool:
        try:
            self.sftp().stat(path)
            return True
        except OSError:
            return False

    def realpath(self, path: str) -> str | None:
        if not self.exists(path):
            return None
        sftp = self.sftp()
        # SFTP's realpath does not follow symlinks everywhere; resolve link by link.
        current = path
        for _ in range(40):
            try:
                st = sftp.lstat(current)
            except OSError:
                return None
            if not stat.S_ISLNK(st.st_mode):
                return sftp.normalize(current)
            target = sftp.readlink(current)
            if not target.startswith("/"):
                target = posixpath.join(posixpath.dirname(current), target)
            current = posixpath.normpath(target)
        return None

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(self.sftp().listdir(path))
        except OSError:
            return []

    def makedirs(self, path: str) -> None:
        self.run(["mkdir", "-p", path])

    def which(self, program: str) -> bool:
        res = self.run(["sh", "-c", 'command -v "$1"', "which", program],
                       ok_codes=range(0, 256))
        return res.code == 0
