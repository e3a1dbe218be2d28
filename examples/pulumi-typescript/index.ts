// Datera block storage from TypeScript: a tenant, a volume type, a volume whose size comes
// from config, a snapshot of it, and a lookup (function) of the tenant's volumes.
import * as pulumi from "@pulumi/pulumi";
import * as datera from "@datera-iac/datera";

const config = new pulumi.Config();
const size = config.getNumber("volumeSize") ?? 10;

const tenant = new datera.Tenant("web", { name: "web", description: "Managed by Pulumi from TypeScript" });
const fast = new datera.VolumeType("fast", { name: "fast", replicaCount: 2, writeIopsMax: 4000 });
const data = new datera.Volume("data", {
    name: "web-data",
    size: size,
    tenant: tenant.id,
    volumeType: fast.name,
    extraSpecs: fast.extraSpecs,
});
const snap = new datera.Snapshot("data-snap", { volumeId: data.id });
const listed = datera.listVolumesOutput({ tenant: tenant.id, nameRegex: "^web-" });

export const tenantId = tenant.id;
export const dataId = data.id;
export const dataIqn = data.iqn;
export const snapshotId = snap.id;
export const volumeNames = listed.items.apply(items => items.map(v => v.name));
