"""Selectors: read queries for views and tables (select_related, no N+1), one module per area."""
