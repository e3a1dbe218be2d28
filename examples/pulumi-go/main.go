// Datera block storage from Go: a tenant, a volume type, a volume whose size comes from
// config, a snapshot of it, and a lookup (function) of the tenant's volumes.
package main

import (
	"github.com/datera/datera-iac/sdk/go/datera"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		size := config.New(ctx, "").GetInt("volumeSize")
		if size == 0 {
			size = 10
		}
		tenant, err := datera.NewTenant(ctx, "ops", &datera.TenantArgs{
			Name:        pulumi.String("ops"),
			Description: pulumi.String("Managed by Pulumi from Go"),
		})
		if err != nil {
			return err
		}
		fast, err := datera.NewVolumeType(ctx, "fast", &datera.VolumeTypeArgs{
			Name:         pulumi.String("fast"),
			ReplicaCount: pulumi.Int(2),
			WriteIopsMax: pulumi.Int(4000),
		})
		if err != nil {
			return err
		}
		data, err := datera.NewVolume(ctx, "data", &datera.VolumeArgs{
			Name:       pulumi.String("ops-data"),
			Size:       pulumi.Int(size),
			Tenant:     tenant.ID().ToStringOutput(),
			VolumeType: fast.Name,
			ExtraSpecs: fast.ExtraSpecs,
		})
		if err != nil {
			return err
		}
		snap, err := datera.NewSnapshot(ctx, "data-snap", &datera.SnapshotArgs{
			VolumeId: data.ID().ToStringOutput(),
		})
		if err != nil {
			return err
		}
		listed := datera.ListVolumesOutput(ctx, datera.ListVolumesOutputArgs{
			Tenant:    tenant.ID().ToStringOutput(),
			NameRegex: pulumi.String("^ops-"),
		})
		ctx.Export("tenantId", tenant.ID())
		ctx.Export("dataId", data.ID())
		ctx.Export("dataIqn", data.Iqn)
		ctx.Export("snapshotId", snap.ID())
		ctx.Export("volumeNames", listed.Items().ApplyT(func(items []datera.VolumesItem) []string {
			names := make([]string, 0, len(items))
			for _, v := range items {
				names = append(names, v.Name)
			}
			return names
		}))
		return nil
	})
}
