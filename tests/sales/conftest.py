"""Fixtures of the sales tests."""

from tests.sales_support import lina_template, plain_template  # noqa: F401
