"""An out-of-band edit of a volume's app_instance metadata (issue #9's refresh gap).

The bulk reads a fast refresh uses (one paged list per tenant) do not return metadata, so
``preview``/``up`` do not see such an edit: that keeps a no-op preview of 1,000 volumes at
about ten requests. A full refresh (``datera-iac refresh``, ``--refresh=full``) reads each
object on its own, metadata included: there the edit is drift, and ``up --refresh=full``
puts the declared metadata back. Against the simulator over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datera_iac.cli import main
from datera_iac.engine.core import Workspace
from datera_iac.errors import InputError

STACK = """\
name: metadrift
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: vol-meta
      size: 1
      volumeType: gold
      metadata: {owner: team-a, tier: "1"}
  bare:
    type: datera:index:Volume
    properties:
      name: vol-bare
      size: 1
"""


@pytest.fixture
def ws(sim: Any, tmp_path: Any, monkeypatch: Any) -> Any:
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    f = tmp_path / "Pulumi.yaml"
    f.write_text(STACK)
    w = Workspace(stack_file=f, endpoint=sim.http_url, embedded=False)
    plan, result = w.up()
    assert not plan.errors and result is not None and result.ok
    yield w
    w.close()


def meta_url(w: Workspace, name: str = "v") -> tuple[str, str]:
    tenant, ai = w.load_state().resources[name].id.rsplit("/", 1)
    return f"/app_instances/{ai}/int_ecosystem_data", tenant or "/root"


def edit_out_of_band(ctx: Any, w: Workspace) -> None:
    """Someone changes a declared key and adds one, with the DSP's own API."""
    url, tenant = meta_url(w)
    ctx.client.put(url, {"data": {"tier": "2", "ticket": "OPS-1"}}, tenant=tenant)


def live_meta(ctx: Any, w: Workspace, name: str = "v") -> dict[str, Any]:
    url, tenant = meta_url(w, name)
    data = ctx.client.get(url, tenant=tenant)
    return dict(data.get("data", data))


def test_fast_refresh_does_not_see_metadata_and_stays_cheap(sim, ctx, ws):
    """The documented limit of the default: an out-of-band metadata edit plans nothing,
    and the fast preview makes no per-volume request."""
    edit_out_of_band(ctx, ws)
    before = dict(sim.counters())
    plan = ws.preview()
    assert not plan.changes and not plan.drift
    meta_gets = sum(n - before.get(k, 0) for k, n in sim.counters().items()
                    if "int_ecosystem_data" in k or "/metadata" in k)
    assert meta_gets == 0


def test_full_refresh_detects_metadata_drift_and_up_corrects_it(sim, ctx, ws):
    """With --refresh=full the edit is drift on 'metadata' of that volume only; up with a
    full refresh writes the declaration back (the added key removed, volume_type kept),
    and the next full preview is empty."""
    edit_out_of_band(ctx, ws)
    plan = ws.preview(refresh="full")
    assert [(d.name, d.fields) for d in plan.drift] == [("v", ("metadata",))]
    assert [(s.name, s.action, [c.name for c in s.changes]) for s in plan.changes] == [
        ("v", "update", ["metadata"])]
    plan, result = ws.up(refresh="full")
    assert not plan.errors and result is not None and result.ok
    assert live_meta(ctx, ws) == {"owner": "team-a", "tier": "1", "volume_type": "gold"}
    again = ws.preview(refresh="full")
    assert not again.changes and not again.drift


