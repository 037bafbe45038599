"""Logging filters: what must never reach a log.

An invitation's link (``/invitation/<token>/``) is a bearer secret until it is used: whoever reads it
in a log can accept the invitation. Django names the path in ``django.request`` (a 4xx or 5xx
answer: ``Not Found: /invitation/…/``) and in ``django.server`` (every request of ``runserver``),
sometimes inside a ``?next=`` (``%2Finvitation%2F…``); ``RedactInvitationTokens`` replaces the token
in those records with ``[redacted]`` (``LOGGING`` in settings attaches it to both loggers).
"""

from __future__ import annotations

import logging
import re

# The path segment after "invitation", plain or percent-encoded ("%2F" for "/").
INVITATION_TOKEN = re.compile(r"(/|%2F)invitation(/|%2F)[^/%?&#\s\"']+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_invitation_tokens(text: str) -> str:
    return INVITATION_TOKEN.sub(lambda m: f"{m[1]}invitation{m[2]}{REDACTED}", text)


class RedactInvitationTokens(logging.Filter):
    """Rewrites a record whose message holds an invitation link, keeping everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error reporting
            return True
        redacted = redact_invitation_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
