"""Keeping secrets secret: field encryption and log redaction."""