def test_refresh_command_is_full_and_exits_2_on_metadata_drift(sim, ctx, ws, capsys):
    """`datera-iac refresh --detailed-exitcode` (full by default) exits 2 naming the field;
    `preview --refresh=full --refresh-only` agrees; `--refresh=fast` does not see it."""
    edit_out_of_band(ctx, ws)
    f = str(ws.stack_file)
    common = ["-f", f, "--endpoint", sim.http_url]
    assert main(["preview", *common, "--refresh-only", "--refresh=fast",
                 "--detailed-exitcode"]) == 0
    capsys.readouterr()
    assert main(["preview", *common, "--refresh-only", "--refresh=full",
                 "--detailed-exitcode", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert [(d["name"], d["fields"]) for d in doc["drift"]] == [("v", ["metadata"])]
    assert main(["refresh", *common, "--detailed-exitcode"]) == 2
    out = capsys.readouterr().out
    assert "metadata" in out and "v" in out
    # the state now records what the DSP holds; up (fast) plans the correction from it
    plan = ws.preview()
    assert [(s.name, [c.name for c in s.changes]) for s in plan.changes] == [("v", ["metadata"])]
    assert main(["up", *common, "--yes"]) == 0
    assert live_meta(ctx, ws) == {"owner": "team-a", "tier": "1", "volume_type": "gold"}


def test_full_refresh_request_cost_is_one_read_per_volume(sim, ctx, ws):
    """A full refresh reads each volume with its own GET plus its metadata GET: 2 per
    volume here (2 volumes), against 1 list for the fast one."""
    def reads(mode: str) -> int:
        before = dict(sim.counters())
        ws.preview(refresh_only=True, refresh=mode)
        return sum(n - before.get(k, 0) for k, n in sim.counters().items()
                   if k.startswith("GET") and not k.endswith(("/system", "/api_versions")))

    assert reads("fast") == 1
    assert reads("full") == 4


def test_unknown_refresh_mode_is_an_input_error(ws):
    """A mode other than fast/full is refused before any read, naming the fix."""
    with pytest.raises(InputError, match="unknown refresh mode 'deep'"):
        ws.preview(refresh="deep")


def test_the_dsp_configuration_can_make_full_the_default(sim, ctx, ws, monkeypatch):
    """`refresh: full` in the DSP configuration (here DATERA_REFRESH) makes every preview
    and up of the stack read metadata; the --refresh flag still overrides it per run."""
    edit_out_of_band(ctx, ws)
    monkeypatch.setenv("DATERA_REFRESH", "full")
    f = str(ws.stack_file)
    with Workspace(stack_file=ws.stack_file, endpoint=sim.http_url, embedded=False) as w:
        plan = w.preview()
        assert [(d.name, d.fields) for d in plan.drift] == [("v", ("metadata",))]
        assert not w.preview(refresh="fast").drift
    common = ["-f", f, "--endpoint", sim.http_url, "--refresh-only", "--detailed-exitcode"]
    assert main(["preview", *common]) == 2
    assert main(["preview", *common, "--refresh=fast"]) == 0


def test_terraform_provider_full_refresh_sees_metadata_drift(sim):
    """The Terraform provider's refresh batches volumes into paged lists (no metadata);
    with `refresh = "full"` in the provider block each volume is read on its own and an
    out-of-band metadata edit shows in the refreshed state."""
    from datera_iac_tf.provider import DateraProvider

    def provider(**extra: Any) -> Any:
        app = DateraProvider()
        app.configure({"endpoint": sim.http_url, "san_login": "admin",
                       "san_password": "password", **extra})
        return app

    fast = provider()
    adapter = fast.adapters["datera_volume"]
    cfg = {f.name: None for f in adapter.schema.fields()}
    cfg.update(name="tf-meta", size=1, metadata={"owner": "team-a"})
    state = adapter.create(fast.context, cfg)
    tenant, ai = state["id"].rsplit("/", 1)
    fast.client.put(f"/app_instances/{ai}/int_ecosystem_data", {"data": {"owner": "ops"}},
                    tenant=tenant or "/root")
    assert adapter.read(fast.context, state)["metadata"] == {"owner": "team-a"}  # not seen
    full = provider(refresh="full")
    seen = full.adapters["datera_volume"].read(full.context, state)
    assert seen["metadata"] == {"owner": "ops"}
