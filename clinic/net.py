"""Where a request comes from, for login throttling and the access log."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind CLINIC_TRUSTED_PROXY_COUNT proxies that each append the
    address they saw to X-Forwarded-For, the client is that many entries from the right: what
    the outermost of ours saw. Entries further left are whatever the client sent and are never
    read. Without proxies, or with a header shorter than expected, the socket's address."""
    count = settings.CLINIC_TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR", "")
    if not count:
        return remote
    forwarded = [
        entry.strip()
        for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if entry.strip()
    ]
    return forwarded[-count] if len(forwarded) >= count else remote
