"""Services: the only code that changes state. Keyword-only, typed, one transaction each."""
