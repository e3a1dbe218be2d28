"""The bundled Datera DSP REST API simulator (API v2.1 and v2.2).

``SimServer`` runs it in-process (see :mod:`datera_iac.sim.server`); ``datera-iac dsp serve``
runs it from the command line (:mod:`datera_iac.sim.cli`). Behaviour and the choices made
where the real API is undocumented are described in ``docs/simulator.md``.
"""

from datera_iac.sim.hooks import Dataplane, NullDataplane
from datera_iac.sim.server import SimServer

__all__ = ["Dataplane", "NullDataplane", "SimServer"]
