"""Entra ID credentials: the one place that turns ``ADX_AUTH`` / ``AZURE_CLIENT_ID`` /
``IDENTITY_ENDPOINT`` into an azure-identity credential.

Every client that signs in (the ADX clients, the blob dead-letter store, Kafka OAUTHBEARER and
Event Hubs AMQP, the Azure Monitor exporter) gets its credential here, so the rules are stated
once:

* ``managed-identity``: ``ManagedIdentityCredential``, the user-assigned identity of
  ``AZURE_CLIENT_ID`` when given, else the system identity;
* ``default``: ``DefaultAzureCredential`` (environment, workload identity, managed identity,
  Azure CLI ...), its managed-identity leg pinned to the same client id. The client id is passed
  even when None, so our settings decide and the SDK does not look up ``AZURE_CLIENT_ID`` again
  behind them;
* ``none``: no credential (loopback stand-ins only).

azure-identity is imported on first use: local mode never signs in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, overload

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.settings import Settings

AuthKind = Literal["managed-identity", "default", "none"]
"""The values of ``ADX_AUTH`` (and of the Kafka commands' ``--credential``, which has no ``none``)."""


@overload
def make_credential(
    kind: Literal["managed-identity", "default"] = "default", client_id: str | None = None
) -> TokenCredential: ...
@overload
def make_credential(kind: AuthKind, client_id: str | None = None) -> TokenCredential | None: ...
def make_credential(kind: AuthKind = "default", client_id: str | None = None) -> TokenCredential | None:
    """The credential of ``kind`` (see the module docstring); ``client_id`` selects a
    user-assigned managed identity (empty counts as unset)."""
    if kind == "none":
        return None
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = client_id or None
    if kind == "managed-identity":
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def credential_for(settings: Settings) -> TokenCredential | None:
    """The credential of the settings' ``ADX_AUTH`` and ``AZURE_CLIENT_ID`` (None for ``none``)."""
    return make_credential(settings.adx_auth, settings.azure_client_id)


def host_identity(env: Mapping[str, str] | None = None) -> TokenCredential | None:
    """The managed identity of the host, or None when the host has none.

    A host has one when it exposes the managed-identity endpoint (``IDENTITY_ENDPOINT``, App
    Service and Functions) or names a user-assigned identity (``AZURE_CLIENT_ID``). For clients
    that work without Entra ID too (the Azure Monitor exporter falls back to the connection
    string's key), so a developer machine is never asked to sign in.
    """
    env = os.environ if env is None else env
    client_id = env.get("AZURE_CLIENT_ID") or None
    if not (env.get("IDENTITY_ENDPOINT") or client_id):
        return None
    return make_credential("managed-identity", client_id)
