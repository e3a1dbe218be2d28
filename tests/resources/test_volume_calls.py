"""The calls a Volume update sends, chosen without a DSP: facts in, calls out (table tests).

``volume_calls(live, new)`` is pure; each row names one call-selection rule of the old
``Volume._converge`` / ``_revert`` / ``_write_metadata`` and the calls it must give, in the
order they are sent (``flatten``: brackets opened, alternatives left out). The
alternatives (``unless``/``instead``) and the offline brackets have rows of their own, and
``send_calls`` is checked against a recording client for what it does on each DSP answer.
"""

from __future__ import annotations

import attrs
import pytest

from datera_iac.errors import Conflict, InputError, NotFound
from datera_iac.resources.calls import Call, flatten, send_calls
from datera_iac.resources.volume import LiveVolume, VolumeSpec, volume_calls

AI = "/app_instances/ai-1"
SI = AI + "/storage_instances/storage-1"
VOL = SI + "/volumes/volume-1"
SECRET, SECRET2, ISECRET = "s3cret-s3cret", "an0ther-s3cret", "init-s3cret-1"
LIVE_SPECS = {"DF:replica_count": "3", "DF:placement_mode": "hybrid",
              "DF:placement_policy": "default", "DF:ip_pool": "default"}


def spec(**kw) -> VolumeSpec:
    return VolumeSpec(**{"name": "db-1", "size": 10, **kw})


LIVE = spec(tenant="/root", extra_specs=LIVE_SPECS, metadata={})


def live(have: VolumeSpec = LIVE, **kw) -> LiveVolume:
    facts = {"id": "/root/ai-1", "ai_path": AI, "si_path": SI, "vol_path": VOL, "online": True,
             "spec": have, "qos": {}, "metadata": {}, "snapshots": frozenset(),
             "initiators": (), "sw_version": "3.3.5.0", **kw}
    return LiveVolume(**facts)


def rows(calls: list[Call]) -> list[tuple]:
    return [(c.method, c.path, c.body) for c in flatten(calls)]


OFF, ON = ("PUT", AI, {"admin_state": "offline"}), ("PUT", AI, {"admin_state": "online"})
POOL_B = {"ip_pool": {"path": "/access_network_ip_pools/pool-b"}, "force": True}
QOS_ZERO = dict.fromkeys(("read_iops_max", "write_iops_max", "total_iops_max",
                          "read_bandwidth_max", "write_bandwidth_max", "total_bandwidth_max"), 0)

