"""azd ``predown`` hook: refuse ``azd down`` when the deployment reaches into resources the user
already had (KAFKA_ADX_ADX_DATABASE_ID, KAFKA_ADX_EVENTHUB_ID).

``azd down`` deletes every resource group that holds a resource of the deployment, not only the
ones it created (Azure/azure-dev#2916): the principal assignment, database scripts, consumer
group and role assignment kafka-adx adds to an existing ADX database or event hub would make it
delete that database's or event hub's whole resource group. Instead, delete the environment's
own resource group (``az group delete -n rg-<env>``) and remove what was added there by hand
(docs/deploy.md, "Clean up"). Standard library only; runs with ``python3`` / ``python``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

EXISTING = ("KAFKA_ADX_ADX_DATABASE_ID", "KAFKA_ADX_EVENTHUB_ID")


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    used = [name for name in EXISTING if env.get(name, "").strip()]
    if not used:
        return 0
    group = f"rg-{env.get('AZURE_ENV_NAME', '<env>')}"
    print(
        f"predown: refusing azd down: this environment deploys into existing resources ({', '.join(used)}), "
        "and azd down would delete their whole resource groups (Azure/azure-dev#2916).\n"
        f"  Delete this environment's own resource group instead: az group delete -n {group}\n"
        "  and remove by hand what kafka-adx added to the existing ones (see docs/deploy.md, Clean up).",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
