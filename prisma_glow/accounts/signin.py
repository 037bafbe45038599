"""The pending sign-in: a password accepted, the second factor not yet given.

Kept in the (anonymous) session under ``PENDING``: the user's id, the authentication backend that
accepted the password, when (seconds since the epoch), and the user's session auth hash (a password
changed meanwhile voids it). It lasts ``PENDING_SECONDS``; the code step then either completes the
sign-in (Django's ``login()``, which replaces the session key again) or, once expired, sends the user
back to the password.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils.crypto import constant_time_compare

from prisma_glow import sessions

PENDING = "_pg_pending_signin"
# How long a pending sign-in waits for its code.
PENDING_SECONDS = 5 * 60
# Set at login when the user has no second factor: the header then offers to set one up (no query).
NO_FACTOR = "_pg_no_factor"


def start(request, user) -> None:
    """``user`` passed the password step: remember it, under a new session key, until the code."""
    request.session.cycle_key()
    request.session[PENDING] = {
        "user": user.pk,
        "backend": user.backend,
        "at": sessions.now_seconds(),
        "hash": user.get_session_auth_hash(),
    }


def pending_user(request):
    """The user whose sign-in waits for a code in this session (with ``backend`` set), or None when
    there is none, it is older than ``PENDING_SECONDS``, or the account changed since."""
    data = request.session.get(PENDING)
    if not isinstance(data, dict) or not isinstance(data.get("at"), int):
        return None
    if sessions.now_seconds() - data["at"] >= PENDING_SECONDS:
        return None
    user = get_user_model().objects.filter(pk=data.get("user"), is_active=True, is_staff=True).first()
    if user is None or not constant_time_compare(str(data.get("hash", "")), user.get_session_auth_hash()):
        return None
    user.backend = data.get("backend")
    return user


def had_pending(request) -> bool:
    """Whether the session holds a pending sign-in, expired or not (to say why the code step refused)."""
    return PENDING in request.session


def clear(request) -> None:
    request.session.pop(PENDING, None)
