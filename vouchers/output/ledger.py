"""The ledger list: its table (django-tables2) and its CSV rows. Codes are masked throughout.

"What was asked" and "what came back" are the operation's stored request and answer, already
kept without full codes or secrets by the services; they are passed through the log redaction
once more before display (code-shaped values masked, secret-named keys hidden), so a code that
slipped into a provider's answer still shows masked.
"""

from __future__ import annotations

import re

import django_tables2 as tables
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import ProviderOperation
from ..security.redaction import redact
from ..staff_text import operation_error_text
from ..values.formatting import format_money, translate_stored
from .tables import CAPPED_TABLE_TEMPLATE, state_badge, to_the_second

#: Characters of a request or answer shown in a table cell (the CSV has them whole).
SUMMARY_CHARS = 160


#: Keys whose values are never shown, whatever they hold (session hashes, secrets).
_HIDDEN_KEYS = re.compile(r"pass|secret|hash|key|authori[sz]ation|session|token", re.IGNORECASE)


def _flatten(data, prefix: str = ""):
    """(dotted key, value) pairs of nested dicts and lists, in key order."""
    if isinstance(data, dict):
        for key in sorted(data, key=str):
            yield from _flatten(data[key], f"{prefix}{key}.")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _flatten(value, f"{prefix}{index}.")
    else:
        yield prefix.rstrip("."), data


def data_summary(data, limit: int | None = SUMMARY_CHARS) -> str:
    """A stored request or answer as one line of ``key: value`` pairs, codes masked."""
    if data in (None, "", {}, []):
        return ""
    parts = []
    for key, value in _flatten(data):
        shown = "[redacted]" if _HIDDEN_KEYS.search(key) else redact(str(value))
        parts.append(f"{key}: {shown}" if key else shown)
    return _shorten(" · ".join(parts), limit)


def _shorten(text: str, limit: int | None) -> str:
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def answer_summary(operation: ProviderOperation, limit: int | None = SUMMARY_CHARS) -> str:
    """What came back: the error (in the reader's language where it can be) and the answer."""
    parts = []
    if operation.error_code:
        # What staff were told, in the reader's language (the provider's own words labelled).
        message = operation_error_text(operation) if operation.staff_text else ""
        message = message or (translate_stored(operation.error_message) if operation.error_message else "")
        parts.append(redact(f"{operation.error_code}: {message}" if message else operation.error_code))
    answer = data_summary(operation.response_data, limit=None)
    if answer:
        parts.append(answer)
    return _shorten(" — ".join(parts), limit)


def operation_amount(operation: ProviderOperation) -> str:
    if operation.amount is None:
        return ""
    return format_money(operation.amount, operation.campaign.currency)


# The labels of the kinds and states, looked up once: ``get_FOO_display()`` rebuilds the field's
# flattened choices on every call, twice per row of every ledger page (the labels stay lazy, so
# each is still translated into the reader's language when drawn).
KIND_LABELS = dict(ProviderOperation._meta.get_field("kind").flatchoices)
STATE_LABELS = dict(ProviderOperation._meta.get_field("state").flatchoices)


class LedgerTable(tables.Table):
    created_at = tables.Column(verbose_name=_("When"))
    pk = tables.Column(verbose_name=_("Reference"), accessor="pk")
    campaign = tables.Column(verbose_name=_("Campaign"), accessor="campaign__name", order_by="campaign__name")
    user = tables.Column(verbose_name=_("Who"), accessor="user__username", default="—")
    kind = tables.Column(verbose_name=_("Operation"))
    code_masked = tables.Column(verbose_name=_("Code"), default="—", attrs={"td": {"class": "code"}})
    amount = tables.Column(
        verbose_name=_("Amount"), attrs={"td": {"class": "num money"}, "th": {"class": "num"}}
    )
    state = tables.Column(verbose_name=_("State"))
    duration_ms = tables.Column(
        verbose_name=_("Duration"), attrs={"td": {"class": "num"}, "th": {"class": "num"}}
    )
    asked = tables.Column(verbose_name=_("Asked"), accessor="request_data", orderable=False)
    answer = tables.Column(
        verbose_name=_("Answer"), accessor="response_data", orderable=False, empty_values=()
    )

    class Meta:
        model = ProviderOperation
        fields = (
            "created_at",
            "pk",
            "campaign",
            "user",
            "kind",
            "code_masked",
            "amount",
            "state",
            "duration_ms",
            "asked",
            "answer",
        )
        order_by = ("-created_at",)
        attrs = {"class": "table ledger"}
        row_attrs = {"data-operation": lambda record: record.pk}
        empty_text = _("No operations match.")
        template_name = CAPPED_TABLE_TEMPLATE

    def render_created_at(self, value):
        return to_the_second(value)

    def render_pk(self, value):
        return f"#{value}"

    def render_kind(self, record):
        return KIND_LABELS.get(record.kind, record.kind)

    def render_amount(self, record):
        return operation_amount(record) or "—"

    def render_state(self, record):
        return state_badge(record.state, STATE_LABELS.get(record.state, record.state))

    def render_duration_ms(self, value):
        return f"{value} ms"

    def render_asked(self, value):
        return data_summary(value) or "—"

    def render_answer(self, record):
        return answer_summary(record) or "—"


LEDGER_CSV_HEADER = (
    _("when"),
    _("reference"),
    _("campaign"),
    _("who"),
    _("operation"),
    _("code"),
    _("amount"),
    _("state"),
    _("duration (ms)"),
    _("error"),
    _("asked"),
    _("answer"),
    # Last, so the columns before keep their places in files people already read.
    _("currency"),
)


def ledger_csv_rows(operations):
    """CSV rows of ``operations`` (an iterable of ProviderOperation with campaign and user)."""
    for op in operations:
        yield (
            timezone.localtime(op.created_at).isoformat(timespec="seconds"),
            op.pk,
            op.campaign.name,
            op.user.get_username() if op.user else "",
            op.get_kind_display(),
            op.code_masked,
            "" if op.amount is None else f"{op.amount:.2f}",
            op.get_state_display(),
            "" if op.duration_ms is None else op.duration_ms,
            op.error_code,
            data_summary(op.request_data, limit=None),
            answer_summary(op, limit=None),
            "" if op.amount is None else op.campaign.currency,
        )
