"""Staff sessions: a new key at login (and at step-up), idle and absolute expiry, ending a user's sessions.

The session carries two timestamps (seconds since the epoch, UTC): when it was opened by a login
(``STARTED``) and when it was last seen (``LAST_SEEN``, refreshed at most once a minute so that a busy
page does not write the session row on every request). ``SessionExpiryMiddleware`` ends a signed-in
session idle longer than ``PRISMA_GLOW_SESSION_IDLE_MINUTES`` or older than
``PRISMA_GLOW_SESSION_MAX_HOURS`` (it lives with the doors' middleware, ``prisma_glow/middleware.py``);
the admin then says why on its login page, the API answers 401 ``session_expired``.

A password change ends the user's other sessions through Django's session auth hash (the hash of the
password is in every session and checked on every request; the admin's password pages keep the
changing session with ``update_session_auth_hash``). Whatever has no such hash — a second factor
changed, a member removed — calls ``end_user_sessions``.
"""

from __future__ import annotations

import logging
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import receiver
from django.utils import timezone

logger = logging.getLogger("prisma_glow.sessions")

STARTED = "_pg_started"
LAST_SEEN = "_pg_last_seen"
# LAST_SEEN is written at most this often (seconds): the idle timeout is exact to within this.
LAST_SEEN_RESOLUTION = 60


def now_seconds() -> int:
    return int(timezone.now().timestamp())


def renew(request) -> None:
    """Give the request's session a new key, keeping its data, and count it as seen now.

    Called at login (``user_logged_in``) and by a step-up: a key an attacker planted or read before
    the check is worth nothing after it (ASVS V7.2.4). The absolute limit still counts from the login.
    """
    session = request.session
    session.cycle_key()
    now = now_seconds()
    session.setdefault(STARTED, now)
    session[LAST_SEEN] = now


@receiver(user_logged_in, dispatch_uid="prisma_glow.sessions.login")
def _on_login(sender, request, user, **kwargs) -> None:
    # Django's login() already cycles the key; the login is also where the absolute limit starts.
    if request is None or not hasattr(request, "session"):
        return
    request.session.pop(STARTED, None)
    renew(request)


def _session_store():
    engine = import_module(settings.SESSION_ENGINE)
    store = engine.SessionStore
    if not hasattr(store, "get_model_class"):
        raise ImproperlyConfigured(
            f"end_user_sessions needs a database-backed SESSION_ENGINE (db or cached_db), not {settings.SESSION_ENGINE}."
        )
    return store


def end_user_sessions(*, user, keep=None) -> int:
    """End every session of ``user`` (all devices), except ``keep``'s (a request) whose key is renewed.

    The hook for what changes who a user is without touching the password: a second factor enrolled
    or removed, a membership removed. Returns how many sessions were ended. It reads the sessions that
    have not expired, at most ``PRISMA_GLOW_SESSION_MAX_HOURS`` of logins (``SESSION_COOKIE_AGE``), and
    deletes the user's through the session store (so a cached_db cache forgets them too).
    """
    store = _session_store()
    kept = None
    if keep is not None and getattr(keep, "session", None) is not None:
        renew(keep)
        keep.session.save()
        kept = keep.session.session_key
    user_id = str(user.pk)
    rows = (
        store.get_model_class()
        .objects.filter(expire_date__gt=timezone.now())
        .values_list("session_key", "session_data")
    )
    decoder = store()
    ended = 0
    for key, data in rows.iterator():
        if key == kept:
            continue
        if str(decoder.decode(data).get(SESSION_KEY)) == user_id:
            store(session_key=key).delete()
            ended += 1
    if ended:
        logger.info("Ended %d session(s) of user %s.", ended, user_id)
    return ended


def expired_reason(session, now: int) -> str | None:
    """Why a signed-in session has expired at ``now`` (a message a person can act on), or None."""
    started = session.get(STARTED)
    last_seen = session.get(LAST_SEEN)
    if not isinstance(started, int) or not isinstance(last_seen, int):
        # Signed in before these limits existed: the middleware stamps it, and counts from now.
        return None
    max_hours = settings.PRISMA_GLOW_SESSION_MAX_HOURS
    idle_minutes = settings.PRISMA_GLOW_SESSION_IDLE_MINUTES
    if now - started >= max_hours * 3600:
        return f"Your session expired: sessions last at most {max_hours} hours. Log in again."
    if now - last_seen >= idle_minutes * 60:
        return f"Your session expired after {idle_minutes} minutes without activity. Log in again."
    return None
