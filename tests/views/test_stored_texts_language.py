"""The rest of issue 19, item 7, on the pages, in English and German: sale summaries, the bulk
batch's note, why sessions ended, stale-stock alerts (each stored as a code with parameters and
rendered in the reader's language), and what the connection test, "send to customer again",
hand-settling a sale and the stock monitor's last error say in each language. Rows written
before the codes existed still show their stored text."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.admin.test_connection_form import (
    LINA,
    PASSWORD,
    assert_no_green,
    lina_accepting,
    press_test,
    shown,
)
from vouchers.models import AuditEvent, BulkSale, StockAlert, StockMonitor
from vouchers.models.stock import AlertKind, AlertState
from vouchers.providers import errors
from vouchers.services import bulk_sales as bulk_svc
from vouchers.services import sales as svc
from vouchers.services.stock import stock_poll

pytestmark = pytest.mark.django_db

AUDIT = reverse("vouchers:audit-list")
FAKE_CODE = "FAKE000000000001"  # the fake provider's first sold code


def browser(language: str, user) -> Client:
    """A browser that chose ``language`` with the language switcher, signed in as ``user``."""
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    client.force_login(user)
    return client


def pages(url: str, user) -> tuple[str, str]:
    """The page as an English and as a German reader sees it."""
    return browser("en", user).get(url).content.decode(), browser("de", user).get(url).content.decode()


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def sell(template, user, **kwargs):
    return svc.gift_token_sell(
        campaign=template.campaign,
        user=user,
        request_token=svc.new_request_token(),
        amount=Decimal("25"),
        template=template,
        **kwargs,
    )


# --- 1. Sale summaries (services/sales.py) ---------------------------------------------------------


def test_sale_summaries_follow_the_readers_language(
    campaign_admin, marketing, lina_template, allsafe_campaign, fake_provider
):
    sold = sell(lina_template, marketing)
    fake_provider.fail_next("purchase", errors.AuthFailed())
    failed = sell(lina_template, marketing)
    fake_provider.lose_answer_next("purchase")
    lost = sell(lina_template, marketing)
    fake_provider.set_stock("Takealot", 100, 30)
    svc.digital_voucher_allocate(
        campaign=allsafe_campaign,
        user=marketing,
        request_token=svc.new_request_token(),
        vendor="Takealot",
        value=Decimal("100"),
    )

    english, german = pages(AUDIT, campaign_admin)

    assert f"Gift token {sold.code_masked} sold for 25.00 €" in english
    assert f"Geschenkgutschein {sold.code_masked} für 25,00 € verkauft" in german
    assert f"gift token (LINA) #{failed.pk} failed: The provider did not accept" in english
    assert f"Geschenkgutschein (LINA) #{failed.pk} fehlgeschlagen: Der Anbieter hat" in german
    assert f"gift token (LINA) #{lost.pk}: answer lost, needs review (never resent)" in english
    assert f"Geschenkgutschein (LINA) #{lost.pk}: Antwort verloren, muss geprüft werden" in german
    assert "Takealot voucher of R 100.00 allocated" in english  # rand, not a bare figure
    assert "Gutschein Takealot über R 100,00 zugeteilt" in german
    for english_only in ("sold for", "failed: The provider", "answer lost", "voucher of"):
        assert english_only not in german
    # The English text stays in the summary: the list's search and the raw data use it.
    event = AuditEvent.objects.get(action="sale.gift_token_sold")
    assert event.summary == f"Gift token {sold.code_masked} sold for 25.00 €"
    assert event.message["msgid"] == "Gift token %(code)s sold for %(amount)s"


def test_an_answer_that_arrives_after_a_hand_settlement_is_said_so_in_both_languages(
    campaign_admin, marketing, lina_template, fake_provider, monkeypatch
):
    from vouchers.models import ProviderOperation
    from vouchers.services.operations import operation_resolve

    original = fake_provider.purchase

    def settled_meanwhile(request):
        # While LINA works on the purchase, an admin settles the (still open) sale by hand.
        pending = ProviderOperation.objects.get(kind="purchase", state="pending")
        ProviderOperation.objects.filter(pk=pending.pk).update(state="needs_review")
        operation_resolve(operation_id=pending.pk, actor=campaign_admin, state="failed", reason="seen")
        return original(request)

    monkeypatch.setattr(fake_provider, "purchase", settled_meanwhile)
    sold = sell(lina_template, marketing)

    english, german = pages(AUDIT, campaign_admin)

    assert "sold for 25.00 € (answer arrived after the operation was resolved)" in english
    assert "für 25,00 € verkauft (Antwort kam erst nach der Klärung des Vorgangs)" in german
    assert AuditEvent.objects.filter(action="sale.gift_token_sold", object_id=str(sold.pk)).exists()


# --- 2. The bulk batch's note (services/bulk_sales.py) --------------------------------------------


BULK_FILE = b"amount,template,layout,from,for,email\r\n25,Standard,,,,\r\n30,Standard,,,,\r\n"


def test_a_stopped_batchs_note_follows_the_readers_language(
    campaign_admin, marketing, lina_template, fake_provider
):
    bulk = bulk_svc.bulk_sale_create(
        campaign=lina_template.campaign, user=marketing, filename="b.csv", data=BULK_FILE
    )
    BulkSale.objects.filter(pk=bulk.pk).update(state="queued")  # as bulk_sale_start leaves it
    fake_provider.fail_next("purchase", errors.AuthFailed())
    bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)
    bulk.refresh_from_db()
    url = reverse("vouchers:bulksale-detail", args=[bulk.pk])
    progress = reverse("vouchers:bulksale-progress", args=[bulk.pk])

    english, german = pages(url, marketing)
    english_json = browser("en", marketing).get(progress).json()
    german_json = browser("de", marketing).get(progress).json()

    assert "Stopped at line 2: The provider did not accept this campaign&#x27;s credentials." in english
    assert "Angehalten bei Zeile 2:" in german and "Beheben Sie das" in german
    assert "Stopped at line" not in german and "did not accept" not in german
    assert english_json["note"].startswith("Stopped at line 2:")
    assert german_json["note"].startswith("Angehalten bei Zeile 2:")
    assert bulk.note.startswith("Stopped at line 2: The provider did not accept")  # English, raw data
    audit_en, audit_de = pages(AUDIT, campaign_admin)
    assert f"b.csv #{bulk.pk} finished: Stopped at line 2" in audit_en
    assert f"b.csv #{bulk.pk} abgeschlossen: Angehalten bei Zeile 2" in audit_de


def test_a_cancelled_batchs_note_follows_the_readers_language(
    campaign_admin, marketing, lina_template, fake_provider
):
    bulk = bulk_svc.bulk_sale_create(
        campaign=lina_template.campaign, user=marketing, filename="c.csv", data=BULK_FILE
    )
    BulkSale.objects.filter(pk=bulk.pk).update(state="queued")  # as bulk_sale_start leaves it
    bulk_svc.bulk_sale_cancel(bulk_sale=bulk, user=marketing)  # queued: the run stops before a row
    bulk_svc.bulk_sale_run(bulk_sale_id=bulk.pk)
    url = reverse("vouchers:bulksale-detail", args=[bulk.pk])

    english, german = pages(url, marketing)

    assert "Cancelled by a person." in english
    assert "Von einer Person abgebrochen." in german and "Cancelled by a person." not in german
    audit_en, audit_de = pages(AUDIT, campaign_admin)
    assert f"c.csv #{bulk.pk} cancelled: Cancelled by a person." in audit_en
    assert f"c.csv #{bulk.pk} abgebrochen: Von einer Person abgebrochen." in audit_de


def test_a_batch_that_stopped_before_notes_were_stored_shows_its_text(marketing, lina_template):
    bulk = bulk_svc.bulk_sale_create(
        campaign=lina_template.campaign, user=marketing, filename="o.csv", data=BULK_FILE
    )
    BulkSale.objects.filter(pk=bulk.pk).update(state="finished", note="Cancelled by a person.")
    legacy = BulkSale.objects.filter(pk=bulk.pk).update
    url = reverse("vouchers:bulksale-detail", args=[bulk.pk])

    english, german = pages(url, marketing)
    assert "Cancelled by a person." in english and "Von einer Person abgebrochen." in german  # catalogue

    legacy(note="Angehalten: alter Freitext")
    english, german = pages(url, marketing)
    assert "Angehalten: alter Freitext" in english and "Angehalten: alter Freitext" in german  # as stored


# --- 3. Why sessions ended (services/accounts.py) ---------------------------------------------------


def test_ended_sessions_and_their_reason_follow_the_readers_language(superuser, campaign_admin, cashier):
    from vouchers.services.people import person_password_set

    till = Client()
    till.force_login(cashier)
    person_password_set(actor=campaign_admin, person_id=cashier.pk, password="A-new-password-for-the-till-1")

    english, german = pages(AUDIT, superuser)  # events about a person belong to no campaign

    assert "1 session of cashier ended: password reset by a campaign admin" in english
    assert "1 Sitzung von cashier beendet: Passwort von einem Kampagnen-Admin zurückgesetzt" in german
    assert "session of cashier ended" not in german
    event = AuditEvent.objects.get(action="user.sessions_ended")
    assert event.summary == "1 session of cashier ended: password reset by a campaign admin"
    assert event.data["reason"] == "password reset by a campaign admin" and event.data["sessions"] == 1


def test_sessions_ended_because_rights_changed_name_the_rights_in_both_languages(superuser, cashier):
    from vouchers.services.accounts import user_sessions_end
    from vouchers.staff_text import SESSIONS_RIGHTS_CHANGED

    for _ in range(2):
        Client().force_login(cashier)
    user_sessions_end(
        actor=superuser, user=cashier, reason=SESSIONS_RIGHTS_CHANGED, reason_params={"rights": "groups"}
    )

    english, german = pages(AUDIT, superuser)

    assert "2 sessions of cashier ended: rights changed: groups" in english
    assert "2 Sitzungen von cashier beendet: Rechte geändert: groups" in german


# --- 4. Stale-stock alerts (services/stock.py) ------------------------------------------------------


def _stale(campaign, fake_provider, error) -> StockAlert:
    """A campaign whose last successful poll is long ago and whose polls now fail with ``error``."""
    fake_provider.set_stock("Takealot", 100, 50)
    stock_poll(campaign_id=campaign.pk)
    StockMonitor.objects.filter(campaign=campaign).update(last_success_at=timezone.now() - timedelta(hours=3))
    fake_provider.fail_next("availability", error)
    stock_poll(campaign_id=campaign.pk)
    return StockAlert.objects.get(campaign=campaign, kind=AlertKind.STALE, state=AlertState.OPEN)


def test_a_stale_alert_follows_the_readers_language(
    campaign_admin, marketing, allsafe_campaign, fake_provider
):
    alert = _stale(allsafe_campaign, fake_provider, errors.ProviderUnavailable())
    since = timezone.localtime(allsafe_campaign.stock_monitor.last_success_at)
    url = reverse("vouchers:stock-detail", kwargs={"campaign": allsafe_campaign.slug})

    english, german = pages(url, marketing)
    dashboard_en, dashboard_de = pages(reverse("vouchers:stock-dashboard"), marketing)

    assert (
        f"No poll has succeeded since {since:%Y-%m-%d %H:%M}; the stock shown may be out of date. "
        "Last error: The provider could not be reached." in english
    )
    assert f"Seit {since:%d.%m.%Y %H:%M} war keine Abfrage erfolgreich" in german
    assert "Letzter Fehler: Der Anbieter war nicht erreichbar." in german
    assert "No poll has succeeded" not in german and "Last error" not in german
    assert "No poll has succeeded since" in dashboard_en and "war keine Abfrage erfolgreich" in dashboard_de
    assert alert.message.startswith("No poll has succeeded since")  # English, for CSV and admin
    assert alert.message_stored["msgid"] == "%(stale)s Last error: %(error)s"
    audit_en, audit_de = pages(AUDIT, campaign_admin)
    assert f"stale data alert opened for {allsafe_campaign.name}: No poll has succeeded since" in audit_en
    assert "war keine Abfrage erfolgreich" in audit_de


def test_an_open_stale_alert_shows_the_current_last_error_with_the_providers_words_labelled(
    marketing, allsafe_campaign, fake_provider
):
    _stale(allsafe_campaign, fake_provider, errors.ProviderUnavailable())
    fake_provider.fail_next("availability", errors.Rejected("Konto gesperrt"))
    stock_poll(campaign_id=allsafe_campaign.pk)  # still stale; the error changed
    url = reverse("vouchers:stock-detail", kwargs={"campaign": allsafe_campaign.slug})

    english, german = pages(url, marketing)
    alerts = english.split('id="alerts"')[1].split('id="current"')[0]  # the open alerts section

    assert (
        "Last error: The provider refused the request: “Konto gesperrt” (the provider&#x27;s own words)"
        in (english)
    )
    assert (
        "Letzter Fehler: Der Anbieter hat die Anfrage abgelehnt: „Konto gesperrt“ (Wortlaut des Anbieters)"
        in (german)
    )
    assert "Konto gesperrt" in alerts and "could not be reached" not in alerts  # the current error


def test_a_stale_alert_written_before_codes_shows_its_text(marketing, allsafe_campaign):
    # No monitor to render it from, no stored code: the text it was written with.
    alert = StockAlert.objects.create(
        campaign=allsafe_campaign,
        kind=AlertKind.STALE,
        message="No poll has succeeded yet; there is no stock data for this campaign.",
        opened_at=timezone.now(),
    )
    url = reverse("vouchers:stock-detail", kwargs={"campaign": allsafe_campaign.slug})

    english, german = pages(url, marketing)
    assert "No poll has succeeded yet; there is no stock data for this campaign." in english
    assert "Bisher war keine Abfrage erfolgreich" in german  # a catalogue sentence: translated

    StockAlert.objects.filter(pk=alert.pk).update(message="Seit gestern keine Daten (alter Freitext)")
    english, german = pages(url, marketing)
    assert "Seit gestern keine Daten (alter Freitext)" in english and "(alter Freitext)" in german


# --- The stock monitor's last error ----------------------------------------------------------------


def test_the_monitors_last_error_labels_the_providers_words_in_the_readers_language(
    marketing, allsafe_campaign, fake_provider
):
    fake_provider.fail_next("availability", errors.Rejected("Tresor nicht verknüpft"))
    stock_poll(campaign_id=allsafe_campaign.pk)
    url = reverse("vouchers:stock-detail", kwargs={"campaign": allsafe_campaign.slug})

    english, german = pages(url, marketing)

    assert "The provider refused the request: “Tresor nicht verknüpft” (the provider&#x27;s own words)" in (
        english
    )
    assert (
        "Der Anbieter hat die Anfrage abgelehnt: „Tresor nicht verknüpft“ (Wortlaut des Anbieters)" in german
    )
    assert "The provider refused" not in german
    monitor = StockMonitor.objects.get(campaign=allsafe_campaign)
    assert monitor.last_error_stored["code"] == "provider.rejected"


def test_a_monitor_error_written_before_codes_shows_its_text(marketing, allsafe_campaign):
    StockMonitor.objects.update_or_create(
        campaign=allsafe_campaign,
        defaults={
            "last_poll_at": timezone.now(),
            "last_error_code": "ProviderUnavailable",
            "consecutive_failures": 1,
            "last_error_message": "The provider could not be reached. Nothing was changed; try again in a moment.",
        },
    )
    url = reverse("vouchers:stock-detail", kwargs={"campaign": allsafe_campaign.slug})

    english, german = pages(url, marketing)

    assert "The provider could not be reached." in english
    assert "Der Anbieter war nicht erreichbar." in german


# --- Test connection (admin) ------------------------------------------------------------------------


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.mark.parametrize(
    ("language", "says", "step", "check"),
    [
        ("en", "LINA refused the login", "Failed step: LINA login", "What to check"),
        ("de", "LINA hat die Anmeldung abgelehnt", "Fehlgeschlagener Schritt", "Bitte prüfen"),
    ],
)
def test_a_failed_connection_test_is_an_error_in_the_readers_language(
    client, mocked, campaign_admin, lina_campaign, language, says, step, check
):
    lina_accepting(mocked, LINA, PASSWORD)
    client.force_login(campaign_admin)

    response = press_test(client, lina_campaign, language=language, new_password="wrong-typed-password")

    messages = shown(response)
    assert_no_green(messages)
    text = " ".join(t for _level, t in messages)
    assert says in text and step in text and check in text
    assert "The connection works" not in text and "Die Verbindung funktioniert" not in text
    if language == "de":
        assert "refused the login" not in text and "Failed step" not in text


# --- "Send to customer again" ------------------------------------------------------------------------


@pytest.fixture
def emailed_sale(marketing, fake_provider, lina_template):
    return sell(lina_template, marketing, layout=1, from_name="Anna", for_name="Ben", email="ben@example.com")


def test_sending_again_says_what_happened_in_the_readers_language(campaign_admin, marketing, emailed_sale):
    url = reverse("vouchers:sale-email", kwargs={"pk": emailed_sale.pk})
    german = browser("de", marketing)

    sent = german.post(url, {"language": "de"}, follow=True)
    again = german.post(url, {"language": "de"}, follow=True)
    english_again = browser("en", marketing).post(url, {"language": "en"}, follow=True)

    assert messages_of(sent) == [
        ("success", "Der Geschenkgutschein wurde per E-Mail an ben@example.com geschickt.")
    ]
    [(level, text)] = messages_of(again)
    assert level == "error" and "e-mailed less than a minute ago" not in text and "Minute" in text
    [(level, text)] = messages_of(english_again)
    assert level == "error" and "less than a minute ago" in text
    audit_en, audit_de = pages(AUDIT, campaign_admin)
    assert f"Gift token {emailed_sale.code_masked} e-mailed again to ben@example.com" in audit_en
    assert f"Geschenk-Token {emailed_sale.code_masked} erneut an ben@example.com gesendet" in audit_de


# --- Hand-settling a sale ------------------------------------------------------------------------------


def test_hand_settlement_audit_sentences_follow_the_readers_language(
    client, campaign_admin, marketing, lina_template, fake_provider
):
    import re

    fake_provider.lose_answer_next("purchase")
    sold = sell(lina_template, marketing)
    fake_provider.lose_answer_next("purchase")
    not_sold = sell(lina_template, marketing)
    client.force_login(campaign_admin)
    resolve = reverse("vouchers:sale-resolve", args=[sold.pk])
    shown_card = client.post(
        resolve, {"outcome": "sold", "code": FAKE_CODE, "reason": "seen"}
    ).content.decode()
    check = re.search(r'name="check" value="(\d+)"', shown_card).group(1)
    client.post(
        resolve,
        {"step": "confirm", "outcome": "sold", "code": FAKE_CODE, "check": check, "reason": "LINA shows it"},
    )
    client.post(
        reverse("vouchers:sale-resolve", args=[not_sold.pk]), {"outcome": "not_sold", "reason": "not at LINA"}
    )
    sold.refresh_from_db()
    assert (
        sold.operation.state == "succeeded"
        and not_sold.operation.__class__.objects.get(pk=not_sold.operation_id).state == "failed"
    )

    english, german = pages(AUDIT, campaign_admin)

    assert f"gift token (LINA) #{sold.pk} settled by hand as sold: needs review → succeeded, code" in english
    assert (
        f"Geschenkgutschein (LINA) #{sold.pk} von Hand als verkauft geklärt: Prüfung nötig → erfolgreich"
        in (german)
    )
    assert "geklärt: needs_review" not in german
    assert f"sell gift token #{not_sold.operation_id} resolved by hand: needs review → failed" in english
    assert "von Hand geklärt" in german
    assert "settled by hand" not in german and "resolved by hand" not in german


def test_a_bulk_rows_amount_range_is_written_for_the_reader_not_the_uploader(marketing, lina_template):
    from django.utils import translation

    data = b"amount,template,layout,from,for,email\r\n3.00,Standard,,,,\r\n"
    with translation.override("de"):  # uploaded by someone working in German
        bulk = bulk_svc.bulk_sale_create(
            campaign=lina_template.campaign, user=marketing, filename="r.csv", data=data
        )
    url = reverse("vouchers:bulksale-detail", args=[bulk.pk])

    english, german = pages(url, marketing)

    assert "The amount must be between 5.00 € and 500.00 € for this campaign." in english
    assert "zwischen 5,00 € und 500,00 € liegen" in german
    assert bulk.rows.get().errors == ["The amount must be between 5.00 € and 500.00 € for this campaign."]
