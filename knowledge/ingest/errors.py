"""The two ways an upload fails, apart from the parsers so that the limits (``limits.py``), which the
parsers call, can raise them too without an import cycle."""


class UnsupportedDocument(ValueError):
    """The upload cannot be ingested (type, emptiness, encryption); the message says why."""


class ParseError(ValueError):
    """A file of a supported type could not be read; the message is shown on the failed document."""
