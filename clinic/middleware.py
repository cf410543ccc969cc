"""Idle sessions end: SESSION_IDLE_MINUTES without a request and the next one finds the user
logged out. The session is saved again at most once a minute, not on every request."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.utils.translation import gettext as _

SEEN = "clinic.last_seen"
TOUCH_EVERY_SECONDS = 60


class IdleTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = int(time.time())
            last_seen = request.session.get(SEEN, now)
            if now - last_seen > settings.SESSION_IDLE_MINUTES * 60:
                logout(request)
                messages.info(request, _("You were logged out after a time without activity."))
            elif now - last_seen >= TOUCH_EVERY_SECONDS or SEEN not in request.session:
                # Saving the session also pushes its cookie's and its row's expiry forward.
                request.session[SEEN] = now
        return self.get_response(request)


def start_idle_clock(sender, request, user, **kwargs):
    """A login starts the idle clock afresh, even in a session kept from before it."""
    if request is not None and hasattr(request, "session"):
        request.session[SEEN] = int(time.time())
