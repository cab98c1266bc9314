"""Sales list: search by full code (posted, never in a URL) and by recipient, the CSV following
the list, and "send to customer again" through the portal's mailer (issue 19, item 8)."""

from __future__ import annotations

import csv
import io
import logging
import smtplib
from decimal import Decimal

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.urls import reverse

from vouchers.models import AuditEvent, SaleTemplate
from vouchers.services import sales as svc
from vouchers.values.codes import format_code

pytestmark = pytest.mark.django_db

LIST_URL = reverse("vouchers:sale-list")
SEARCH_URL = reverse("vouchers:sale-search")
EXPORT_URL = reverse("vouchers:sale-export")


def sell(template, user, amount="25", **kwargs):
    return svc.gift_token_sell(
        campaign=template.campaign,
        user=user,
        request_token=svc.new_request_token(),
        amount=Decimal(amount),
        template=template,
        **kwargs,
    )


def csv_rows(response) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def shown_messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


# --- Search by code --------------------------------------------------------------------------------


def test_code_search_is_posted_and_the_list_opens_with_a_reference_not_the_code(
    client, marketing, fake_provider, lina_template
):
    sales = [sell(lina_template, marketing) for _ in range(3)]
    wanted = sales[1]
    client.force_login(marketing)
    typed = format_code(wanted.full_code).lower()  # dashes and case do not matter
    response = client.post(SEARCH_URL, {"code": typed})
    assert response.status_code == 302
    location = response["Location"]
    assert location == f"{LIST_URL}?code_of={wanted.pk}"
    assert wanted.full_code not in location and typed not in location
    page = client.get(location)
    rows = list(page.context["table"].rows)
    assert [row.record.pk for row in rows] == [wanted.pk]
    html = page.content.decode()
    assert wanted.code_masked in html and wanted.full_code not in html
    assert "data-searched-code" in html
    # The export link carries the reference, so the file is the same one row.
    assert [r["Code"] for r in csv_rows(client.get(EXPORT_URL, {"code_of": wanted.pk}))] == [
        wanted.code_masked
    ]


def test_a_code_search_never_reaches_the_access_log_or_the_query_string(
    client, marketing, fake_provider, lina_template, caplog
):
    sale = sell(lina_template, marketing)
    client.force_login(marketing)
    with caplog.at_level(logging.DEBUG):
        client.post(SEARCH_URL, {"code": sale.full_code}, follow=True)
    assert sale.full_code not in caplog.text
    assert sale.full_code not in format(AuditEvent.objects.values_list("summary", "data"))