# (rule, live facts, new spec, old spec, expected calls in send order)
TABLE = [
    ("nothing differs: no call", live(), spec(), None, []),
    ("a new name renames in place", live(), spec(name="db-2"), None,
     [("PUT", AI, {"name": "db-2"})]),
    ("a grow on DSP 3.3+ is one online PUT", live(), spec(size=20), None,
     [("PUT", VOL, {"size": 20})]),
    ("a grow on a pre-3.3 DSP is bracketed by offline/online", live(sw_version="3.2.0"),
     spec(size=20), None, [OFF, ("PUT", VOL, {"size": 20}), ON]),
    ("a pre-3.3 grow of a volume already offline needs no flip",
     live(sw_version="3.2.0", online=False), spec(size=20), None,
     [("PUT", VOL, {"size": 20})]),
    ("the whole pre-3.3 grow stays inside the bracket (policy, ip_pool)",
     live(sw_version="3.2.0"),
     spec(size=20, extra_specs={"DF:replica_count": "4", "DF:ip_pool": "pool-b"}), None,
     [OFF, ("PUT", VOL, {"size": 20}), ("PUT", VOL, {"replica_count": 4}),
      ("PUT", SI, POOL_B), ON]),
    ("a declared higher replica_count is raised online", live(),
     spec(extra_specs={"DF:replica_count": "5"}), None, [("PUT", VOL, {"replica_count": 5})]),
    ("an undeclared policy keeps what the DSP has", live(spec(tenant="/root", extra_specs={
        **LIVE_SPECS, "DF:replica_count": "2", "DF:ip_pool": "pool-x"}, metadata={})),
     spec(), None, []),
    ("a declared placement_policy is sent on 3.3+ (API 2.2)", live(),
     spec(extra_specs={"DF:placement_policy": "all-flash"}), None,
     [("PUT", VOL, {"placement_policy": {"path": "/placement_policies/all-flash"}})]),
    ("API 2.1 has no placement_policy: nothing to send", live(api_version="2.1"),
     spec(extra_specs={"DF:placement_policy": "all-flash"}), None, []),
    ("a declared placement_mode is sent when it differs", live(),
     spec(extra_specs={"DF:placement_mode": "single_flash"}), None,
     [("PUT", VOL, {"placement_mode": "single_flash"})]),
    ("an ip_pool change is forced online on the storage instance", live(),
     spec(extra_specs={"DF:ip_pool": "pool-b"}), None, [("PUT", SI, POOL_B)]),
    ("a template's volume keeps its ip_pool", live(),
     spec(template="gold", extra_specs={"DF:ip_pool": "pool-b"}), None, []),
    ("QoS declared where there is none: POST every *_max key", live(),
     spec(extra_specs={"DF:read_iops_max": "500"}), None,
     [("POST", VOL + "/performance_policy", {**QOS_ZERO, "read_iops_max": 500})]),
    ("QoS changed: PUT", live(qos={"read_iops_max": 100}),
     spec(extra_specs={"DF:read_iops_max": "500"}), None,
     [("PUT", VOL + "/performance_policy", {**QOS_ZERO, "read_iops_max": 500})]),
    ("QoS per GiB follows a grow", live(qos={"total_iops_max": 100}),
     spec(size=20, extra_specs={"DF:iops_per_gb": "10"}), None,
     [("PUT", VOL, {"size": 20}),
      ("PUT", VOL + "/performance_policy", {**QOS_ZERO, "total_iops_max": 200})]),
    ("QoS equal to the live one: nothing", live(qos={"read_iops_max": 500}),
     spec(extra_specs={"DF:read_iops_max": "500"}), None, []),
    ("every QoS limit at 0: the policy is deleted", live(qos={"read_iops_max": 100}),
     spec(extra_specs={"DF:read_iops_max": "0"}), None,
     [("DELETE", VOL + "/performance_policy", None)]),
    ("CHAP turned on", live(), spec(chap_user="tgt", chap_secret=SECRET), None,
     [("PUT", SI + "/auth", {"type": "chap", "target_user_name": "tgt",
                             "target_pswd": SECRET})]),
    ("mutual CHAP turned on", live(),
     spec(chap_user="tgt", chap_secret=SECRET, chap_initiator_user="ini",
          chap_initiator_secret=ISECRET), None,
     [("PUT", SI + "/auth", {"type": "mchap", "target_user_name": "tgt",
                             "target_pswd": SECRET, "initiator_user_name": "ini",
                             "initiator_pswd": ISECRET})]),
    ("CHAP left out is not managed (an attachment's CHAP stays)",
     live(attrs.evolve(LIVE, chap_user="att")), spec(), None, []),
    ('chap_user "" turns live CHAP off', live(attrs.evolve(LIVE, chap_user="att")),
     spec(chap_user=""), None, [("PUT", SI + "/auth", {"type": "none"})]),
    ('chap_user "" where CHAP is off: nothing', live(), spec(chap_user=""), None, []),
    ("the same CHAP user and no new secret: nothing",
     live(attrs.evolve(LIVE, chap_user="tgt")), spec(chap_user="tgt", chap_secret=SECRET),
     spec(chap_user="tgt", chap_secret=SECRET), []),
    ("a changed secret (old tells) is written",
     live(attrs.evolve(LIVE, chap_user="tgt")), spec(chap_user="tgt", chap_secret=SECRET2),
     spec(chap_user="tgt", chap_secret=SECRET),
     [("PUT", SI + "/auth", {"type": "chap", "target_user_name": "tgt",
                             "target_pswd": SECRET2})]),
    ("a snapshot policy added is posted", live(), spec(snapshot_policies=["daily:1day:7"]),
     None, [("POST", VOL + "/snapshot_policies",
             {"name": "daily", "interval": "1day", "retention_count": 7})]),
    ("a snapshot policy changed is put without its name",
     live(attrs.evolve(LIVE, snapshot_policies=["daily:1day:7"])),
     spec(snapshot_policies=["daily:1day:9"]), None,
     [("PUT", VOL + "/snapshot_policies/daily", {"interval": "1day", "retention_count": 9})]),
    ("a snapshot policy removed is deleted",
     live(attrs.evolve(LIVE, snapshot_policies=["daily:1day:7", "weekly:1week:4"])),
     spec(snapshot_policies=["daily:1day:7"]), None,
     [("DELETE", VOL + "/snapshot_policies/weekly", None)]),
    ("metadata: what differs, keys removed as null, the volume type recorded",
     live(metadata={"a": "1", "b": "2"}), spec(metadata={"a": "1", "c": "3"}, volume_type="gold"),
     None, [("PUT", AI + "/int_ecosystem_data",
             {"data": {"c": "3", "volume_type": "gold", "b": None}})]),
    ("metadata unset keeps what is there", live(metadata={"a": "1"}), spec(), None, []),
    ("metadata on a pre-3.3 DSP is the flat legacy entity", live(sw_version="3.2.0"),
     spec(metadata={"a": "1"}), None, [("PUT", AI + "/metadata", {"a": "1"})]),
    ("extended metadata turned off: never written", live(write_metadata=False),
     spec(metadata={"a": "1"}, volume_type="gold"), None, []),
    ("metadata not read (a bulk refresh): the whole declaration", live(metadata=None),
     spec(metadata={"a": "1"}), None,
     [("PUT", AI + "/int_ecosystem_data", {"data": {"a": "1"}})]),
    ("a revert goes first, offline around it; the rest follows in order",
     live(snapshots=frozenset({"1446076293.118600738"})),
     spec(name="db-2", restore_point="1446076293.118600738", metadata={"a": "1"}), spec(),
     [OFF, ("PUT", VOL, {"restore_point": "1446076293.118600738"}), ON,
      ("PUT", AI, {"name": "db-2"}), ("PUT", AI + "/int_ecosystem_data", {"data": {"a": "1"}})]),
    ("a revert under logged-in initiators is forced (force_restore)",
     live(snapshots=frozenset({"1446076293.1"}), initiators=("iqn.x",)),
     spec(restore_point="/root/ai-1/1446076293.1", force_restore=True), spec(),
     [("PUT", AI, {"admin_state": "offline", "force": True}),
      ("PUT", VOL, {"restore_point": "1446076293.1"}), ON]),
    ("a revert of an offline volume needs no flip",
     live(snapshots=frozenset({"1446076293.1"}), online=False),
     spec(restore_point="1446076293.1"), spec(),
     [("PUT", VOL, {"restore_point": "1446076293.1"})]),
    ("the restore point already applied is no revert",
     live(attrs.evolve(LIVE, restore_point="1446076293.1")),
     spec(restore_point="1446076293.1"), spec(restore_point="1446076293.1"), []),
]


