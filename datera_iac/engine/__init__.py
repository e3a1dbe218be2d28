"""datera_iac.engine"""
