"""The staff UI's upload door stores no file past the document size limit while it is received.

Django writes an uploaded file to a temporary file as the request body arrives, whatever its size
(``DATA_UPLOAD_MAX_MEMORY_SIZE`` leaves files out), and the knowledge service refuses an oversized
file only afterwards: a 10 GB "document" would first fill 10 GB of the server's disk. The API refuses
such a body from its ``Content-Length`` before reading it (``prisma_glow.api.middleware``); the
admin's multi-file upload cannot, since several files of up to the limit each are allowed, so
:class:`BoundedUploadHandler` counts each file as it arrives and stores nothing of it past
``KNOWLEDGE_MAX_UPLOAD_BYTES`` (ASVS 5.0 V5.2.1). The file then reaches the service as an empty
upload of its real size, which the service refuses with the size and the limit, as before.
"""

from __future__ import annotations

import io
from functools import wraps

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from knowledge.services import max_upload_bytes


class BoundedUploadHandler(FileUploadHandler):
    """First of the request's upload handlers: passes a file's data on to Django's own handlers
    (memory, then a temporary file) up to ``limit`` bytes, then drops the rest of it, still counting.
    The file of more than ``limit`` bytes becomes an empty :class:`UploadedFile` whose ``size`` is
    what was received."""

    def __init__(self, request=None, *, limit: int):
        super().__init__(request)
        self.limit = limit
        self.received = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            return None  # the handlers after this one receive nothing more of this file
        return raw_data

    def file_complete(self, file_size):
        if self.received <= self.limit:
            return None  # the next handler's stored file is the upload
        return UploadedFile(
            io.BytesIO(), name=self.file_name, content_type=self.content_type, size=self.received
        )


def bounded_uploads(view):
    """Wrap a staff page that takes uploads so that its files pass :class:`BoundedUploadHandler`.

    A multipart body is parsed when ``request.POST`` is first read — for a POST, by the CSRF check
    that runs before the view — with the handlers the request has at that moment, so the handler
    must be in place before that check. The wrapper is therefore ``csrf_exempt`` (the middleware
    and ``admin_view`` leave the check to it), adds the handler, and then runs the very same CSRF
    check itself (``csrf_protect``) before the page.
    """
    protected = csrf_protect(view)

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        request.upload_handlers.insert(0, BoundedUploadHandler(request, limit=max_upload_bytes()))
        return protected(request, *args, **kwargs)

    return wrapper
