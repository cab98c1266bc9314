from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VouchersConfig(AppConfig):
    name = "vouchers"
    verbose_name = _("Vouchers")

    def ready(self):
        from . import (
            checks,  # noqa: F401  (registers system checks)
            tasks,  # noqa: F401  (fills the services' task hooks, services.queueing)
        )
