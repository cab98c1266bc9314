"""System checks: configuration mistakes surface at start-up with a clear message."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .security import crypto


@checks.register(checks.Tags.security)
def encryption_keys_check(app_configs, **kwargs):
    try:
        crypto.validate_keys()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="vouchers.E001")]
    return []
