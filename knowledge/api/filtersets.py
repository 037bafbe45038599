"""Filters of the knowledge API (django-filter)."""

import django_filters

from knowledge.models import Document, DocumentSource, DocumentStatus


class DocumentFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DocumentStatus.choices)
    source = django_filters.ChoiceFilter(choices=DocumentSource.choices)
    jurisdiction = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Document
        fields = ["status", "source", "jurisdiction"]
