"""Serializer fields for request bodies that take exactly the JSON types the schema names."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty


class TextField(serializers.CharField):
    """A string, and only a string: DRF's CharField turns a JSON number into text (`0` into "0"), though the schema
    says `string`. Form fields are always strings, so this refuses only JSON that the schema refuses too."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": r"\S"})
class RequiredText(TextField):
    """Text that must not be blank, as the schema says. The service refuses blank text with its own stable code
    (`reason_required`), so the field lets it through to the service."""

    def run_validation(self, data: object = empty) -> object:
        if isinstance(data, str) and not data.strip():
            return data
        return super().run_validation(data)
