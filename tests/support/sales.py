"""Fixtures and helpers for the sales tests (import the fixtures into a test module to use them)."""

from __future__ import annotations

import pytest

from vouchers.models import SaleTemplate


@pytest.fixture
def lina_template(lina_campaign):
    """A template allowing layouts 1 and 2."""
    return SaleTemplate.objects.create(
        campaign=lina_campaign, name="Standard", template_hash="tpl-hash-standard", allowed_layouts=[1, 2]
    )


@pytest.fixture
def plain_template(lina_campaign):
    """A template without layouts."""
    return SaleTemplate.objects.create(campaign=lina_campaign, name="Plain", template_hash="tpl-hash-plain")


def csv_file(*lines: str, header: str = "amount,template,layout,from,for,email", sep: str = "\n") -> bytes:
    return (sep.join([header, *lines]) + sep).encode("utf-8")
