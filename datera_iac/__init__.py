"""datera-iac: infrastructure as code for the Datera Data Services Platform (DSP).

Layers (see ARCHITECTURE): ``datera_iac.dsp`` (REST client), ``datera_iac.resources``
(the kinds, each defined once), ``datera_iac.cinder`` (DF: extra-spec semantics and
emitters), ``datera_iac.node`` (iSCSI/multipath helper), ``datera_iac.engine`` (plan/apply,
state), ``datera_iac.pulumi`` and ``datera_iac_tf/`` (adapters) and ``datera_iac.sim`` (the
bundled DSP simulator).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
