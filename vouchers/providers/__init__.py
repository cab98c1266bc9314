"""Adapters to the two voucher providers. See base.py for the interface, errors.py for errors."""
