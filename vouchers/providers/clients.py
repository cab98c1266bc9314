"""From a ProviderConfig to the client for its provider (the real, HTTP-speaking ones)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from .allsafe import AllsafeClient
from .base import AllsafeProvider, LinaProvider, ProviderConfig
from .errors import Misconfigured
from .lina import LinaClient


def build_client(config: ProviderConfig) -> LinaProvider | AllsafeProvider:
    """A LinaClient or AllsafeClient for the campaign described by ``config``.

    Cheap to call per request: the HTTP connection pool is shared per process and base URL
    (providers/http.py) and the LINA session lives in Django's cache, not in the client.
    """
    if config.provider == "lina":
        return LinaClient(config)
    if config.provider == "allsafe":
        return AllsafeClient(config)
    raise Misconfigured(
        _("The campaign's provider is not one the portal can talk to."),
        what_to_check=[_("Choose LINA or Allsafe as the campaign's provider.")],
    )
