import pytest


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    """Factories' users are hashed with MD5 here: the production hasher costs ~0.5 s per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
