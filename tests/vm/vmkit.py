"""A small Debian guest with a real Linux kernel for the node-side tests (iSCSI, udev,
dm-multipath), booted under qemu's software emulation (TCG) with user networking.

Build (``python3 tests/vm/vmkit.py build``, or the ``vm`` fixture on first use) makes, under
``~/.cache/datera-iac/vm/<recipe hash>/`` (``DATERA_IAC_VM_CACHE`` overrides the parent):

* ``vmlinuz``: Debian 12's stock kernel (``linux-image-amd64``'s image, from the Debian
  mirror apt uses; the package is unpacked, never installed);
* ``rootfs.cpio``: a ``debootstrap --variant=minbase`` bookworm root with open-iscsi,
  multipath-tools, udev, e2fsprogs, kmod, iproute2 and openssh-server, trimmed (no docs,
  locales or apt lists; only the kernel modules the tests load), booted as the initramfs
  itself (the kernel unpacks it into RAM: no disk, no second-stage initrd);
* ``info.json``: versions, sizes and the build time.

The recipe hash covers everything that goes into the image (packages, modules, the guest's
init script, its multipath.conf, its sshd_config), so a changed recipe builds a new image
and never reuses a stale one.

Boot (:class:`Guest`): ``qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024`` with user
networking that carries only what the test asks for: ``restrict=on`` (the guest reaches
nothing), ``ipv6=off``, one ``hostfwd`` from 127.0.0.1 to the guest's sshd, and one
``guestfwd`` per iSCSI portal: a connection the guest opens to ``10.0.2.10N:3260`` runs
``socat - TCP:127.0.0.x:<tgtd port>`` on the host (the ``cmd:`` form: one socat per
connection; the chardev form carries a single connection). The 10.0.2.x addresses exist
only inside qemu's user-space network stack; every packet the host handles stays on
127.0.0.0/8. The guest's SSH host key, the authorized client key and its initiator name
come through qemu's fw_cfg, so the cached image holds no key.

PID 1 in the guest is ``/sbin/vm-init``: it mounts the pseudo filesystems, loads the
modules, starts udevd, iscsid, multipathd and sshd, and prints ``vm-init: ready``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from datera_iac.node.multipath import multipath_conf  # noqa: E402

SUITE = "bookworm"
PACKAGES = ("open-iscsi", "multipath-tools", "udev", "e2fsprogs", "kmod", "iproute2",
            "openssh-server", "util-linux", "mount")
#: Kernel modules the guest loads (their dependencies come along from modules.dep).
MODULES = ("virtio_net", "virtio_pci", "qemu_fw_cfg", "iscsi_tcp", "sd_mod", "sg",
           "dm_multipath", "dm_round_robin", "dm_queue_length", "dm_service_time",
           "scsi_dh_alua", "ext4", "crc32c_generic", "crc32c_intel", "af_packet")
#: Guest-side portal addresses (exist only inside qemu's user network) and the port.
GUEST_PORTALS = ("10.0.2.100", "10.0.2.101", "10.0.2.102")
GUEST_ISCSI_PORT = 3260
GUEST_IP = "10.0.2.15"

#: Host tools of the build and the boot (tests/tools.py names their packages).
HOST_TOOLS = ("qemu-system-x86_64", "debootstrap", "socat", "cpio", "depmod", "ssh-keygen")

INIT = r"""#!/bin/sh
# PID 1 of the datera-iac test guest (tests/vm/vmkit.py).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock/iscsi /run/sshd /run/multipath /run/udev
echo "vm-init: mounted"
for m in $(cat /etc/vm-modules); do modprobe "$m" 2>/dev/null || echo "vm-init: no module $m"; done
echo "vm-init: modules"
hostname datera-vm
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
CFG=/sys/firmware/qemu_fw_cfg/by_name/opt/datera
mkdir -p /root/.ssh && chmod 700 /root/.ssh
cat $CFG/authorized_keys/raw > /root/.ssh/authorized_keys
cat $CFG/host_key/raw > /etc/ssh/ssh_host_ed25519_key
chmod 600 /root/.ssh/authorized_keys /etc/ssh/ssh_host_ed25519_key
echo "InitiatorName=$(cat $CFG/initiator/raw)" > /etc/iscsi/initiatorname.iscsi
cat $CFG/machine_id/raw > /etc/machine-id
/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add --type=subsystems
udevadm trigger --action=add --type=devices
udevadm settle --timeout=60
echo "vm-init: udev"
iscsid
multipathd
/usr/sbin/sshd
echo "vm-init: ready"
while :; do sleep 3600; done
"""

SSHD_CONFIG = """\
Port 22
ListenAddress 10.0.2.15
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PidFile /run/sshd.pid
Subsystem sftp internal-sftp
"""


def cache_root() -> Path:
    base = os.environ.get("DATERA_IAC_VM_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "datera-iac" / "vm"


def recipe_hash() -> str:
    h = hashlib.sha256()
    for part in (SUITE, *PACKAGES, "|", *MODULES, "|", INIT, SSHD_CONFIG, multipath_conf(),
                 "v1"):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def image_dir() -> Path:
    return cache_root() / f"{SUITE}-{recipe_hash()}"


def missing_tools() -> list[str]:
    """The "install ..." remedy when a host tool the build or the boot needs is missing."""
    from tests.tools import missing

    why = missing(*HOST_TOOLS)
    return [why] if why else []


class VmError(RuntimeError):
    """The guest could not be built or booted (an environmental failure: the test fails
    with this reason, it is never skipped)."""


def _run(argv: list[str], *, timeout: float, cwd: str | None = None,
         log: Path | None = None) -> str:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                       errors="replace")
    if log is not None:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(argv)}\n{p.stdout}{p.stderr}\n")
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-15:]
        raise VmError(f"{' '.join(argv[:3])} failed (exit {p.returncode}): " + "\n".join(tail))
    return p.stdout


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()).rstrip("/") + "/"
    out = []
    for line in Path("/proc/mounts").read_text().splitlines():
        mp = line.split()[1].replace("\\040", " ")
        if mp.startswith(prefix):
            out.append(mp)
    return sorted(out, key=len, reverse=True)


def _remove_tree(path: Path) -> None:
    """Remove a build tree, first unmounting what debootstrap left mounted in it (its
    /proc, a bind of /dev): a recursive delete must never walk into the host's."""
    for mp in _mounts_under(path):
        subprocess.run(["umount", "-l", mp], capture_output=True, timeout=60)
    left = _mounts_under(path)
    if left:
        raise VmError(f"cannot remove {path}: still mounted: {', '.join(left)}")
    shutil.rmtree(path, ignore_errors=True)


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb.debian.org when none is found)."""
    for f in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            for block in text.split("\n\n"):
                uris = re.search(r"^URIs:\s*(\S+)", block, re.M)
                suites = re.search(r"^Suites:\s*(.+)$", block, re.M)
                if uris and suites and SUITE in suites.group(1).split() \
                        and "security" not in uris.group(1):
                    return uris.group(1)
        for line in text.splitlines():
            m = re.match(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
            if m and "security" not in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


def _kernel_package() -> str:
    out = _run(["apt-cache", "depends", "linux-image-amd64"], timeout=60)
    m = re.search(r"Depends:\s*(linux-image-\S+-amd64)", out)
    if not m:
        raise VmError("cannot resolve linux-image-amd64 (run apt-get update)")
    return m.group(1)


def _module_closure(moddir: Path, wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(relative module paths to keep, wanted modules built into the kernel)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        name = Path(path).name.split(".ko")[0].replace("-", "_")
        by_name[name] = path
    builtin = {Path(l).name.split(".ko")[0].replace("-", "_")
               for l in (moddir / "modules.builtin").read_text().split()}
    keep: set[str] = set()
    inside: list[str] = []
    todo = []
    for w in wanted:
        if w in by_name:
            todo.append(by_name[w])
        elif w in builtin:
            inside.append(w)
        else:
            raise VmError(f"kernel module {w} is neither a module nor built in")
    while todo:
        p = todo.pop()
        if p not in keep:
            keep.add(p)
            todo.extend(deps.get(p, []))
    return sorted(keep), inside


def build(*, force: bool = False, log=print) -> Path:
    """Build the guest image unless a complete one for this recipe is cached."""
    out = image_dir()
    if (out / "info.json").exists() and not force:
        return out
    missing = missing_tools()
    if missing:
        raise VmError("cannot build the test guest: " + "; ".join(missing))
    if os.geteuid() != 0:
        raise VmError("building the test guest needs root (debootstrap)")
    started = time.monotonic()
    cache_root().mkdir(parents=True, exist_ok=True)
    debs = cache_root() / "debs"
    debs.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root()))
    blog = work / "build.log"
    try:
        root = work / "root"
        mirror = debian_mirror()
        log(f"vm: debootstrap {SUITE} from {mirror} ...")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
              f"--cache-dir={debs}", SUITE, str(root), mirror], timeout=1800, log=blog)
        t_boot = time.monotonic() - started
        if _mounts_under(root):
            raise VmError(f"debootstrap left mounts in {root}: {', '.join(_mounts_under(root))}")
        kpkg = _kernel_package()
        log(f"vm: {kpkg} ...")
        kdir = work / "kernel"
        _run(["apt-get", "download", "-q", kpkg], timeout=900, cwd=str(debs), log=blog)
        deb = sorted(debs.glob(f"{kpkg}_*.deb"))[-1]
        _run(["dpkg-deb", "-x", str(deb), str(kdir)], timeout=600)
        [vmlinuz] = sorted((kdir / "boot").glob("vmlinuz-*"))
        kver = vmlinuz.name[len("vmlinuz-"):]
        kmods = kdir / "lib" / "modules" / kver
        _run(["depmod", "-b", str(kdir), kver], timeout=300)  # the package ships no modules.dep
        keep, inside = _module_closure(kmods, MODULES)
        # trim the root
        for rel in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
                    "usr/share/zoneinfo", "usr/share/common-licenses", "var/cache/apt",
                    "var/lib/apt/lists", "var/log", "usr/share/lintian",
                    "usr/lib/x86_64-linux-gnu/gconv", "usr/share/i18n", "usr/share/bash-completion"):
            shutil.rmtree(root / rel, ignore_errors=True)
        (root / "var/log").mkdir(exist_ok=True)
        for k in (root / "etc/ssh").glob("ssh_host_*"):
            k.unlink()
        (root / "etc/machine-id").write_text("")
        dst = root / "lib" / "modules" / kver
        shutil.rmtree(root / "lib" / "modules", ignore_errors=True)
        for rel in keep:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(kmods / rel, dst / rel)
        for f in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            if (kmods / f).exists():
                shutil.copy2(kmods / f, dst / f)
        _run(["depmod", "-b", str(root), kver], timeout=120)
        (root / "etc/vm-modules").write_text(
            "\n".join(m for m in MODULES if m not in inside) + "\n")
        (root / "sbin/vm-init").write_text(INIT)
        os.chmod(root / "sbin/vm-init", 0o755)
        (root / "etc/ssh/sshd_config").write_text(SSHD_CONFIG)
        (root / "etc/multipath.conf").write_text(multipath_conf())
        (root / "etc/hostname").write_text("datera-vm\n")
        # the image's own root as the initramfs (newc cpio, uncompressed: fast to unpack)
        stage = work / "out"
        stage.mkdir()
        shutil.copy2(vmlinuz, stage / "vmlinuz")
        files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=root, capture_output=True,
                               check=True).stdout
        with open(stage / "rootfs.cpio", "wb") as f:
            p = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], input=files, cwd=root,
                               stdout=f, stderr=subprocess.PIPE, timeout=600)
        if p.returncode != 0:
            raise VmError(f"cpio failed: {p.stderr.decode(errors='replace')[-500:]}")
        info = {
            "suite": SUITE, "kernel": kver, "kernel_package": deb.name, "mirror": mirror,
            "packages": list(PACKAGES), "modules": len(keep), "builtin": inside,
            "rootfs_bytes": (stage / "rootfs.cpio").stat().st_size,
            "vmlinuz_bytes": (stage / "vmlinuz").stat().st_size,
            "debootstrap_s": round(t_boot, 1),
            "build_s": round(time.monotonic() - started, 1),
            "load_avg": os.getloadavg(),
        }
        (stage / "info.json").write_text(json.dumps(info, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
        log(f"vm: image {out} built in {info['build_s']} s "
            f"(rootfs {info['rootfs_bytes'] >> 20} MiB, kernel {kver}, load {os.getloadavg()[0]:.1f})")
        return out
    except subprocess.TimeoutExpired as e:
        raise VmError(f"building the test guest timed out: {' '.join(map(str, e.cmd[:3]))}") from None
    except VmError:
        shutil.copy2(blog, cache_root() / "last-failed-build.log") if blog.exists() else None
        raise
    finally:
        _remove_tree(work)



def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Guest:
    """One booted guest. ``portals`` maps each guest-side portal IP to the host address
    (``127.0.0.x:port``) a connection to ``<ip>:3260`` is forwarded to.

    ``start()`` boots and waits (bounded) for ``vm-init: ready`` on the serial console and
    for sshd; every failure raises :class:`VmError` with the console's last lines.
    ``node_url`` is the ``ssh://`` node of a NodeAttachment (its own host key in its own
    known_hosts file: paramiko's RejectPolicy stays on)."""

    def __init__(self, image: Path, workdir: Path, portals: dict[str, str], *,
                 name: str = "node1", boot_timeout: float = 240.0,
                 memory_mb: int = 1024, smp: int = 2) -> None:
        self.image = Path(image)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.portals = dict(portals)
        self.name = name
        self.boot_timeout = boot_timeout
        self.memory_mb = memory_mb
        self.smp = smp
        self.ssh_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.console = self.dir / "console.log"
        digest = hashlib.sha256(f"{name}{time.time()}{os.getpid()}".encode()).hexdigest()
        self.initiator = f"iqn.1993-08.org.debian:01:{digest[:12]}"
        self.machine_id = digest[12:44]
        self.boot_seconds: float | None = None

    # ---- lifecycle --------------------------------------------------------------------

    def _keys(self) -> None:
        for key in ("host", "client"):
            if not (self.dir / key).exists():
                _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.name}-{key}",
                      "-f", str(self.dir / key)], timeout=30)
        (self.dir / "initiator").write_text(self.initiator)
        (self.dir / "machine_id").write_text(self.machine_id + "\n")

    def argv(self) -> list[str]:
        net = ["user,id=n0,restrict=on,ipv6=off,net=10.0.2.0/24",
               f"hostfwd=tcp:127.0.0.1:{self.ssh_port}-{GUEST_IP}:22"]
        for ip, host in self.portals.items():
            h, _, port = host.rpartition(":")
            if not h.startswith("127."):
                raise VmError(f"portal {ip} forwards to {host}: only 127.0.0.0/8 is allowed")
            # a script per portal (qemu splits cmd: on spaces, no shell): it forwards with
            # socat unless the test cut this portal; then it answers nothing (see cut())
            script = self.dir / f"forward-{ip}.sh"
            script.write_text(f"#!/bin/sh\n[ -e {self.dir}/cut-{ip} ] && exec cat >/dev/null\n"
                              f"echo $$ >> {self.dir}/forwarders-{ip}\n"
                              f"exec socat - TCP:{h}:{int(port)}\n")
            script.chmod(0o755)
            net.append(f"guestfwd=tcp:{ip}:{GUEST_ISCSI_PORT}-cmd:{script}")
        cfg = []
        for name, path in (("authorized_keys", self.dir / "client.pub"),
                           ("host_key", self.dir / "host"),
                           ("initiator", self.dir / "initiator"),
                           ("machine_id", self.dir / "machine_id")):
            cfg += ["-fw_cfg", f"name=opt/datera/{name},file={path}"]
        return [
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-smp", str(self.smp),
            "-m", str(self.memory_mb), "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-kernel", str(self.image / "vmlinuz"),
            "-initrd", str(self.image / "rootfs.cpio"),
            "-append", "console=ttyS0 rdinit=/sbin/vm-init panic=-1 loglevel=4 "
                       "net.ifnames=0 biosdevname=0 tsc=reliable no_timer_check",
            "-serial", f"file:{self.console}",
            "-netdev", ",".join(net), "-device", "virtio-net-pci,netdev=n0",
            *cfg,
        ]

    def start(self) -> "Guest":
        missing = missing_tools()
        if missing:
            raise VmError("cannot boot the test guest: " + "; ".join(missing))
        self._keys()
        started = time.monotonic()
        for _attempt in range(3):
            self.ssh_port = free_port()
            self.console.write_bytes(b"")
            with open(self.dir / "qemu.log", "ab") as qlog:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                             stdout=qlog, stderr=subprocess.STDOUT,
                                             start_new_session=True)
            time.sleep(0.5)
            if self.proc.poll() is None:
                break
            text = (self.dir / "qemu.log").read_text(errors="replace")
            if "Could not set up host forwarding" not in text:
                raise VmError(f"qemu exited at once: {text.strip()[-800:]}")
        deadline = started + self.boot_timeout
        while b"vm-init: ready" not in self.console.read_bytes():
            if self.proc.poll() is not None:
                raise VmError(f"the guest stopped while booting (qemu exit {self.proc.returncode})"
                              f": {self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise VmError(f"the guest did not boot within {self.boot_timeout:g} s "
                              f"(load {os.getloadavg()[0]:.1f}): {self.tail()}")
            time.sleep(0.2)
        host_pub = (self.dir / "host.pub").read_text().split()
        (self.dir / "known_hosts").write_text(
            f"[127.0.0.1]:{self.ssh_port} {host_pub[0]} {host_pub[1]}\n")
        self._wait_ssh(deadline)
        self.boot_seconds = time.monotonic() - started
        return self

    def _wait_ssh(self, deadline: float) -> None:
        from datera_iac.errors import DateraIacError
        from datera_iac.node.remote import SshRunner

        last = ""
        while time.monotonic() < deadline:
            try:
                with SshRunner(self.url(), connect_timeout=10) as r:
                    r.run(["true"], timeout=30)
                return
            except DateraIacError as e:
                last = str(e)
                time.sleep(0.5)
        self.stop()
        raise VmError(f"sshd in the guest did not answer: {last}; console: {self.tail()}")

    def stop(self) -> None:
        """Power the guest off (qemu exits on SIGTERM), by PID; bounded."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=15)
        self.proc = None

    def __enter__(self) -> "Guest":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tail(self, n: int = 25) -> str:
        try:
            lines = self.console.read_text(errors="replace").splitlines()
        except OSError:
            return "(no console output)"
        return "\n".join(lines[-n:])

    # ---- reaching it ------------------------------------------------------------------

    def url(self):
        from datera_iac.node.remote import NodeUrl

        return NodeUrl("root", "127.0.0.1", self.ssh_port, str(self.dir / "client"),
                       str(self.dir / "known_hosts"))

    @property
    def node(self) -> str:
        """The NodeAttachment ``node`` value for this guest."""
        return str(self.url())

    def runner(self):
        from datera_iac.node.remote import SshRunner

        return SshRunner(self.url())

    def sh(self, script: str, *, timeout: float = 60.0, ok=(0,)) -> str:
        """Run a shell snippet in the guest as root (test setup and checks only; the
        node helper's own commands go through its runner)."""
        with self.runner() as r:
            return r.run(["sh", "-c", script], timeout=timeout, ok_codes=ok).stdout

    def cut(self, guest_ip: str) -> None:
        """Lose one portal as a network failure would: the forwarders carrying its open
        connections are ended (the kernel sees its session drop at once), and what the
        guest sends on a new connection to it goes nowhere and is never answered, until
        :meth:`restore`. (qemu starts each forwarder detached - glib reaps it through an
        intermediate process - so each one records its PID; only those still running this
        portal's socat are signalled.)

        New connections are held silent, not closed: slirp completes every TCP handshake
        itself, so closing would be a target that accepts and hangs up during each
        re-login, not a lost network, and that is what trips open-iscsi 2.1.8 (Debian
        12's): an error in the re-login window after the connection is bound leaves the
        kernel's connection in cleanup, iscsid re-opens without stopping it, and every
        later bind fails ("can't bind conn 2:0 to session 2, retcode -107") - the session
        never returns, whatever the portal does (fixed upstream in 2.1.9, open-iscsi
        commit 9f20745). With the silence iscsid's login timer expires instead and it
        stops the connection before the next try."""
        (self.dir / f"cut-{guest_ip}").write_text("")
        for pid in self.forwarders(guest_ip):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def restore(self, guest_ip: str) -> None:
        (self.dir / f"cut-{guest_ip}").unlink(missing_ok=True)

    def forwarders(self, guest_ip: str) -> list[int]:
        """PIDs of the running socat processes that carry connections to ``guest_ip``."""
        out = []
        target = f"TCP:{self.portals[guest_ip]}".encode()
        try:
            pids = (self.dir / f"forwarders-{guest_ip}").read_text().split()
        except FileNotFoundError:
            return out
        for pid in dict.fromkeys(int(p) for p in pids):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"socat") and target in cmd:
                out.append(pid)
        return out


