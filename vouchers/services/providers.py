"""From a campaign to a provider client. The single seam where tests put in a fake provider.

:func:`provider_client` is the one place that decrypts credentials and the one place that turns
a credential no key can decrypt into :class:`Misconfigured` (nothing is sent).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from ..models import Campaign
from ..models.campaigns import parse_phrases
from ..providers.base import ProviderConfig
from ..providers.endpoints import is_allowed, refusal_message, require_allowed
from ..providers.errors import Misconfigured
from ..security.crypto import CredentialDecryptionError
from ..staff_text import CREDENTIALS_UNREADABLE, CREDENTIALS_UNREADABLE_CHECKS


@sensitive_variables("campaign")
def provider_config(campaign: Campaign, *, read_retries: int | None = None) -> ProviderConfig:
    """Build the client configuration, decrypting credentials only here, only when needed.

    Every provider call of every service comes through here, so this is where a base URL off the
    provider's allow-list is refused, before any secret is decrypted or anything is sent.
    """
    if not campaign.base_url:
        raise Misconfigured(what_to_check=[_("Set the campaign's base URL.")])
    require_allowed(campaign.provider, campaign.base_url)
    return ProviderConfig(
        campaign_id=campaign.pk,
        provider=campaign.provider,
        base_url=campaign.base_url,
        username=campaign.api_username,
        password=campaign.api_password,
        shared_key=campaign.api_shared_key,
        connect_timeout=campaign.connect_timeout,
        read_timeout=campaign.read_timeout,
        read_retries=read_retries,
        lina_hash_recipe=campaign.lina_hash_recipe,
        lina_login_user_field=campaign.lina_login_user_field,
        lina_login_pass_field=campaign.lina_login_pass_field,
        lina_session_phrases=parse_phrases(campaign.lina_session_phrases),
        allsafe_allocate_path=campaign.allsafe_allocate_path,
        allsafe_vendor_field=campaign.allsafe_vendor_field,
        allsafe_value_field=campaign.allsafe_value_field,
        allsafe_reference_field=campaign.allsafe_reference_field,
    )


def _build_client(config: ProviderConfig):
    from ..providers.clients import build_client

    return build_client(config)


#: Replaced by tests (tests/support/fakes.py) to stand a fake provider in for both real ones.
client_factory = _build_client


def provider_client(campaign: Campaign, *, read_retries: int | None = None):
    """A client for the campaign's provider (LinaProvider or AllsafeProvider); raises Misconfigured
    (or another ProviderError) when none can be built. ``read_retries``: see ProviderConfig."""
    try:
        config = provider_config(campaign, read_retries=read_retries)
    except CredentialDecryptionError as exc:
        raise Misconfigured(CREDENTIALS_UNREADABLE, what_to_check=CREDENTIALS_UNREADABLE_CHECKS) from exc
    return client_factory(config)


def base_url_refusal(provider: str, base_url: str) -> str:
    """Why ``base_url`` may not receive the campaign's credentials ("" when it may), for forms."""
    return "" if is_allowed(provider, base_url) else refusal_message(provider, base_url)
