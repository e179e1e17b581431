"""Prompt template sets for class-name embeddings, taken from the lists open_clip ships.

A template is a ``str.format`` pattern with exactly one ``{}`` where the class name goes, e.g.
``"a photo of a {}."``. open_clip ships its templates as one-argument lambdas; they are turned into
format strings by calling each with ``"{}"``, so the wording is open_clip's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES


def _as_format_strings(templates: Sequence[Callable[[str], str]]) -> tuple[str, ...]:
    return tuple(t("{}") for t in templates)


TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    # The 80 prompts of CLIP's ImageNet zero-shot evaluation.
    "openai_imagenet": _as_format_strings(OPENAI_IMAGENET_TEMPLATES),
    # CLIP's 7-prompt subset of the above.
    "simple_imagenet": _as_format_strings(SIMPLE_IMAGENET_TEMPLATES),
    # The bare class name (for models trained on short captions, e.g. the OV-Shapes tiny CLIP).
    "identity": ("{}",),
}


def resolve_templates(templates: str | Sequence[str]) -> tuple[str, ...]:
    """Turn a template-set name or a list of format strings into a validated tuple.

    Args:
        templates: a key of :data:`TEMPLATE_SETS` or a sequence of format strings, each with
            exactly one ``{}``.

    Returns:
        The templates as a tuple of format strings.

    Raises:
        ValueError: unknown set name, empty list, or a template without exactly one ``{}``.
    """
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise ValueError(
                f"unknown prompt template set '{templates}'; known sets: {sorted(TEMPLATE_SETS)} "
                "(or pass a list of format strings with one '{}')"
            )
        return TEMPLATE_SETS[templates]
    resolved = tuple(templates)
    if not resolved:
        raise ValueError("the list of prompt templates is empty; give at least one, e.g. '{}'")
    for template in resolved:
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(
                f"prompt template {template!r} must be a string with exactly one '{{}}' "
                "where the class name goes"
            )
        if template.replace("{}", "").count("{") or template.replace("{}", "").count("}"):
            raise ValueError(f"prompt template {template!r} has braces other than one '{{}}'")
    return resolved