# ---- the lab: simulator + tgtd + guests; helpers of the tests ---------------------------

#: tgtd's addresses behind the guest's portals 10.0.2.100 and 10.0.2.101.
HOST_PORTALS = ("127.0.0.1", "127.0.0.2")


class Lab:
    """The simulator, its tgtd and the guests of one test session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plane: Any = None
        self.sim: Any = None
        self.guests: list[Guest] = []
        self.times: dict[str, float] = {}

    def start(self) -> "Lab":
        from datera_iac.sim import SimServer
        from datera_iac.sim.dataplane import TgtDataPlane, tgt_available

        why = tgt_available()
        if why:
            raise VmError(why)
        t = time.monotonic()
        self.image = build(log=lambda m: print(m, file=sys.stderr))
        self.times["image"] = time.monotonic() - t
        self.plane = TgtDataPlane(portals=list(HOST_PORTALS), data_dir=self.root / "luns")
        self.plane.start()
        self.sim = SimServer(portals=list(GUEST_PORTALS[:len(HOST_PORTALS)]),
                             dataplane=self.plane).start()
        return self

    def forwards(self) -> dict[str, str]:
        return {g: f"{h}:{self.plane.port}" for g, h in zip(GUEST_PORTALS, HOST_PORTALS)}

    def boot(self, name: str) -> Guest:
        t = time.monotonic()
        g = Guest(self.image, self.root / name, self.forwards(), name=name)
        self.guests.append(g)
        g.start()
        self.times[f"boot {name}"] = time.monotonic() - t
        return g

    @staticmethod
    def wait_for(probe: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(1)

    def stop(self) -> None:
        for g in self.guests:
            g.stop()
        if self.sim is not None:
            self.sim.stop()
        if self.plane is not None:
            self.plane.stop()


class Recorder:
    """Every command the node helper runs on the guest, with how many DSP requests the
    simulator had served at that moment (one timeline of node and control-plane steps).
    ``fail_at``: the first command containing that argument raises as if the SSH
    connection dropped there (an interrupted run), once."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.events: list[tuple[int, list[str]]] = []
        self.fail_at: str | None = None

    def runner_for(self, node: str) -> Any:
        from datera_iac.errors import NodeError
        from datera_iac.node.remote import SshRunner, parse_node

        rec = self

        class Recording(SshRunner):
            def _execute(self, argv: list[str], **kw: Any) -> tuple[int, str, str]:
                if rec.fail_at is not None and rec.fail_at in argv:
                    rec.fail_at = None
                    raise NodeError(f"lost the connection to {self.where} (test interruption "
                                    f"at {' '.join(argv[:4])})")
                rec.events.append((len(rec.sim.request_log()), list(argv)))
                return super()._execute(argv, **kw)

        url = parse_node(node)
        assert url is not None, node
        return Recording(url)

    def commands(self) -> list[list[str]]:
        return [argv for _, argv in self.events]


