"""Knowledge: the firm's documents, chunked and searchable, with citations.

- ``knowledge.services`` — every write (knowledge bases, uploads, reindex, delete), validated and
  audited. Uploads are checked at once; processing runs in the background.
- ``knowledge.tasks`` — ``process_document``, run by Django's Tasks API. With the default database
  backend (django-tasks-db) start a worker: ``python manage.py db_worker``. Tests and ``seed_demo``
  process at once (immediate backend, or ``services.document_process`` directly).
- ``knowledge.ingest`` — format detection and parsers (text, Markdown, HTML, PDF, DOCX), the
  structure-aware chunker, the ingestion limits (``limits``) and the child process that parses under
  a hard time limit (``isolation``).
- ``knowledge.search`` — ``search(knowledge_bases, query, top_k=…, as_of=…, jurisdiction=…)`` on
  PostgreSQL and SQLite, returning ``Passage`` objects with scores and citation data.
- ``knowledge.api`` — ``/api/v1/knowledge-bases/`` (documents, chunks, search, reindex).

Jurisdiction rule: a document with a blank jurisdiction applies everywhere; a search for ``US-NY``
also accepts ``US`` documents; without a jurisdiction every document is searched.
"""
