"""Campaigns, their provider settings and credentials, and who works on them."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..security.fields import EncryptedTextField
from ..values.formatting import CURRENCY_EUR, CURRENCY_ZAR


class Provider(models.TextChoices):
    LINA = "lina", "LINA Voucher"
    ALLSAFE = "allsafe", "Allsafe"


#: The currency every amount of a provider is in: LINA sells euro tokens, Allsafe rand vouchers.
PROVIDER_CURRENCY = {Provider.LINA: CURRENCY_EUR, Provider.ALLSAFE: CURRENCY_ZAR}
CURRENCY_CHOICES = [(CURRENCY_EUR, _("euro (€)")), (CURRENCY_ZAR, _("rand (R)"))]


def providers_in(currency: str) -> list[str]:
    """The providers whose amounts are in ``currency`` (for filters that must not mix currencies)."""
    return [provider for provider, code in PROVIDER_CURRENCY.items() if code == currency]


class LinaHashRecipe(models.TextChoices):
    """How the LINA login hash is built. The real recipe is not public (providers.md, [assumed])."""

    MD5_OF_MD5PW_IP_KEY = "md5(md5(password)+ip+key)", "md5(md5(password) + ipv4 + shared key)"
    MD5_OF_PW_IP_KEY = "md5(password+ip+key)", "md5(password + ipv4 + shared key)"
    MD5_OF_IP_MD5PW_KEY = "md5(ip+md5(password)+key)", "md5(ipv4 + md5(password) + shared key)"


def default_lina_session_phrases() -> str:
    from ..providers.lina import DEFAULT_SESSION_PHRASES

    return "\n".join(DEFAULT_SESSION_PHRASES)


def parse_phrases(text: str) -> tuple[str, ...]:
    """The phrases of a text field, one per line or comma-separated, lower case, no blanks."""
    parts = (part.strip().lower() for line in (text or "").splitlines() for part in line.split(","))
    return tuple(dict.fromkeys(p for p in parts if p))


class Campaign(models.Model):
    """One provider account used for one promotion or shop: credentials, endpoints and options.

    Options marked [assumed] in providers.md are fields here, so an administrator can change
    them without a code change when the provider turns out to differ.
    """

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    is_live = models.BooleanField(
        _("live"), default=True, help_text=_("Switch off to stop all provider calls for this campaign.")
    )
    starts_on = models.DateField(_("starts on"), null=True, blank=True)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)

    # --- Connection --------------------------------------------------------------------------
    base_url = models.URLField(
        _("base URL"),
        max_length=300,
        help_text=_("LINA: …/extern/tokenapi · Allsafe: https://allsafe-api.poweredbytechsys.co.za"),
    )
    connect_timeout = models.FloatField(
        _("connect timeout (s)"),
        default=3.05,
        validators=[MinValueValidator(0.1), MaxValueValidator(60)],
    )
    read_timeout = models.FloatField(
        _("read timeout (s)"),
        default=15.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(120)],
    )

    # --- Credentials (write-only; stored encrypted, see vouchers.security.fields) -------------
    api_username = models.CharField(_("API user name"), max_length=150, blank=True)
    api_password = EncryptedTextField(
        blank=True, editable=False, db_column="api_password_ciphertext", what="API password"
    )
    api_shared_key = EncryptedTextField(
        blank=True, editable=False, db_column="api_shared_key_ciphertext", what="shared key"
    )
    credentials_changed_at = models.DateTimeField(
        _("credentials changed"), null=True, blank=True, editable=False
    )
    credentials_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("credentials changed by"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    # --- LINA options (providers.md: login recipe and field names are [assumed]) -------------
    lina_hash_recipe = models.CharField(
        _("LINA login hash recipe"),
        max_length=40,
        choices=LinaHashRecipe.choices,
        default=LinaHashRecipe.MD5_OF_MD5PW_IP_KEY,
    )
    lina_login_user_field = models.CharField(_("LINA login user field"), max_length=40, default="user")
    lina_login_pass_field = models.CharField(_("LINA login hash field"), max_length=40, default="pass")
    lina_session_phrases = models.TextField(
        _("LINA session rejection phrases"),
        blank=True,
        default=default_lina_session_phrases,
        help_text=_(
            "One per line. An error answer of LINA whose text contains one of these (any letter "
            "case) means the session expired: the portal logs in again once and repeats the call. "
            "Empty: the built-in English and German phrases."
        ),
    )
    sale_min_amount = models.DecimalField(
        _("smallest sale (€)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("5.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    sale_max_amount = models.DecimalField(
        _("largest sale (€)"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("500.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
    )

    # --- Allsafe options (providers.md: allocate path and field names are [assumed]) ----------
    allsafe_allocate_path = models.CharField(_("Allsafe allocate path"), max_length=120, default="/allocate")
    allsafe_vendor_field = models.CharField(_("Allsafe vendor field"), max_length=40, default="vendor")
    allsafe_value_field = models.CharField(_("Allsafe value field"), max_length=40, default="value")
    allsafe_reference_field = models.CharField(
        _("Allsafe reference field"), max_length=40, default="reference"
    )
    poll_interval_minutes = models.PositiveIntegerField(
        _("stock poll interval (minutes)"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
    )
    low_stock_threshold = models.PositiveIntegerField(
        _("low-stock threshold"),
        default=10,
        help_text=_(
            "Alert when fewer vouchers than this remain of a vendor and value (overridable per item)."
        ),
    )
    stale_after_intervals = models.PositiveIntegerField(
        _("stale after (intervals)"),
        default=3,
        validators=[MinValueValidator(1)],
        help_text=_("Raise a stale-data alert when no poll succeeded for this many intervals."),
    )

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        permissions = [
            ("use_desk", "Can check and redeem LINA tokens"),
            ("sell_vouchers", "Can sell gift tokens and allocate digital vouchers"),
            ("view_sales", "Can see sales"),
            ("view_full_codes", "Can see full voucher codes of sales"),
            ("view_stock", "Can see stock and alerts"),
            ("manage_stock", "Can set stock thresholds and handle alerts"),
            ("view_ledger", "Can see the provider operation ledger"),
            ("resolve_operations", "Can resolve operations whose outcome is unknown"),
            ("view_audit", "Can see the audit trail"),
            ("test_connection", "Can test a campaign's provider connection"),
            ("manage_people", "Can add cashiers and marketing managers to own campaigns and manage them"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_on__isnull=True)
                | models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="campaign_dates_in_order",
            ),
            models.CheckConstraint(
                condition=models.Q(sale_max_amount__gte=models.F("sale_min_amount")),
                name="campaign_sale_limits_in_order",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": _("The end date is before the start date.")})
        if self.sale_min_amount and self.sale_max_amount and self.sale_max_amount < self.sale_min_amount:
            raise ValidationError({"sale_max_amount": _("The largest sale is below the smallest sale.")})

    # --- State --------------------------------------------------------------------------------
    @property
    def is_lina(self) -> bool:
        return self.provider == Provider.LINA

    @property
    def is_allsafe(self) -> bool:
        return self.provider == Provider.ALLSAFE

    @property
    def currency(self) -> str:
        """ISO code of the campaign's amounts (``values.formatting.format_money`` takes it)."""
        return PROVIDER_CURRENCY.get(self.provider, CURRENCY_EUR)

    def is_active_on(self, day=None) -> bool:
        """Live and inside its dates (if it has any)."""
        day = day or timezone.localdate()
        if not self.is_live:
            return False
        if self.starts_on and day < self.starts_on:
            return False
        return not (self.ends_on and day > self.ends_on)

    # --- Credentials --------------------------------------------------------------------------
    # Whether a secret is stored, without decrypting it (the change form shows only this).
    @property
    def has_password(self) -> bool:
        return self._meta.get_field("api_password").has_value(self)

    @property
    def has_shared_key(self) -> bool:
        return self._meta.get_field("api_shared_key").has_value(self)


class Membership(models.Model):
    """A person works on a campaign. What they may do there comes from their role (group)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("campaign")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("added by"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "campaign"], name="membership_unique_user_campaign")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.campaign}"