@pytest.mark.parametrize(("rule", "facts", "new", "old", "expected"), TABLE,
                         ids=[row[0] for row in TABLE])
def test_call_selection(rule, facts, new, old, expected):
    """Each rule gives exactly its calls, in the order they are sent."""
    assert rows(volume_calls(facts, new, old=old)) == expected


REFUSED = [
    ("a shrink", live(), spec(size=5), None, "size", "cannot shrink from 10 to 5 GiB"),
    ("a lower replica_count", live(), spec(extra_specs={"DF:replica_count": "2"}), None,
     "extra_specs.DF:replica_count", "cannot lower replica_count from 3 to 2 in place"),
    ("a new CHAP user without its secret", live(), spec(chap_user="tgt"), None,
     "chap_secret", "changing CHAP needs the secrets"),
    ("a revert to a snapshot the volume does not have", live(),
     spec(restore_point="1446076293.1"), spec(), "restore_point",
     "the volume has no snapshot 1446076293.1"),
    ("a revert to another volume's snapshot", live(),
     spec(restore_point="/root/other/1446076293.1"), spec(), "restore_point",
     "'/root/other/1446076293.1' is a snapshot of another volume"),
    ("a revert under logged-in initiators without force_restore",
     live(snapshots=frozenset({"1446076293.1"}), initiators=("iqn.b", "iqn.a")),
     spec(restore_point="1446076293.1"), spec(), "restore_point",
     "the volume is in use: 2 initiator(s) are logged in (iqn.a, iqn.b)"),
]


@pytest.mark.parametrize(("what", "facts", "new", "old", "field", "message"), REFUSED,
                         ids=[row[0] for row in REFUSED])
