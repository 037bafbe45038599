"""en-GB formats, overriding only the time parts of Django's (see ``prisma_glow.formats``)."""

DATETIME_FORMAT = "j M Y H:i"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
TIME_FORMAT = "H:i"
