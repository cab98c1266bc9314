"""German: a complete catalogue, compiled and committed, and German pages on every main flow.

The catalogue is read with a small parser here (no polib): every entry translated, nothing fuzzy,
placeholders kept, every string the code and templates mark for translation present, and the
committed .mo holding exactly what the .po says. Then the main pages of each flow are rendered in
German with the test client and must not show any longer English sentence of the catalogue.
"""

from __future__ import annotations

import ast
import gettext
import html
import re
import shutil
import subprocess
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation.template import templatize

from tests.support.sales import csv_file, lina_template  # noqa: F401
from vouchers.models import ProviderOperation, StockThreshold
from vouchers.providers import errors
from vouchers.services.audit import audit_record
from vouchers.services.pipeline import operation_claim
from vouchers.services.stock import stock_poll
from vouchers.values.formatting import format_amount, format_money, strip_grouping

BASE = Path(settings.BASE_DIR)
# Pages rendered when the database may be gone (no request context, no translation machinery):
# static, with their text in English and German side by side.
STATIC_BILINGUAL = {"500.html", "503.html"}
PO = BASE / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
CODE = "ABCD1234EFGH5678"

pytestmark = pytest.mark.django_db

# --- The catalogue ----------------------------------------------------------------------------------


def parse_po(text: str) -> list[dict]:
    """Entries of a .po file: msgctxt, msgid, msgid_plural, msgstr {index: text}, flags."""
    entries = []
    for block in re.split(r"\n\s*\n", text.strip()):
        entry: dict = {"flags": [], "msgstr": {}}
        key = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"] += [flag.strip() for flag in line[2:].split(",")]
            elif line.startswith("#") or not line.strip():
                continue
            elif line.startswith('"'):
                value = ast.literal_eval(line)
                if isinstance(key, int):
                    entry["msgstr"][key] += value
                else:
                    entry[key] += value
            else:
                match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(".*")$', line)
                assert match, f"unreadable line in {PO.name}: {line!r}"
                name, index, value = match.group(1), match.group(2), ast.literal_eval(match.group(3))
                if name == "msgstr":
                    key = int(index or 0)
                    entry["msgstr"][key] = value
                else:
                    key = name
                    entry[name] = value
        entries.append(entry)
    return entries


def catalogue() -> list[dict]:
    """The entries without the header."""
    return [e for e in parse_po(PO.read_text(encoding="utf-8")) if e.get("msgid")]


def header() -> str:
    [head] = [e for e in parse_po(PO.read_text(encoding="utf-8")) if e.get("msgid") == ""]
    return head["msgstr"][0]


PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]|%[sdif]")


def test_po_header_is_german_with_german_plural_forms():
    text = header()
    assert "Language: de\n" in text
    assert "Plural-Forms: nplurals=2; plural=(n != 1);" in text
    assert "charset=UTF-8" in text


def test_every_entry_is_translated_and_nothing_is_fuzzy():
    entries = catalogue()
    assert len(entries) > 500
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    untranslated = [
        e["msgid"]
        for e in entries
        if not e["msgstr"] or any(not text.strip() for text in e["msgstr"].values())
    ]
    assert fuzzy == []
    assert untranslated == []
    plural_entries = [e for e in entries if "msgid_plural" in e]
    assert plural_entries and all(sorted(e["msgstr"]) == [0, 1] for e in plural_entries)
    assert "fuzzy" not in PO.read_text(encoding="utf-8")


