"""Fixtures of the browser tests."""

from tests.sales_support import lina_template, plain_template  # noqa: F401
