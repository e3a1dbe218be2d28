"""datera_iac.pulumi"""
