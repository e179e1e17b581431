"""Text encoders on open_clip, prompt templates, and built-in vocabularies."""

from .encoder import (
    PROJECT_MODEL_CONFIG_DIR,
    TextEncoder,
    create_text_encoder,
    list_text_encoders,
    register_project_model_configs,
)
from .prompt_ensemble import cache_key, default_cache_dir, embed_class_prompts
from .templates import TEMPLATE_SETS, resolve_templates
from .vocabularies import (
    BUILTIN_VOCABULARIES,
    ClassList,
    build_vocabulary,
    build_vocabulary_from_cfg,
    parse_custom_vocabulary,
    vocabulary_classes,
)

__all__ = [
    "BUILTIN_VOCABULARIES",
    "ClassList",
    "PROJECT_MODEL_CONFIG_DIR",
    "TEMPLATE_SETS",
    "TextEncoder",
    "build_vocabulary",
    "build_vocabulary_from_cfg",
    "cache_key",
    "create_text_encoder",
    "default_cache_dir",
    "embed_class_prompts",
    "list_text_encoders",
    "parse_custom_vocabulary",
    "register_project_model_configs",
    "resolve_templates",
    "vocabulary_classes",
]
