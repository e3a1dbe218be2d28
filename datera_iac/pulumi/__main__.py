"""``python -m datera_iac.pulumi``: run the provider plugin (same as ``pulumi-resource-datera``)."""

from datera_iac.pulumi._serve import main

main()
