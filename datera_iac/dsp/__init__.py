"""datera_iac.dsp"""
