"""Sending a sold gift token to the customer again, through the portal's own mailer.

LINA mails a token once, when it is sold with an address (providers.md, ``sendmail``), and has
no call to send it again; so the portal sends the code, the QR image and the layout link itself
(the ``EMAIL_*`` settings). Only to the address stored on the sale, never to one typed here, so
the action cannot hand a code to someone else. Sent while the page waits (bounded by
``EMAIL_TIMEOUT``) so the page says truthfully whether the mail server took it. Every attempt is
an audit event; the code itself never reaches the log or the audit trail.
"""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from .. import staff_text
from ..models import Sale
from ..output.qr import qr_png
from ..selectors.sales import sale_email_blocker
from ..values.codes import format_code
from .audit import audit_record
from .refusals import Refusal

logger = logging.getLogger(__name__)

#: A second send of the same sale within this many seconds is refused: a double click (or two
#: people answering the same customer) sends one e-mail, not two.
RESEND_PAUSE_SECONDS = 60


def _claim(sale: Sale) -> bool:
    try:
        return bool(cache.add(f"sale-email:{sale.pk}", 1, timeout=RESEND_PAUSE_SECONDS))
    except Exception:  # the shared cache is down: rather a possible second e-mail than none
        logger.warning(
            "Sale %s e-mail: shared cache unreachable, sent without the double-send guard", sale.pk
        )
        return True


def _release(sale: Sale) -> None:
    try:
        cache.delete(f"sale-email:{sale.pk}")
    except Exception:
        logger.warning("Sale %s e-mail: shared cache unreachable, guard not released", sale.pk)


def _message(sale: Sale, code: str, language: str) -> EmailMessage:
    with translation.override(language):
        context = {"sale": sale, "code": format_code(code), "campaign": sale.campaign}
        subject = _("Your gift token from %(campaign)s") % {"campaign": sale.campaign.name}
        body = render_to_string("vouchers/sale_token_email.txt", context)
    message = EmailMessage(
        subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[sale.email]
    )
    png, _source = qr_png(code=code, qrcode_base64=sale.qrcode_png_base64)
    message.attach("gift-token-qr.png", png, "image/png")
    return message


def sale_email_again(*, sale: Sale, user, language: str) -> Sale:
    """E-mail a sold gift token's code, QR image and layout link to the sale's address again.

    Raises Refusal (with what to check) when the sale cannot be sent or the mail server does not
    take the message; either way the attempt is audited.
    """
    blocker = sale_email_blocker(sale)
    if blocker:
        raise Refusal(blocker, code="not_sendable")
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    if not _claim(sale):
        raise Refusal(staff_text.SALE_EMAIL_JUST_SENT, code="just_sent")
    audit = {"actor": user, "campaign": sale.campaign, "obj": sale}
    try:
        _message(sale, sale.full_code, language).send(fail_silently=False)
    except Exception as exc:
        _release(sale)
        # The exception's class only: an SMTP answer may quote the message, and so the code.
        logger.warning("Sale %s could not be e-mailed: %s", sale.pk, type(exc).__name__)
        audit_record(
            **audit,
            action="sale.email_failed",
            summary=f"Gift token {sale.code_masked} could not be e-mailed to {sale.email}",
            message=staff_text.stored_sentence(
                staff_text.AUDIT_SALE_EMAIL_FAILED, code=sale.code_masked, email=sale.email
            ),
            data={"error": type(exc).__name__},
        )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            raise Refusal(
                staff_text.SALE_EMAIL_REFUSED % {"email": sale.email},
                code="recipient_refused",
                what_to_check=staff_text.SALE_EMAIL_REFUSED_CHECKS,
            ) from exc
        raise Refusal(
            staff_text.SALE_EMAIL_FAILED,
            code="email_failed",
            what_to_check=staff_text.SALE_EMAIL_FAILED_CHECKS,
        ) from exc
    audit_record(
        **audit,
        action="sale.emailed",
        summary=f"Gift token {sale.code_masked} e-mailed again to {sale.email}",
        message=staff_text.stored_sentence(
            staff_text.AUDIT_SALE_EMAILED, code=sale.code_masked, email=sale.email
        ),
        data={"language": language},
    )
    return sale
