"""The simulator's data plane: every online storage instance served as a real iSCSI target.

When ``tgtd`` (apt ``tgt``) is installed, :class:`TgtDataPlane` runs its *own* tgtd
instance (own control port, own iSCSI port on each portal IP, all on 127.0.0.0/8) and keeps
it in step with the simulator's store through two hooks the store calls:

* ``si_changed(tenant, ai_entity, si_entity)`` after any change of a storage instance, its
  app_instance's admin_state, its ACL, CHAP or volumes;
* ``si_deleted(tenant, ai_id, si_name)`` when it is gone.

Each online SI becomes one target (IQN = ``si.access.iqn``) with one file-backed LUN per
volume: a sparse file of the volume's size under ``data_dir``, with the inquiry data of a
Datera LUN (vendor ``DATERA``, product ``IBLOCK``, unit serial = the volume uuid without
dashes). The ACL is bound by initiator IQN (``access_control_mode allow_all`` binds ALL),
CHAP accounts follow ``si.auth`` (``chap``: the initiator logs in with target_user_name /
target_pswd; ``mchap`` adds the outgoing account initiator_user_name / initiator_pswd).
Offlining an SI removes its target but keeps the data; deleting it removes the data.

Differences from a real DSP, on purpose and documented: tgt's LUN 0 is its controller, so
the data LUN is **1** (Datera serves LUN 0); tgt's sendtargets lists only the portal the
discovery came in on (Datera lists every VIP); growing a volume re-adds the LU, which tgt
needs to report the new size.

tgtd ignores SIGTERM; :meth:`stop` shuts it down the clean way (targets offline, deleted,
``tgtadm --op delete --mode system``), waits for the PID, and SIGKILLs only as a last
resort. Every wait is bounded.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datera_iac.errors import CommandFailed, NodeError
from datera_iac.files import private_dir
from datera_iac.node.runner import LocalRunner
from datera_iac.secrets import DSP_HIDDEN

__all__ = ["TgtDataPlane", "tgt_available", "DATA_LUN"]

log = logging.getLogger(__name__)

#: tgt reserves LUN 0 for its controller; volumes start at LUN 1.
DATA_LUN = 1
GIB = 1 << 30


def tgt_available() -> str | None:
    """None when tgtd and tgtadm are installed; otherwise the reason they cannot be used."""
    missing = [p for p in ("tgtd", "tgtadm") if shutil.which(p) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install tgt)"
    return None


def _free_port(ips: Sequence[str]) -> int:
    """A TCP port free on every IP in ``ips`` (checked by binding each)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((ips[0], 0))
            port = s.getsockname()[1]
        ok = True
        for ip in ips[1:]:
            with socket.socket() as s:
                try:
                    s.bind((ip, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise NodeError(f"no TCP port free on all of {', '.join(ips)}")


def _iqn_of(path: str) -> str:
    return path.rsplit("/initiators/", 1)[-1] if "/initiators/" in path else path


class TgtDataPlane:
    """A tgtd instance serving the simulator's storage instances.

    ``portals``: the IPs tgtd listens on (they should match the simulator's access IPs).
    ``port``: the iSCSI TCP port (0 = a free one). ``data_dir``: where LUN files live (a
    temporary directory, removed at stop, when not given).
    """

    def __init__(
        self,
        *,
        portals: Sequence[str] = ("127.0.0.1",),
        port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.ips = tuple(portals)
        self.port = port
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.control_port: int | None = None
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._run = LocalRunner()
        self._lock = threading.RLock()
        #: (ai_id, si_name) -> {"tid", "iqn", "luns": {vol_name: (lun, size_gib, path)},
        #:                      "acl": set, "chap": tuple|None, "mchap": tuple|None}
        self._targets: dict[tuple[str, str], dict[str, Any]] = {}
        self._next_tid = 1

    # ---- lifecycle ---------------------------------------------------------------------

    @property
    def portals(self) -> list[str]:
        """The portals as ``ip:port`` (what an initiator connects to)."""
        return [f"{ip}:{self.port}" for ip in self.ips]

    def __enter__(self) -> "TgtDataPlane":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "TgtDataPlane":
        """Start tgtd (retrying on a taken control or TCP port); bounded."""
        why = tgt_available()
        if why:
            raise NodeError(f"the tgtd data plane cannot start: {why}")
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="datera-sim-luns-"))
        private_dir(self.data_dir)
        fixed_port = self.port
        last = ""
        for _ in range(5):
            self.port = fixed_port or _free_port(self.ips)
            self.control_port = random.randint(2000, 32000)  # tgtd accepts up to 32767
            if os.path.exists(f"/run/tgtd/socket.{self.control_port}"):
                continue
            with open(self.data_dir / "tgtd.log", "ab") as logf:
                self._proc = subprocess.Popen(
                    ["tgtd", "-f", "-C", str(self.control_port), "--iscsi",
                     f"portal={self.ips[0]}:{self.port}"],
                    stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self.pid = self._proc.pid
            if self._wait_ready():
                break
            last = (self.data_dir / "tgtd.log").read_text(errors="replace")[-500:]
            self._kill()
        else:
            raise NodeError(f"tgtd did not start: {last.strip()}")
        for ip in self.ips[1:]:
            self._adm("--op", "new", "--mode", "portal", "--param", f"portal={ip}:{self.port}")
        log.info("tgtd pid %s serving %s (control port %s)", self.pid,
                 ", ".join(self.portals), self.control_port)
        return self

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                return False
            res = self._run.run(["tgtadm", "-C", str(self.control_port), "--op", "show",
                                 "--mode", "sys"], ok_codes=range(-64, 256), timeout=5)
            if res.code == 0:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Shut tgtd down cleanly (SIGTERM is ignored by tgtd), by PID; bounded."""
        with self._lock:
            if self._proc is None:
                return
            if self._proc.poll() is None:
                ok = range(-64, 256)
                self._run.run(self._adm_argv("--op", "update", "--mode", "sys", "--name",
                                             "State", "-v", "offline"), ok_codes=ok, timeout=5)
                for t in list(self._targets.values()):
                    self._run.run(self._adm_argv("--lld", "iscsi", "--op", "delete", "--mode",
                                                 "target", "--tid", str(t["tid"]), "--force"),
                                  ok_codes=ok, timeout=5)
                self._run.run(self._adm_argv("--op", "delete", "--mode", "system"),
                              ok_codes=ok, timeout=5)
                try:
                    self._proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    log.warning("tgtd pid %s did not exit; killing it", self.pid)
                    self._kill()
            self._proc.wait(timeout=self.stop_timeout)
            self._proc = None
            for suffix in ("", ".lock"):
                Path(f"/run/tgtd/socket.{self.control_port}{suffix}").unlink(missing_ok=True)
            self._targets.clear()
            if self._own_dir and self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=self.stop_timeout)
        for suffix in ("", ".lock"):
            Path(f"/run/tgtd/socket.{self.control_port}{suffix}").unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---- tgtadm ------------------------------------------------------------------------

    def _adm_argv(self, *args: str) -> list[str]:
        return ["tgtadm", "-C", str(self.control_port), *args]

    def _adm(self, *args: str, secrets: Sequence[str] = (), ok: Sequence[int] = (0,)):
        return self._run.run(self._adm_argv(*args), ok_codes=ok, secrets=secrets, timeout=10)

    def _iscsi(self, *args: str, secrets: Sequence[str] = (), ok: Sequence[int] = (0,)):
        return self._adm("--lld", "iscsi", *args, secrets=secrets, ok=ok)

    # ---- the store's hooks -------------------------------------------------------------

    def si_changed(self, tenant: str, ai_entity: Mapping[str, Any],
                   si_entity: Mapping[str, Any]) -> None:
        """Bring the target of one storage instance in line with the store."""
        key = (str(ai_entity.get("id") or ai_entity.get("name")), str(si_entity["name"]))
        online = (ai_entity.get("admin_state") == "online"
                  and si_entity.get("admin_state", "online") == "online")
        with self._lock:
            if not self.running:
                return
            if not online:
                self._remove(key, keep_data=True)
                return
            try:
                self._sync(key, si_entity, ai_entity)
            except CommandFailed as e:
                log.error("data plane: cannot serve %s/%s: %s", *key, e)
                raise

    def si_deleted(self, tenant: str, ai_id: str, si_name: str) -> None:
        """Remove the target and the data of a deleted storage instance."""
        with self._lock:
            key = (str(ai_id), str(si_name))
            self._remove(key, keep_data=False)
            if self.data_dir is not None:
                shutil.rmtree(self._si_dir(key), ignore_errors=True)

    def reset(self) -> None:
        """Remove every target and its data (the simulator's store was emptied)."""
        with self._lock:
            for key in list(self._targets):
                self._remove(key, keep_data=False)
            if self.data_dir is not None:
                for child in self.data_dir.iterdir():
                    if child.is_dir():
                        shutil.rmtree(child, ignore_errors=True)

    # ---- state sync --------------------------------------------------------------------

    def _si_dir(self, key: tuple[str, str]) -> Path:
        assert self.data_dir is not None
        safe = [re.sub(r"[^A-Za-z0-9_.-]", "_", k) for k in key]
        return self.data_dir / safe[0] / safe[1]

    def lun_path(self, ai_id: str, si_name: str = "storage-1",
                 vol_name: str = "volume-1") -> Path:
        """The backing file of a volume (exists once the volume was served)."""
        return self._si_dir((ai_id, si_name)) / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', vol_name)}.img"

    def target_of(self, ai_id: str, si_name: str = "storage-1") -> dict[str, Any] | None:
        with self._lock:
            t = self._targets.get((str(ai_id), si_name))
            return dict(t) if t else None

    def _clone_source(self, ai: Mapping[str, Any] | None, si_name: str, vol_name: str
                      ) -> Path | None:
        """The backing file a new clone starts from (``clone_src`` of the app_instance:
        an app_instance, volume or snapshot path). A snapshot is approximated by its
        volume's current data: the data plane sees no snapshot events."""
        path = str(((ai or {}).get("clone_src") or {}).get("path") or "")
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "app_instances":
            return None
        src_si = parts[3] if len(parts) >= 4 and parts[2] == "storage_instances" else si_name
        src_vol = parts[5] if len(parts) >= 6 and parts[4] == "volumes" else vol_name
        f = self.lun_path(parts[1], src_si, src_vol)
        return f if f.exists() else None

    def _sync(self, key: tuple[str, str], si: Mapping[str, Any],
              ai: Mapping[str, Any] | None = None) -> None:
        iqn = (si.get("access") or {}).get("iqn")
        if not iqn:
            return
        t = self._targets.get(key)
        if t is not None and t["iqn"] != iqn:
            self._remove(key, keep_data=True)
            t = None
        if t is None:
            tid = self._next_tid
            self._next_tid += 1
            self._iscsi("--op", "new", "--mode", "target", "--tid", str(tid), "-T", iqn)
            t = {"tid": tid, "iqn": iqn, "luns": {}, "acl": set(), "chap": None,
                 "mchap": None}
            self._targets[key] = t
        tid_s = str(t["tid"])
        # LUNs: one per volume, LUN 1.. in volume-name order
        vols = sorted(si.get("volumes") or [], key=lambda v: v.get("name", ""))
        wanted = {}
        for i, v in enumerate(vols):
            wanted[v["name"]] = (DATA_LUN + i, int(float(v.get("size") or 1)),
                                 str(v.get("uuid") or v["name"]))
        for name, (lun, _size, _path) in list(t["luns"].items()):
            if name not in wanted or wanted[name][0] != lun:
                self._iscsi("--op", "delete", "--mode", "logicalunit", "--tid", tid_s,
                            "--lun", str(lun), ok=(0, 22))
                del t["luns"][name]
        for name, (lun, size, uuid) in wanted.items():
            have = t["luns"].get(name)
            if have and have[1] == size:
                continue
            path = self.lun_path(key[0], key[1], name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                src = self._clone_source(ai, key[1], name)
                if src is not None:  # a clone starts with its source's data
                    self._run.run(["cp", "--sparse=always", str(src), str(path)], timeout=600)
            with open(path, "ab") as f:  # sparse; grows, never shrinks data
                if f.tell() < size * GIB:
                    f.truncate(size * GIB)
            if have:  # tgt sees a new size only after the LU is deleted and re-added
                self._iscsi("--op", "delete", "--mode", "logicalunit", "--tid", tid_s,
                            "--lun", str(lun), ok=(0, 22))
            self._iscsi("--op", "new", "--mode", "logicalunit", "--tid", tid_s, "--lun",
                        str(lun), "-b", str(path))
            serial = uuid.replace("-", "")
            self._iscsi("--op", "update", "--mode", "logicalunit", "--tid", tid_s, "--lun",
                        str(lun), "--params",
                        f"vendor_id=DATERA,product_id=IBLOCK,scsi_sn={serial[:36]}")
            t["luns"][name] = (lun, size, str(path))
        # ACL
        if si.get("access_control_mode") == "allow_all":
            acl = {"ALL"}
        else:
            acl = {_iqn_of(i["path"] if isinstance(i, Mapping) else str(i))
                   for i in ((si.get("acl_policy") or {}).get("initiators") or [])}
        for gone in t["acl"] - acl:
            flag = "-I" if gone == "ALL" else "-Q"
            self._iscsi("--op", "unbind", "--mode", "target", "--tid", tid_s, flag, gone,
                        ok=(0, 22))
            self._drop_sessions(t, None if gone == "ALL" else gone)
        for new in acl - t["acl"]:
            flag = "-I" if new == "ALL" else "-Q"
            self._iscsi("--op", "bind", "--mode", "target", "--tid", tid_s, flag, new)
        t["acl"] = acl
        # CHAP
        auth = si.get("auth") or {}
        kind = auth.get("type") or "none"
        chap = mchap = None
        if kind in ("chap", "mchap") and auth.get("target_user_name"):
            chap = (auth["target_user_name"], auth.get("target_pswd") or "")
        if kind == "mchap" and auth.get("initiator_user_name"):
            mchap = (auth["initiator_user_name"], auth.get("initiator_pswd") or "")
        for field, new, extra in (("chap", chap, ()), ("mchap", mchap, ("--outgoing",))):
            old = t[field]
            if old == new:
                continue
            if old:
                self._iscsi("--op", "unbind", "--mode", "account", "--tid", tid_s, "--user",
                            old[0], *extra, ok=(0, 22))
                self._iscsi("--op", "delete", "--mode", "account", "--user", old[0],
                            ok=(0, 22))
            if new:
                if DSP_HIDDEN in new[1] or not new[1]:
                    raise NodeError(f"CHAP secret of {iqn} is not available to the data plane "
                                    "(the store passed a hidden value)")
                self._iscsi("--op", "delete", "--mode", "account", "--user", new[0],
                            ok=(0, 22))
                self._iscsi("--op", "new", "--mode", "account", "--user", new[0],
                            "--password", new[1], secrets=(new[1],))
                self._iscsi("--op", "bind", "--mode", "account", "--tid", tid_s, "--user",
                            new[0], *extra)
            t[field] = new

    def _drop_sessions(self, t: Mapping[str, Any], initiator: str | None) -> None:
        """Close the connections of ``initiator`` (None: everyone) to a target, so an ACL
        removal also cuts access that was already established."""
        tid = str(t["tid"])
        res = self._iscsi("--op", "show", "--mode", "conn", "--tid", tid, ok=range(-64, 256))
        sid = cid = who = None
        for line in res.stdout.splitlines():
            line = line.strip()
            if line.startswith("Session:"):
                sid = line.split(":", 1)[1].strip()
            elif line.startswith("Connection:"):
                cid = line.split(":", 1)[1].strip()
            elif line.startswith("Initiator:"):
                who = line.split(":", 1)[1].strip().split(" ")[0]
                if sid and cid and (initiator is None or who == initiator):
                    self._iscsi("--op", "delete", "--mode", "conn", "--tid", tid, "--sid",
                                sid, "--cid", cid, ok=range(-64, 256))

    def _remove(self, key: tuple[str, str], *, keep_data: bool) -> None:
        t = self._targets.pop(key, None)
        if t is None or not self.running:
            return
        tid = str(t["tid"])
        self._iscsi("--op", "delete", "--mode", "target", "--tid", tid, "--force", ok=(0, 22))
        for field, extra in (("chap", ()), ("mchap", ("--outgoing",))):
            if t[field]:
                self._iscsi("--op", "delete", "--mode", "account", "--user", t[field][0],
                            ok=(0, 22))
