"""datera_iac.sim"""
