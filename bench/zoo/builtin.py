"""Imports every built-in model module so their ``@register_recognizer`` decorators run."""
