"""Selectors: read queries for views and tables (scoped, select_related, no N+1). One module per area."""
