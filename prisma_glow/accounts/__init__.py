"""A staff user's own account: signing in with a second factor, and the two-step sign-in page.

- ``signin``: the pending sign-in. The password step of the admin login does not log a user with a
  factor in: it keeps who passed it, and when, in the session for ``PENDING_SECONDS``; the code step
  then calls Django's ``login()`` and ``factors.record_check``. No session is ever signed in but not
  verified through the login form, so the API's session authentication cannot be used half signed in.
- ``services``: enrolment (an authenticator app, confirmed by a first code, with ten one-time backup
  codes), new backup codes, removing or resetting the factors — each audited in the user's
  organisations and ending the user's other sessions.
- ``views``: the login's two steps and ``admin:account_security`` (``/admin/account/security/``).
- ``middleware``: when factors are required (``PRISMA_GLOW_REQUIRE_MFA``), a signed-in session that has
  not checked one reaches nothing but enrolment (the API refuses it in its session authentication).
"""
