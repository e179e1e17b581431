"""OSM's parts: the causal LM loaded by path, the MaskQ-Former, vocabulary ranking by name
probability, name decoding and the instruction prompts (the model is
``meta_arch.OSMClassifier``)."""

from .decoding import beam_search, greedy_decode
from .language_model import LanguageModel, build_tiny_gpt2, load_causal_lm, train_word_tokenizer
from .mask_qformer import MaskedCrossAttention, MaskQFormer, context_boxes, grid_regions
from .prompts import CAPTION_PROMPTS, NAMING_PROMPTS, inference_prompt, sample_prompt
from .regions import MaskProposals
from .vocabulary_scoring import NameMatcher, VocabularyScorer, name_key, name_log_probs, plural

__all__ = [
    "CAPTION_PROMPTS",
    "NAMING_PROMPTS",
    "LanguageModel",
    "MaskProposals",
    "MaskQFormer",
    "MaskedCrossAttention",
    "NameMatcher",
    "VocabularyScorer",
    "beam_search",
    "build_tiny_gpt2",
    "context_boxes",
    "greedy_decode",
    "grid_regions",
    "inference_prompt",
    "load_causal_lm",
    "name_key",
    "name_log_probs",
    "plural",
    "sample_prompt",
    "train_word_tokenizer",
]