def test_placeholders_survive_translation():
    wrong = []
    for entry in catalogue():
        sources = [entry["msgid"], entry.get("msgid_plural", entry["msgid"])]
        expected = {name for source in sources for name in PLACEHOLDER.findall(source)}
        for text in entry["msgstr"].values():
            if set(PLACEHOLDER.findall(text)) - expected or (
                "msgid_plural" not in entry and set(PLACEHOLDER.findall(text)) != expected
            ):
                wrong.append((entry["msgid"], text))
    assert wrong == []


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU msgfmt is not installed")
def test_msgfmt_accepts_the_catalogue(tmp_path):
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "check.mo"), str(PO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr


def test_committed_mo_matches_the_po():
    """The .mo (what Django reads at run time, committed so no tool is needed) equals the .po."""
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog
    expected = {}
    for entry in catalogue():
        msgid = entry["msgid"]
        if "msgctxt" in entry:
            msgid = f"{entry['msgctxt']}\x04{msgid}"
        if "msgid_plural" in entry:
            for index, text in entry["msgstr"].items():
                expected[(msgid, index)] = text
        else:
            expected[msgid] = entry["msgstr"][0]
    compiled = {key: value for key, value in compiled.items() if key != ""}
    assert compiled == expected, "locale/de/LC_MESSAGES/django.mo is stale: run manage.py compilemessages"


# --- Every marked string is in the catalogue -----------------------------------------------------

GETTEXT_CALLS = {"_", "gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy"}
SOURCE_DIRS = ["vouchers", "portal"]


def catalogue_keys() -> set:
    return {(e.get("msgctxt"), e["msgid"]) for e in catalogue()}


def marked_in_python() -> set:
    found = set()
    for directory in SOURCE_DIRS:
        for path in (BASE / directory).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name not in GETTEXT_CALLS or not node.args:
                    continue
                args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
                if name.startswith("pgettext") and len(args) >= 2 and isinstance(args[1], str):
                    found.add((args[0], args[1], path.name))
                elif isinstance(args[0], str):
                    found.add((None, args[0], path.name))
    return found


_TEMPLATE_CALL = re.compile(
    r"\b(gettext|ngettext|pgettext|npgettext)\(((?:u'(?:[^'\\]|\\.)*'(?:,\s*)?)+)", re.S
)


def marked_in_templates() -> set:
    found = set()
    for path in (BASE / "templates").rglob("*"):
        if not path.is_file() or path.name in STATIC_BILINGUAL:
            continue
        for call, args in _TEMPLATE_CALL.findall(
            templatize(path.read_text(encoding="utf-8"), origin=str(path))
        ):
            strings = ast.literal_eval(f"({args.rstrip(', ')},)")
            if call in ("pgettext", "npgettext"):
                found.add((strings[0], strings[1], path.name))
            else:
                found.add((None, strings[0], path.name))
    return found


def test_every_marked_string_of_the_code_and_templates_is_in_the_catalogue():
    keys = catalogue_keys()
    marked = marked_in_python() | marked_in_templates()
    assert len(marked) > 400
    missing = sorted((where, msgid) for context, msgid, where in marked if (context, msgid) not in keys)
    assert missing == [], "run manage.py makemessages -l de and translate the new entries"


def test_templates_have_no_unwrapped_text():
    """Text between tags of a template must come from {% translate %} or a variable."""
    offenders = {}
    for path in (BASE / "templates").rglob("*.html"):
        if path.name in STATIC_BILINGUAL:  # static on purpose: they carry both languages
            continue
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\{%\s*blocktranslate.*?\{%\s*endblocktranslate\s*%\}", " ", text, flags=re.S)
        text = re.sub(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", " ", text, flags=re.S)
        attributes = re.findall(r'(?:title|alt|aria-label|placeholder)="([^"]*[A-Za-z]{3}[^"]*)"', text)
        text = re.sub(r"<[^>]+>", " ", text)
        text = re.sub(r"\S*[-=]\S*", " ", text)  # attribute and class names left by blocks
        words = re.findall(r"[A-Za-z]{3,}", text)
        leftovers = [w for w in words if w not in {"ms"}] + attributes
        if leftovers:
            offenders[path.name] = leftovers
    assert offenders == {}


# --- German pages contain no English sentence of the catalogue -----------------------------------


def english_phrases() -> list[str]:
    """Literal parts (three words or more) of every msgid whose German text differs.

    Brand names, codes and URLs translate to themselves and are left out; so are short words
    ("Code", "Layout") that German shares with English.
    """
    phrases = set()
    for entry in catalogue():
        if all(text == entry["msgid"] for text in entry["msgstr"].values()):
            continue
        for source in (entry["msgid"], entry.get("msgid_plural", "")):
            for part in re.split(r"%\(\w+\)[sdif]|<[^>]+>|[\"“”„]", source):
                part = " ".join(part.split()).strip(" .,:;()")
                if len(part.split()) >= 3:
                    phrases.add(part)
    return sorted(phrases)


def visible_text(body: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S | re.I)
    body = re.sub(r"<[^>]+>", " ", body)
    return " ".join(html.unescape(body).split())


def assert_german(response_or_html, *, must_contain: tuple[str, ...] = ()):
    body = response_or_html if isinstance(response_or_html, str) else response_or_html.content.decode()
    if not isinstance(response_or_html, str):
        assert response_or_html.status_code in (200, 403, 404, 429), response_or_html.status_code
        assert re.search(r'<html lang="de"[ >]', body)
    text = visible_text(body)
    english = [phrase for phrase in english_phrases() if phrase in text]
    assert english == [], f"English text on a German page: {english}"
    for expected in must_contain:
        assert expected in text, f"{expected!r} missing from the German page"
    return text


@pytest.fixture
def german(client):
    """A client that chose German with the language switcher (the cookie it sets)."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "de"
    return client


@pytest.fixture
def desk(german, cashier, fake_provider):
    fake_provider.add_token(CODE, "1234.50", valid_until=date(2099, 12, 31))
    german.force_login(cashier)
    return german


def desk_check(client) -> str:
    response = client.post(reverse("vouchers:desk-check", kwargs={"campaign": "lina-shop"}), {"code": CODE})
    assert response.status_code == 200
    return response.content.decode()


def desk_redeem(client, body: str, amount: str):
    fields = {
        name: re.search(rf'name="{name}" value="([^"]*)"', body).group(1)
        for name in ("code", "check", "request_token")
    }
    return client.post(
        reverse("vouchers:desk-redeem", kwargs={"campaign": "lina-shop"}), {"amount": amount, **fields}
    )


def test_the_switcher_sets_a_lasting_cookie_and_the_page_language(client, cashier):
    client.force_login(cashier)
    response = client.post(reverse("set_language"), {"language": "de", "next": reverse("vouchers:home")})
    assert response.status_code == 302
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie.value == "de" and int(cookie["max-age"]) >= 30 * 24 * 3600
    page = client.get(reverse("vouchers:home"))
    assert '<html lang="de">' in page.content.decode()
    assert '<option value="de" selected>' in page.content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": reverse("vouchers:home")})
    assert '<html lang="en">' in client.get(reverse("vouchers:home")).content.decode()


def test_login_page(german):
    assert_german(german.get(reverse("login")), must_contain=("Anmelden", "Benutzername", "Passwort"))


def test_locked_out_page(german, cashier, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _attempt in range(3):
        response = german.post(reverse("login"), {"username": cashier.username, "password": "wrong-password"})
    assert_german(response, must_contain=("Anmeldung vorübergehend gesperrt",))


def test_home_page_and_role_names(german, cashier):
    german.force_login(cashier)
    assert_german(german.get(reverse("vouchers:home")), must_contain=("Willkommen", "Kassenkraft", "Kasse"))


def test_error_pages(german, cashier):
    german.force_login(cashier)
    assert_german(german.get(reverse("vouchers:audit-list")), must_contain=("Kein Zugriff",))
    missing = german.get(reverse("vouchers:desk-check", kwargs={"campaign": "no-such-campaign"}))
    assert missing.status_code == 404
    assert_german(missing, must_contain=("Nicht gefunden",))


def test_desk_token_card_in_german_formats(desk):
    text = assert_german(desk_check(desk), must_contain=("Gutschein prüfen", "Restwert", "Einlösen"))
    assert "1.234,50 €" in text  # remaining value, German separators
    assert "31.12.2099" in text  # valid until, German short date
    assert 'value="1234,50"' in desk_check(desk)  # the prefilled amount, as a German types it


def test_desk_redeem_slip(desk, fake_provider):
    body = desk_check(desk)
    response = desk_redeem(desk, body, "1.000,25")  # as the page shows amounts: accepted
    assert response.status_code == 302
    assert fake_provider.calls["redeem"] == 1
    text = assert_german(desk.get(response["Location"]), must_contain=("Einlösebeleg", "Neues Guthaben"))
    assert "1.000,25 € eingelöst" in text and "234,25 €" in text


def test_desk_amount_errors_in_german(desk, fake_provider):
    response = desk_redeem(desk, desk_check(desk), "5000")
    assert response.status_code == 200 and fake_provider.calls["redeem"] == 0
    assert_german(response, must_contain=("höher als der Restwert von 1.234,50 €",))


def test_unknown_outcome_page(desk, fake_provider):
    body = desk_check(desk)
    fake_provider.fail_next("check", errors.ProviderUnavailable())
    fake_provider.lose_answer_next("redeem")
    page = desk.get(desk_redeem(desk, body, "20")["Location"])
    assert_german(page, must_contain=("Ergebnis unbekannt", "Händigen Sie noch keine Ware aus"))


def test_todays_redemptions(desk):
    desk_redeem(desk, desk_check(desk), "20")
    text = assert_german(desk.get(reverse("vouchers:desk-today")), must_contain=("Heutige Einlösungen",))
    assert "20,00 €" in text


@pytest.fixture
def unresolved(lina_campaign):
    operation = operation_claim(
        campaign=lina_campaign, user=None, kind="redeem", amount=Decimal("12.5"), code=CODE
    ).operation
    ProviderOperation.objects.filter(pk=operation.pk).update(
        state="needs_review", error_message=str(errors.OutcomeUnknown.default_message)
    )
    return operation


def test_operation_review_and_resolve(german, campaign_admin, unresolved):
    german.force_login(campaign_admin)
    text = assert_german(
        german.get(reverse("vouchers:operation-review")), must_contain=("Ungeklärte Vorgänge",)
    )
    assert "12,50 €" in text
    resolve = german.get(reverse("vouchers:operation-resolve", args=[unresolved.pk]))
    # The error was stored in English by the process that recorded it; it is shown in German.
    assert_german(
        resolve,
        must_contain=(
            "Vorgang klären",
            "Begründung",
            "Es ist nicht bekannt, ob der Vorgang ausgeführt wurde",
        ),
    )
    refused = german.post(
        reverse("vouchers:operation-resolve", args=[unresolved.pk]), {"state": "", "reason": ""}
    )
    assert_german(refused, must_contain=("Begründen Sie",))


SELL_URL = reverse("vouchers:sale-sell", kwargs={"campaign": "lina-shop"})


def sell(client, **data):
    page = client.get(SELL_URL)
    token = re.search(rb'name="request_token" value="([0-9a-f]{32})"', page.content).group(1).decode()
    return client.post(SELL_URL, {"request_token": token, "layout": "", **data})


def test_sell_form_and_its_errors(german, marketing, lina_template):  # noqa: F811
    german.force_login(marketing)
    assert_german(
        german.get(SELL_URL), must_contain=("Geschenkgutschein verkaufen", "Zwischen 5,00 € und 500,00 €")
    )
    refused = sell(german, amount="600", template=lina_template.pk)
    assert_german(refused, must_contain=("zwischen 5,00 € und 500,00 € liegen",))


def test_sale_results(german, marketing, fake_provider, lina_template):  # noqa: F811
    german.force_login(marketing)
    sold = sell(
        german, amount="25,50", template=lina_template.pk, layout="1", from_name="Anna", for_name="Ben"
    )
    assert sold.status_code == 302
    text = assert_german(german.get(sold["Location"]), must_contain=("Geschenkgutschein verkauft",))
    assert "25,50 €" in text
    fake_provider.fail_next("purchase", errors.ValidationFailed())
    failed = sell(german, amount="30", template=lina_template.pk)
    assert_german(german.get(failed["Location"]), must_contain=("Nicht verkauft", "Bitte prüfen"))


def test_allocate_page(german, marketing, allsafe_campaign, fake_provider):
    fake_provider.set_stock("Takealot", 1000, 3)
    german.force_login(marketing)
    german.post(reverse("vouchers:availability-refresh", kwargs={"campaign": "allsafe-vault"}))
    page = german.get(reverse("vouchers:sale-allocate", kwargs={"campaign": "allsafe-vault"}))
    text = assert_german(page, must_contain=("Digitalen Gutschein zuteilen", "Verfügbarkeit"))
    assert "Takealot \u2013 R 1.000 (3 verfügbar)" in text  # rand, marked (issue 19)


def test_bulk_upload_and_preview(german, marketing, lina_template):  # noqa: F811
    german.force_login(marketing)
    upload_url = reverse("vouchers:bulksale-upload", kwargs={"campaign": "lina-shop"})
    assert_german(german.get(upload_url), must_contain=("Sammelverkauf aus einer CSV-Datei",))
    data = csv_file("25,Standard,,,,", "1000,Standard,,,,", "30,Nope,,,,")
    response = german.post(
        upload_url, {"file": SimpleUploadedFile("sale.csv", data, content_type="text/csv")}
    )
    assert response.status_code == 302
    assert_german(german.get(response["Location"]), must_contain=("1 gültige Zeile verkaufen", "ungültig"))
    empty = german.post(upload_url, {"file": SimpleUploadedFile("e.csv", b"", content_type="text/csv")})
    assert_german(empty, must_contain=("Sammelverkauf",))


def test_sales_list_with_a_german_amount_filter(german, marketing, fake_provider, lina_template):  # noqa: F811
    german.force_login(marketing)
    sell(german, amount="25,50", template=lina_template.pk)
    sell(german, amount="100", template=lina_template.pk)
    page = german.get(reverse("vouchers:sale-list"), {"amount_min": "20,00", "amount_max": "50,5"})
    text = assert_german(page, must_contain=("Verkäufe", "Betrag von/bis"))
    assert "25,50 €" in text and "100,00 €" not in text


@pytest.fixture
def stock_history(allsafe_campaign, fake_provider, campaign_admin):
    """A low-stock alert and a vault problem, both written by polls in the default language."""
    fake_provider.set_stock("Takealot", 1000, 3)
    stock_poll(campaign_id=allsafe_campaign.pk)
    fake_provider.fail_next("availability", errors.AuthFailed(status_code=401))
    stock_poll(campaign_id=allsafe_campaign.pk)
    return allsafe_campaign


def test_stock_dashboard_and_detail(german, marketing, stock_history):
    german.force_login(marketing)
    dashboard = assert_german(
        german.get(reverse("vouchers:stock-dashboard")), must_contain=("Offene Warnungen",)
    )
    assert "Nur noch 3 Gutscheine Takealot R 1.000,00 übrig" in dashboard
    detail = german.get(reverse("vouchers:stock-detail", kwargs={"campaign": "allsafe-vault"}))
    text = assert_german(detail, must_contain=("Aktueller Bestand", "Letzter Fehler", "Bitte prüfen"))
    assert "1.000,00" in text


def test_stock_thresholds_accept_german_amounts(german, campaign_admin, allsafe_campaign):
    german.force_login(campaign_admin)
    url = reverse("vouchers:stock-thresholds", kwargs={"campaign": "allsafe-vault"})
    assert_german(german.get(url), must_contain=("Standard-Schwellenwert",))
    form = {
        "default_threshold": "10",
        "overrides-TOTAL_FORMS": "1",
        "overrides-INITIAL_FORMS": "0",
        "overrides-0-vendor": "Takealot",
        "overrides-0-value": "1.000,50",
        "overrides-0-threshold": "4",
    }
    assert german.post(url, form).status_code == 302
    assert StockThreshold.objects.get(campaign=allsafe_campaign).value == Decimal("1000.50")
    assert 'value="1000,50"' in german.get(url).content.decode()
    bad = german.post(url, {**form, "default_threshold": "-1"})
    assert_german(bad, must_contain=("Es wurde nichts gespeichert",))


def test_audit_list(german, campaign_admin, lina_campaign):
    audit_record(
        actor=campaign_admin, action="membership.added", summary="anna → LINA shop", campaign=lina_campaign
    )
    german.force_login(campaign_admin)
    assert_german(
        german.get(reverse("vouchers:audit-list")), must_contain=("Prüfprotokoll", "Aktion beginnt mit")
    )


def test_admin_campaign_change_form(german, campaign_admin, lina_campaign):
    german.force_login(campaign_admin)
    page = german.get(reverse("admin:vouchers_campaign_change", args=[lina_campaign.pk]))
    assert_german(
        page,
        must_contain=(
            "Verbindung testen",
            "Zugangsdaten",
            "Geheime Werte werden verschlüsselt gespeichert",
            "Gespeicherte Zugangsdaten",
        ),
    )


# --- E-mail language ---------------------------------------------------------------------------------


def test_stock_alert_email_is_in_the_portals_default_language(
    allsafe_campaign, campaign_admin, fake_provider, mailoutbox, settings
):
    settings.LANGUAGE_CODE = "de"
    fake_provider.set_stock("Takealot", 1000, 3)
    with translation.override("en"):  # whatever the sending process has active
        stock_poll(campaign_id=allsafe_campaign.pk)
    [mail] = mailoutbox
    assert mail.subject.startswith("Bestandswarnung für")
    assert_german(mail.body, must_contain=("Nur noch 3 Gutscheine Takealot R 1.000,00 übrig", "Bestand"))


def test_stock_alert_email_in_english_by_default(allsafe_campaign, campaign_admin, fake_provider, mailoutbox):
    fake_provider.set_stock("Takealot", 1000, 3)
    with translation.override("de"):
        stock_poll(campaign_id=allsafe_campaign.pk)
    [mail] = mailoutbox
    assert mail.subject.startswith("Stock alert for") and "Only 3 Takealot R 1,000.00 vouchers" in mail.body


def test_alert_email_template_renders_in_german(allsafe_campaign, fake_provider):
    fake_provider.set_stock("Takealot", 50, 0)
    stock_poll(campaign_id=allsafe_campaign.pk)
    with translation.override("de"):
        body = render_to_string(
            "vouchers/stock_alert_email.txt",
            {"campaign": allsafe_campaign, "alerts": list(allsafe_campaign.stock_alerts.all())},
        )
    assert_german(body, must_contain=("Bestandswarnungen für die Kampagne", "Ausverkauft"))


# --- Money and dates per language ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "money", "plain", "short_date"),
    [("de", "1.234,50 €", "1234,50", "31.12.2099"), ("en", "1,234.50 €", "1234.50", "2099-12-31")],
)
def test_money_and_dates_per_language(language, money, plain, short_date):
    from django.utils import formats

    with translation.override(language):
        assert format_money(Decimal("1234.5")) == money
        assert format_amount(Decimal("1234.5"), grouping=False) == plain
        assert format_amount(Decimal("1000"), decimals=None) in ("1.000", "1,000")
        assert formats.date_format(date(2099, 12, 31), "SHORT_DATE_FORMAT") == short_date
        assert format_money(None) == ""


def test_english_pages_keep_english_formats(client, cashier, fake_provider):
    fake_provider.add_token(CODE, "1234.50", valid_until=date.today() + timedelta(days=30))
    client.force_login(cashier)
    text = visible_text(desk_check(client))
    assert "1,234.50 €" in text
    assert (date.today() + timedelta(days=30)).isoformat() in text


@pytest.mark.parametrize(
    ("typed", "read"),
    [("1.234,50", "1234.50"), ("1,234.50", "1234.50"), ("12,50", "12,50"), ("1.234.50", "1.234.50")],
)
def test_grouped_amounts_are_read_only_when_unambiguous(typed, read):
    assert strip_grouping(typed) == read


def test_the_english_check_would_catch_an_untranslated_page(client, cashier):
    """Guard for the page tests above: the same page in English is full of catalogue phrases."""
    client.force_login(cashier)
    text = visible_text(client.get(reverse("vouchers:home")).content.decode())
    assert len(english_phrases()) > 300
    assert [phrase for phrase in english_phrases() if phrase in text]
