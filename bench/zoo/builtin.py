"""Imports every built-in model module so their ``@register_recognizer`` decorators run."""

from . import dlib_resnet, dlib_native, human_models  # noqa: F401
from . import user_models  # noqa: F401,E402  (last: registers the models users brought, see BENCH_USER_MODELS)