def test_refused_before_any_call(what, facts, new, old, field, message):
    """What the DSP cannot do in place raises InputError naming the field (no call list)."""
    with pytest.raises(InputError) as e:
        volume_calls(facts, new, old=old)
    assert e.value.field == field and message in str(e.value)


def test_alternatives_the_dsp_may_ask_for():
    """An online grow falls back to the offline flip when refused; QoS PUT to POST when
    the policy is gone, POST to PUT when it exists; deletes of what is gone are done."""
    grow, = volume_calls(live(), spec(size=20))
    assert grow.unless == "refused"
    assert rows(list(grow.instead)) == [OFF, ("PUT", VOL, {"size": 20}), ON]
    put, = volume_calls(live(qos={"read_iops_max": 1}), spec(extra_specs={"DF:read_iops_max": "5"}))
    assert (put.method, put.unless) == ("PUT", "missing")
    post, = put.instead
    assert (post.method, post.unless, [c.method for c in post.instead]) == ("POST", "conflict",
                                                                           ["PUT"])
    delete, = volume_calls(live(attrs.evolve(LIVE, snapshot_policies=["daily:1day:1"])), spec())
    assert (delete.method, delete.unless, delete.instead) == ("DELETE", "missing", ())
    pre33, = volume_calls(live(sw_version="3.2.0", online=False), spec(size=20))
    assert pre33.unless is None  # already offline on a pre-3.3 DSP: no second flip


def test_secrets_are_masked_wherever_calls_are_shown():
    """repr, JSON and preview lines of a CHAP call mask the secrets; the body sent keeps them."""
    call, = volume_calls(live(), spec(chap_user="tgt", chap_secret=SECRET,
                                      chap_initiator_user="ini", chap_initiator_secret=ISECRET))
    assert call.body["target_pswd"] == SECRET
    shown = repr(call) + str(call.to_json()) + "\n".join(call.lines())
    assert SECRET not in shown and ISECRET not in shown and "(sensitive)" in shown


class Recorder:
    """A client that records requests and answers some with an error."""

    def __init__(self, fail: dict[tuple[str, str], Exception] | None = None):
        self.sent: list[tuple[str, str]] = []
        self.fail = dict(fail or {})

    def _do(self, method: str, path: str, *_body, tenant=None):
        self.sent.append((method, path))
        err = self.fail.pop((method, path), None)
        if err is not None:
            raise err

    def put(self, path, body, *, tenant=None):
        self._do("PUT", path, body, tenant=tenant)

    def post(self, path, body, *, tenant=None):
        self._do("POST", path, body, tenant=tenant)

    def delete(self, path, body=None, *, tenant=None):
        self._do("DELETE", path, tenant=tenant)


def test_send_calls_follows_the_dsps_answers():
    """A refused online grow is retried offline and brought back online; a PUT of a QoS
    policy that is gone becomes a POST; the count includes the calls sent instead."""
    client = Recorder({("PUT", VOL): Conflict("offline only", method="PUT", path=VOL),
                       ("PUT", VOL + "/performance_policy"): NotFound("gone", path=VOL)})
    calls = volume_calls(live(qos={"read_iops_max": 1}),
                         spec(size=20, extra_specs={"DF:read_iops_max": "5"}))
    assert send_calls(client, calls, tenant="/root") == 6
    assert client.sent == [("PUT", VOL), ("PUT", AI), ("PUT", VOL), ("PUT", AI),
                           ("PUT", VOL + "/performance_policy"),
                           ("POST", VOL + "/performance_policy")]


def test_send_calls_brings_the_volume_back_online_after_a_failure():
    """When a call inside the offline bracket fails, the online PUT is still sent and the
    failure raised; nothing after the bracket is sent."""
    boom = Conflict("busy", method="PUT", path=SI)
    client = Recorder({("PUT", SI): boom})
    calls = volume_calls(live(sw_version="3.2.0"),
                         spec(size=20, extra_specs={"DF:ip_pool": "pool-b"},
                              snapshot_policies=["daily:1day:1"]))
    with pytest.raises(Conflict) as e:
        send_calls(client, calls, tenant="/root")
    assert e.value is boom
    assert client.sent == [("PUT", AI), ("PUT", VOL), ("PUT", SI), ("PUT", AI)]
