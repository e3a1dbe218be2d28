"""datera_iac.node"""