STACK = """\
name: {name}
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: {name}
      size: {size}
  a:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${{v.id}}
      node: "{node}"
      port: 3260
      lun: {lun}
{extra}"""


def stack(guest, name: str, *, size: int = 1, **props: object) -> str:
    extra = "".join(f"      {k}: {v}\n" for k, v in props.items())
    return STACK.format(name=name, size=size, node=guest.node, lun=_data_lun(), extra=extra)


def kernel_state(guest) -> dict[str, object]:
    """What the guest's kernel holds: sessions, SCSI disks, dm maps, iSCSI mounts."""
    out = guest.sh(
        "iscsiadm -m session 2>/dev/null; echo '--'; "
        "ls /sys/class/scsi_disk; echo '--'; "
        "for d in /sys/block/dm-*; do [ -e $d/dm/uuid ] && grep -q ^mpath- $d/dm/uuid "
        "&& cat $d/dm/name; done; echo '--'; "
        "grep -E '^/dev/(mapper|dm-|sd)' /proc/mounts; true")
    parts = [p.strip().splitlines() for p in out.split("--")]
    return {"sessions": parts[0], "disks": parts[1], "maps": parts[2], "mounts": parts[3]}


def outputs(ws, name: str = "a") -> dict:
    """The recorded outputs of resource ``name`` of a Workspace's stack."""
    return dict(ws.load_state().resources[name].outputs)


def up_ok(ws) -> None:
    _, result = ws.up()
    assert result is not None and result.ok, result.failures


def destroy_ok(ws) -> None:
    _, result = ws.up(destroy=True)
    assert result is not None and result.ok, result.failures


def map_paths(guest, map_name: str) -> list[str]:
    """The map's path lines as ``multipath -ll`` prints them (device, dm and path state)."""
    ll = guest.sh(f"multipath -ll {map_name}")
    return [line for line in ll.splitlines() if " sd" in line and ":" in line]


def _data_lun() -> int:
    from datera_iac.sim.dataplane import DATA_LUN

    return DATA_LUN


if __name__ == "__main__":
    if sys.argv[1:] == ["build"]:
        t = time.monotonic()
        d = build()
        print(f"vm image: {d} ({time.monotonic() - t:.1f} s here; "
              f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    else:
        print("usage: vmkit.py build", file=sys.stderr)
        sys.exit(2)
