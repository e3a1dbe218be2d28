"""Parity with the real Cinder Datera driver: the driver's own code (cinder 29.0.0, run
unchanged in its virtualenv by ``driver_policy_probe.py``) and datera_iac.cinder resolve the
same policies and the same performance_policy for a few hundred generated volume types.

The venv is the one tests/compat uses (``.ci/run`` builds it; ``DATERA_CINDER_VENV``
overrides the path). Without it the test is skipped, except under CI (``CI=true``)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path


from datera_iac.cinder import PROPERTIES, fold_qos_specs, resolve_policy
from datera_iac.config import DateraConfig
from tests.compat.cinder_venv import PY, require_venv

HERE = Path(__file__).parent
def _value(rng: random.Random, name: str, *, in_defaults: bool) -> str:
    p = PROPERTIES[name]
    if p.type is bool:
        return rng.choice(["True", "False"])
    if p.type is int:
        hi = p.maximum if rng.random() < 0.2 else 5000
        return str(rng.randint(p.minimum or 0, hi if name != "replica_count" else 5))
    if p.choices:
        return rng.choice(p.choices)
    word = rng.choice(["default", "all-flash", "pool_a", "gold.tier", "_x1"])
    if name == "template":
        return rng.choice(["", word])
    if name == "ip_pool" and not in_defaults and rng.random() < 0.3:
        return f"{word},pool_b"
    return word


def _cases(n: int, seed: int = 20191210) -> list[dict]:
    rng = random.Random(seed)
    names = list(PROPERTIES)
    per_gb = ["iops_per_gb", "bandwidth_per_gb", "total_iops_max", "total_bandwidth_max"]
    out = []
    for _ in range(n):
        keys = rng.sample(names, rng.randint(0, 6))
        if rng.random() < 0.5:  # exercise the per-GB rules often
            keys += [k for k in rng.sample(per_gb, 2) if k not in keys]
        specs = {f"DF:{k}": _value(rng, k, in_defaults=False) for k in keys}
        if rng.random() < 0.3:
            specs.update({"volume_backend_name": "datera", "multiattach": "<is> True"})
        qos = None
        if rng.random() < 0.4:  # QoS specs override, under any scope; colon-less ones are ignored
            qkeys = rng.sample(names, rng.randint(1, 3))
            qos = {f"{rng.choice(['qos', 'DF', 'x'])}:{k}": _value(rng, k, in_defaults=False)
                   for k in qkeys}
            qos["total_iops_sec"] = "77"
        dkeys = rng.sample(names, rng.randint(0, 3))
        defaults = ",".join(f"{k}:{_value(rng, k, in_defaults=True)}" for k in dkeys)
        out.append({"specs": specs, "qos": qos, "defaults": defaults, "debug": rng.random() < 0.3,
                    "size": rng.choice([1, 2, 10, 100, 32768])})
    return out


def test_resolution_and_qos_match_the_real_driver():
    """For 300 generated types: fold_qos_specs + resolve_policy == the driver's
    _get_policies_for_volume_type (defaults from its _init_vendor_properties,
    datera_volume_type_defaults parsed by oslo.config, the debug replica override, QoS specs
    under qos:/DF:/other scopes overriding extra specs), and
    performance_policy(driver_quirks=True) == what its _update_qos_2_2 would POST."""
    require_venv()
    cases = _cases(300)
    proc = subprocess.run([str(PY), str(HERE / "driver_policy_probe.py")],
                          input=json.dumps(cases), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    answers = json.loads(proc.stdout)
    for case, driver in zip(cases, answers, strict=True):
        config = DateraConfig.from_mapping(
            {"san_ip": "10.0.0.1", "san_password": "x",
             "datera_volume_type_defaults": case["defaults"] or None,
             "datera_debug_replica_count_override": case["debug"]},
            use_env=False,
        )
        folded, _ = fold_qos_specs(case["specs"], case["qos"])
        policy = resolve_policy(folded, config=config)
        assert policy.as_dict() == driver["policies"], case
        assert policy.performance_policy(case["size"], driver_quirks=True) == driver["qos"], case