def test_unknown_and_malformed_codes_say_so(client, marketing, fake_provider, lina_template):
    sell(lina_template, marketing)
    client.force_login(marketing)
    unknown = client.post(SEARCH_URL, {"code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}, follow=True)
    assert unknown.redirect_chain[-1][0] == LIST_URL
    assert shown_messages(unknown) == [("warning", "No sale of your campaigns has this code.")]
    bad = client.post(SEARCH_URL, {"code": "<script>"}, follow=True)
    assert [level for level, _text in shown_messages(bad)] == ["error"]
    empty = client.post(SEARCH_URL, {"code": ""}, follow=True)
    assert [level for level, _text in shown_messages(empty)] == ["error"]


def test_the_code_search_and_its_reference_stay_in_the_viewers_campaigns(
    client, marketing, superuser, fake_provider, lina_template, other_campaign
):
    other_template = SaleTemplate.objects.create(campaign=other_campaign, name="Other", template_hash="h")
    foreign = sell(other_template, superuser)
    client.force_login(marketing)
    response = client.post(SEARCH_URL, {"code": foreign.full_code}, follow=True)
    assert shown_messages(response) == [("warning", "No sale of your campaigns has this code.")]
    guessed = client.get(LIST_URL, {"code_of": foreign.pk})
    assert list(guessed.context["table"].rows) == []


def test_a_code_sold_twice_lists_every_sale_with_it(client, marketing, fake_provider, lina_template):
    """Allsafe PINs are the vendor's: two sales may carry the same one; the digest finds both."""
    first, other = sell(lina_template, marketing), sell(lina_template, marketing)
    second = sell(lina_template, marketing)
    second.operation.code_digest = first.operation.code_digest
    second.operation.save(update_fields=["code_digest"])
    client.force_login(marketing)
    location = client.post(SEARCH_URL, {"code": first.full_code})["Location"]
    found = {row.record.pk for row in client.get(location).context["table"].rows}
    assert found == {first.pk, second.pk} and other.pk not in found


# --- Search by recipient, the CSV following the list ------------------------------------------------


def test_recipient_search_matches_the_for_name_or_the_email(client, marketing, fake_provider, lina_template):
    by_name = sell(lina_template, marketing, layout=1, from_name="Anna", for_name="Ben Berg")
    by_email = sell(lina_template, marketing, email="ben@example.com")
    sell(lina_template, marketing, layout=1, from_name="Ben", for_name="Carla", email="carla@example.com")
    client.force_login(marketing)
    page = client.get(LIST_URL, {"recipient": "ben"})
    assert {row.record.pk for row in page.context["table"].rows} == {by_name.pk, by_email.pk}
    assert "ben@example.com" in page.content.decode()  # the e-mail is a column of the page
    rows = csv_rows(client.get(EXPORT_URL, {"recipient": "ben", "sort": "-email"}))
    assert [r["E-mail"] for r in rows] == ["ben@example.com", ""]


@pytest.mark.parametrize("sort", ["amount", "-amount", "email", "-state", "campaign", "-created_at"])
def test_the_csv_is_in_the_order_of_the_page(client, marketing, fake_provider, lina_template, sort):
    for amount, email in (("10", "c@example.com"), ("30", "a@example.com"), ("20", "b@example.com")):
        sell(lina_template, marketing, amount=amount, email=email)
    client.force_login(marketing)
    page = client.get(LIST_URL, {"sort": sort})
    on_page = [row.record.pk for row in page.context["table"].rows]
    in_file = [r["E-mail"] for r in csv_rows(client.get(EXPORT_URL, {"sort": sort}))]
    assert in_file == [row.record.email for row in page.context["table"].rows]
    assert len(on_page) == 3
    # Filtering again keeps the sort: the filter form carries it.
    assert f'<input type="hidden" name="sort" value="{sort}">' in page.content.decode()


def test_a_refused_filter_gives_an_empty_file_as_the_page_shows_no_rows(
    client, marketing, fake_provider, lina_template
):
    sell(lina_template, marketing)
    client.force_login(marketing)
    page = client.get(LIST_URL, {"amount_min": "x"})
    assert list(page.context["table"].rows) == []
    assert csv_rows(client.get(EXPORT_URL, {"amount_min": "x"})) == []


def test_search_in_german(client, marketing, fake_provider, lina_template):
    sale = sell(lina_template, marketing, email="ben@example.com")
    client.cookies["django_language"] = "de"
    client.force_login(marketing)
    page = client.get(LIST_URL).content.decode()
    assert "Nach Code suchen" in page and "Empfänger (Name oder E-Mail)" in page
    missing = client.post(SEARCH_URL, {"code": "ZZZZZZZZZZZZZZZZ"}, follow=True)
    assert shown_messages(missing) == [("warning", "Kein Verkauf Ihrer Kampagnen hat diesen Code.")]
    found = client.post(SEARCH_URL, {"code": sale.full_code}, follow=True).content.decode()
    assert "Angezeigt werden die Verkäufe mit dem gesuchten Code" in found
    header = next(
        csv.reader(io.StringIO(b"".join(client.get(EXPORT_URL).streaming_content).decode("utf-8-sig")))
    )
    assert "E-Mail" in header


# --- Send to customer again ------------------------------------------------------------------------


def email_url(sale) -> str:
    return reverse("vouchers:sale-email", kwargs={"pk": sale.pk})


@pytest.fixture
def emailed_sale(marketing, fake_provider, lina_template):
    return sell(lina_template, marketing, layout=1, from_name="Anna", for_name="Ben", email="ben@example.com")


def test_confirm_then_send_mails_code_qr_and_layout_link_audited(client, marketing, emailed_sale):
    sale = emailed_sale
    client.force_login(marketing)
    detail = client.get(reverse("vouchers:sale-detail", kwargs={"pk": sale.pk})).content.decode()
    assert email_url(sale) in detail
    confirm = client.get(email_url(sale))
    html = confirm.content.decode()
    assert "ben@example.com" in html and "data-email-confirm" in html
    assert sale.full_code not in html and format_code(sale.full_code) not in html
    assert mail.outbox == []  # the confirmation step sends nothing

    done = client.post(email_url(sale), {"language": "en"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("vouchers:sale-detail", kwargs={"pk": sale.pk})
    assert shown_messages(done) == [("success", "The gift token was e-mailed to ben@example.com.")]
    (message,) = mail.outbox
    assert message.to == ["ben@example.com"]
    assert message.subject == "Your gift token from LINA shop"
    assert format_code(sale.full_code) in message.body
    assert sale.layout_url and sale.layout_url in message.body
    assert "Ben" in message.body
    (name, content, mimetype) = message.attachments[0]
    assert (name, mimetype) == ("gift-token-qr.png", "image/png") and content.startswith(b"\x89PNG")
    event = AuditEvent.objects.get(action="sale.emailed")
    assert event.actor == marketing and event.object_id == str(sale.pk)
    assert sale.full_code not in event.summary and sale.code_masked in event.summary


def test_the_email_is_in_the_language_chosen_on_the_confirmation(client, marketing, emailed_sale):
    client.force_login(marketing)
    client.post(email_url(emailed_sale), {"language": "de"})
    (message,) = mail.outbox
    assert message.subject == "Ihr Geschenkgutschein von LINA shop"
    assert "Ihr druckbarer Gutschein:" in message.body


def test_a_double_click_sends_one_email(client, marketing, emailed_sale):
    client.force_login(marketing)
    client.post(email_url(emailed_sale), {"language": "en"}, follow=True)
    again = client.post(email_url(emailed_sale), {"language": "en"}, follow=True)
    assert len(mail.outbox) == 1
    [(level, text)] = shown_messages(again)
    assert level == "error" and "less than a minute ago" in text


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (smtplib.SMTPServerDisconnected("gone"), "the mail server did not accept it"),
        (ConnectionRefusedError(111, "refused"), "the mail server did not accept it"),
        (
            smtplib.SMTPRecipientsRefused({"ben@example.com": (550, b"no")}),
            "refused the address ben@example.com",
        ),
    ],
)
def test_a_failed_send_is_an_error_with_what_to_check_audited_and_can_be_retried(
    client, marketing, emailed_sale, monkeypatch, caplog, error, says
):
    def refuse(self, fail_silently=False):
        raise error

    monkeypatch.setattr(EmailMessage, "send", refuse)
    client.force_login(marketing)
    with caplog.at_level(logging.DEBUG):
        response = client.post(email_url(emailed_sale), {"language": "en"}, follow=True)
    [(level, text)] = shown_messages(response)
    assert level == "error" and says in text and "Nothing was sent" in text
    assert "Check" in text  # what to check comes with the error
    assert "message-success" not in response.content.decode()
    assert AuditEvent.objects.filter(action="sale.email_failed", object_id=str(emailed_sale.pk)).count() == 1
    assert not AuditEvent.objects.filter(action="sale.emailed").exists()
    assert emailed_sale.full_code not in caplog.text
    monkeypatch.undo()
    retried = client.post(
        email_url(emailed_sale), {"language": "en"}, follow=True
    )  # no pause after a failure
    assert [level for level, _text in shown_messages(retried)] == ["success"] and len(mail.outbox) == 1


def test_a_failed_send_in_german(client, marketing, emailed_sale, monkeypatch):
    def refuse(self, fail_silently=False):
        raise OSError("unreachable")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    client.cookies["django_language"] = "de"
    client.force_login(marketing)
    response = client.post(email_url(emailed_sale), {"language": "de"}, follow=True)
    [(level, text)] = shown_messages(response)
    assert level == "error" and "Die E-Mail konnte nicht gesendet werden" in text


def test_a_sale_without_an_address_cannot_be_sent(client, marketing, fake_provider, lina_template):
    sale = sell(lina_template, marketing)
    client.force_login(marketing)
    detail = client.get(reverse("vouchers:sale-detail", kwargs={"pk": sale.pk})).content.decode()
    assert email_url(sale) not in detail
    confirm = client.get(email_url(sale)).content.decode()
    assert "data-email-blocker" in confirm and "data-email-confirm" not in confirm
    response = client.post(email_url(sale), {"language": "en"}, follow=True)
    assert shown_messages(response) == [
        ("error", "This sale has no e-mail address, so there is nobody to send it to.")
    ]
    assert mail.outbox == []


def test_a_sale_that_did_not_go_through_cannot_be_sent(client, marketing, fake_provider, lina_template):
    fake_provider.lose_answer_next("purchase")
    sale = sell(lina_template, marketing, email="ben@example.com")
    client.force_login(marketing)
    response = client.post(email_url(sale), {"language": "en"}, follow=True)
    assert [level for level, _text in shown_messages(response)] == ["error"]
    assert mail.outbox == []


def test_only_roles_that_sell_and_see_full_codes_send(client, campaign_admin, outsider, emailed_sale):
    client.force_login(campaign_admin)
    detail = client.get(reverse("vouchers:sale-detail", kwargs={"pk": emailed_sale.pk})).content.decode()
    assert email_url(emailed_sale) not in detail
    assert client.post(email_url(emailed_sale), {"language": "en"}).status_code == 403
    client.force_login(outsider)
    assert client.post(email_url(emailed_sale), {"language": "en"}).status_code == 403
    assert mail.outbox == []
