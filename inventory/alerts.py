"""The managers' daily stock digest: low stock, lots expiring soon, lots in quarantine."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from clinic.accounts import users_with_permission

from . import reports
from .models import Lot, LotStatus, StockDigest


@dataclass
class Digest:
    day: date
    low: list[reports.ProductStock]
    expiring: list[reports.ExpiringLot]
    quarantined: list[Lot]

    @property
    def is_empty(self) -> bool:
        return not (self.low or self.expiring or self.quarantined)


def stock_digest_build(*, day: date) -> Digest:
    return Digest(
        day=day,
        low=reports.low_stock(today=day),
        expiring=reports.expiring(
            today=day, until=day + timedelta(days=settings.STOCK_EXPIRY_ALERT_DAYS)
        ),
        quarantined=list(
            Lot.objects.on_shelf()
            .filter(status=LotStatus.QUARANTINED)
            .select_related("product")
            .order_by("product__name", "expiry_date")
        ),
    )


@transaction.atomic
def stock_digest_send(*, day: date) -> bool:
    """Emails the digest to every manager, once for `day`: a second run (a retried task, two
    beats) finds the day's row and sends nothing. Returns whether it sent.

    The day's row is written first and the mail sent inside the same transaction: if sending
    fails the row is rolled back and a retry sends it."""
    digest = stock_digest_build(day=day)
    recipients = sorted(
        {user.email for user in users_with_permission("clinic.view_reports") if user.email}
    )
    try:
        with transaction.atomic():
            StockDigest.objects.create(day=day, recipients=len(recipients))
    except IntegrityError:
        return False
    if digest.is_empty or not recipients:
        return False
    context = {
        "digest": digest,
        "clinic_name": settings.CLINIC_NAME,
        "expiry_days": settings.STOCK_EXPIRY_ALERT_DAYS,
    }
    subject = _(
        "%(clinic)s stock for %(day)s: %(low)d low, %(expiring)d expiring, "
        "%(quarantined)d in quarantine"
    ) % {
        "clinic": settings.CLINIC_NAME,
        "day": day.strftime("%d/%m/%Y"),
        "low": len(digest.low),
        "expiring": len(digest.expiring),
        "quarantined": len(digest.quarantined),
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("inventory/email/stock_digest.txt", context),
        to=recipients,
        headers={"Message-ID": f"<stock-digest-{day.isoformat()}@{settings.CLINIC_MAIL_DOMAIN}>"},
    )
    message.send()
    return True
