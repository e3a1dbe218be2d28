// Manage Datera Data Services Platform block storage (tenants, volume types, volumes, snapshots, node attachments).
package datera
