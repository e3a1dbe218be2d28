"""Entry of the repository as a *source-based* Pulumi plugin (see ``PulumiPlugin.yaml``).

Pulumi's Python language host runs a plugin directory that has a ``__main__.py`` as
``python <directory> <engine address> [flags]``; this file starts the same provider server
as ``pulumi-resource-datera`` (it prints its port and serves until stopped). Run as a
directory, Python puts the repository first on ``sys.path``, so ``datera_iac`` is imported
from this checkout; its dependencies come from the plugin's virtualenv, which the engine
fills from ``requirements.txt``.
"""

from datera_iac.pulumi.provider import main

if __name__ == "__main__":
    main()
