"""Text encoders on open_clip, prompt templates, built-in vocabularies, and the name embedder."""

from .encoder import (
    PROJECT_MODEL_CONFIG_DIR,
    TextEncoder,
    create_text_encoder,
    list_text_encoders,
    register_project_model_configs,
    text_encoder_from_cfg,
)
from .name_embedder import NameEmbedder, VocabularyLike
from .prompt_ensemble import cache_key, default_cache_dir, embed_class_prompts
from .templates import TEMPLATE_SETS, resolve_templates
from .token_features import ExpressionFeatures, ExpressionTooLongError, encode_expressions
from .vocabularies import (
    BUILTIN_VOCABULARIES,
    build_vocabulary,
    build_vocabulary_from_cfg,
    vocabulary_classes,
)

__all__ = [
    "BUILTIN_VOCABULARIES",
    "ExpressionFeatures",
    "ExpressionTooLongError",
    "PROJECT_MODEL_CONFIG_DIR",
    "TEMPLATE_SETS",
    "NameEmbedder",
    "TextEncoder",
    "VocabularyLike",
    "build_vocabulary",
    "build_vocabulary_from_cfg",
    "cache_key",
    "create_text_encoder",
    "default_cache_dir",
    "embed_class_prompts",
    "encode_expressions",
    "list_text_encoders",
    "register_project_model_configs",
    "resolve_templates",
    "text_encoder_from_cfg",
    "vocabulary_classes",
]
