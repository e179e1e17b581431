"""Text encoders (and their image towers) built on open_clip.

``create_text_encoder(name, pretrained)`` accepts any open_clip architecture name (``ViT-B-16``,
``RN50``, ...) or one of ovvision's own model configs in ``ovvision/model_configs/*.json``, which
are registered with open_clip's ``add_model_config`` on first use. ``pretrained`` is an open_clip
tag (``openai``, ``laion2b_s34b_b88k``, ...; downloaded by open_clip where there is internet) or the
path of a local checkpoint (an open_clip state dict, or a dict holding one under
``"state_dict"``, as written by ``tools/train_clip.py``). ``None`` gives random weights.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import open_clip
import torch
from torch import nn

from ovvision.config import CfgNode

from .prompt_ensemble import embed_class_prompts, expand_prompts
from .templates import resolve_templates

__all__ = [
    "PROJECT_MODEL_CONFIG_DIR",
    "TextEncoder",
    "create_text_encoder",
    "list_text_encoders",
    "register_project_model_configs",
    "text_encoder_from_cfg",
]

PROJECT_MODEL_CONFIG_DIR = Path(__file__).resolve().parents[2] / "model_configs"
_registered_config_dirs: set[Path] = set()


def register_project_model_configs(config_dir: str | os.PathLike | None = None) -> list[str]:
    """Make the JSON model configs of ``config_dir`` known to open_clip (idempotent).

    Args:
        config_dir: folder of open_clip model-config JSON files; default ovvision's own
            ``ovvision/model_configs``.

    Returns:
        The model names (file stems) found in the folder.
    """
    folder = Path(config_dir or PROJECT_MODEL_CONFIG_DIR).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"model config folder '{folder}' does not exist")
    if folder not in _registered_config_dirs:
        open_clip.add_model_config(folder)
        _registered_config_dirs.add(folder)
    return sorted(p.stem for p in folder.glob("*.json"))


def list_text_encoders(with_pretrained_tags: bool = False) -> list[str] | dict[str, list[str]]:
    """Names accepted by :func:`create_text_encoder`: open_clip's and ovvision's model configs.

    Args:
        with_pretrained_tags: also return, per name, the open_clip pretrained tags it knows.

    Returns:
        A sorted list of names, or a dict ``name -> [tags]`` when ``with_pretrained_tags``.
    """
    register_project_model_configs()
    names = list(open_clip.list_models())
    if not with_pretrained_tags:
        return names
    return {name: list(open_clip.list_pretrained_tags_by_model(name)) for name in names}


def create_text_encoder(
    name: str,
    pretrained: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> TextEncoder:
    """Build an open_clip model and its tokenizer as a :class:`TextEncoder`.

    Args:
        name: open_clip architecture or ovvision model-config name (see :func:`list_text_encoders`).
        pretrained: open_clip tag, local checkpoint path, or None for random weights.
        device: where the model lives.

    Returns:
        The encoder, in eval mode.

    Raises:
        ValueError: unknown ``name``.
        FileNotFoundError: ``pretrained`` looks like a path (has a separator or a suffix) but
            no such file exists.
        RuntimeError: the checkpoint does not fit the architecture (names the path).
    """
    register_project_model_configs()
    if name not in open_clip.list_models():
        raise ValueError(
            f"unknown text encoder '{name}'; see ovvision.modeling.text.list_text_encoders() "
            f"(ovvision's own: {register_project_model_configs()})"
        )
    pretrained_str = os.fspath(pretrained) if pretrained else None
    is_file = bool(pretrained_str) and os.path.isfile(pretrained_str)
    if pretrained_str and not is_file and _looks_like_path(pretrained_str):
        raise FileNotFoundError(f"text encoder weights file '{pretrained_str}' does not exist")
    try:
        model = open_clip.create_model(name, pretrained=pretrained_str, device=device)
    except (RuntimeError, AssertionError, KeyError, ValueError) as e:  # open_clip raises all four
        hint = (
            " (ovvision engine checkpoints such as model_final.pth are not open_clip weights; "
            "tools/train_clip.py writes those to OUTPUT_DIR/model_final.pt)"
            if is_file
            else ""
        )
        raise RuntimeError(
            f"could not load weights '{pretrained_str}' into text encoder '{name}': {e}{hint}"
        ) from e
    tokenizer = open_clip.get_tokenizer(name)
    return TextEncoder(model, tokenizer, name=name, pretrained=pretrained_str).eval()


def text_encoder_from_cfg(cfg: CfgNode) -> TextEncoder:
    """The CLIP model of ``MODEL.TEXT_ENCODER`` (name, weights) on ``MODEL.DEVICE``.

    A model builds it once and shares it: its text tower embeds the vocabulary, its image tower
    may serve as backbone and score regions.
    """
    return create_text_encoder(
        cfg.MODEL.TEXT_ENCODER.NAME,
        pretrained=cfg.MODEL.TEXT_ENCODER.PRETRAINED or None,
        device=torch.device(cfg.MODEL.DEVICE),
    )


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or Path(value).suffix != ""


class TextEncoder(nn.Module):
    """An open_clip model with its tokenizer; encodes prompts and class vocabularies.

    Both towers are reachable: ``.text_tower`` and ``.image_tower`` (``model.visual``), and the
    whole open_clip model as ``.model``.

    Attributes:
        name: the open_clip/ovvision model-config name.
        pretrained: the tag or checkpoint path it was loaded from (None = random weights).
        context_length: the number of tokens a prompt is cut to (start/end tokens included).
        embed_dim: the dimension D of the joint embedding space.
    """

    def __init__(
        self, model: nn.Module, tokenizer: object, *, name: str, pretrained: str | None
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.pretrained = pretrained
        self.context_length = int(tokenizer.context_length)
        self.embed_dim = int(open_clip.get_model_config(name)["embed_dim"])
        # Version counters of the weights as loaded: a later load_state_dict (a detector
        # checkpoint holding a trained text tower) bumps them, and weights_id is recomputed.
        self._loaded_versions = self._weight_versions()
        self._weights_id: tuple[tuple[int, ...] | None, str] | None = None

    @property
    def image_tower(self) -> nn.Module:
        """open_clip's vision tower (``model.visual``)."""
        return self.model.visual

    @property
    def text_tower(self) -> nn.Module:
        """open_clip's text tower: ``model.text`` for custom-text models, else the model itself
        (plain CLIP keeps token embedding, transformer and projection at the top level)."""
        return getattr(self.model, "text", self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def image_preprocess_cfg(self) -> dict:
        """open_clip's preprocessing of the image tower: ``size``, ``mean``, ``std``, ..."""
        return open_clip.get_model_preprocess_cfg(self.model)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokens of ``texts`` (truncated to the context length), LongTensor[N, context_length]."""
        return self.tokenizer(list(texts)).to(self.device)

    def num_tokens(self, text: str) -> int:
        """Length of ``text`` in tokens, start/end tokens included, before any truncation."""
        if isinstance(self.tokenizer, open_clip.SimpleTokenizer):
            return len(self.tokenizer.encode(text)) + 2
        hf_tokenizer = getattr(self.tokenizer, "tokenizer", None)
        if hf_tokenizer is None:
            raise TypeError(f"cannot count tokens with tokenizer {type(self.tokenizer).__name__}")
        return len(hf_tokenizer(text)["input_ids"])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Text embeddings of tokens.

        Args:
            tokens: LongTensor[N, context_length] from :meth:`tokenize`.

        Returns:
            Tensor[N, D], not normalised.
        """
        return self.model.encode_text(tokens)

    def encode_text(
        self, texts: Sequence[str], normalize: bool = True, batch_size: int = 256
    ) -> torch.Tensor:
        """Embed prompts, in batches, without gradients.

        Args:
            texts: N prompts.
            normalize: L2-normalise each row.
            batch_size: prompts per forward pass.

        Returns:
            Tensor[N, D] (float32, on the encoder's device).
        """
        chunks = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                chunks.append(self(self.tokenize(texts[start : start + batch_size])).float())
        if not chunks:
            return torch.zeros(0, self.embed_dim, device=self.device)
        features = torch.cat(chunks)
        return nn.functional.normalize(features, dim=-1) if normalize else features

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Image embeddings of preprocessed images.

        Args:
            images: Tensor[B, 3, H, W], normalised as in :attr:`image_preprocess_cfg`.
            normalize: L2-normalise each row.

        Returns:
            Tensor[B, D].
        """
        return self.model.encode_image(images, normalize=normalize)

    def _weight_versions(self) -> tuple[int, ...] | None:
        """In-place version counters of every weight (None where tensors do not track them)."""
        try:
            return tuple(t._version for t in self.model.state_dict().values())
        except RuntimeError:  # inference tensors have no version counter
            return None

    @property
    def weights_id(self) -> str:
        """Identity of the weights for cache keys: the tag or the sha256 of the checkpoint file
        while the weights are those loaded from it, else the sha256 of the parameters (random
        weights, or weights changed since, e.g. by loading a detector checkpoint)."""
        versions = self._weight_versions()
        if versions is not None and self._weights_id is not None:
            cached_versions, cached_id = self._weights_id
            if cached_versions == versions:
                return cached_id
        unchanged = versions is not None and versions == self._loaded_versions
        if self.pretrained is not None and unchanged and os.path.isfile(self.pretrained):
            weights_id = "file-sha256:" + _file_sha256(self.pretrained)
        elif self.pretrained is not None and unchanged:
            weights_id = "tag:" + self.pretrained
        else:
            weights_id = "sha256:" + _state_dict_sha256(self.model.state_dict())
        self._weights_id = (versions, weights_id)
        return weights_id

    def embed_classes(
        self,
        class_prompts: Sequence[Sequence[str]],
        templates: str | Sequence[str],
        *,
        cache_dir: str | os.PathLike | None = None,
        use_cache: bool = True,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Prompt-ensembled class embeddings; see :func:`embed_class_prompts`.

        Args:
            class_prompts: per class, its name followed by its synonyms.
            templates: a template-set name (see ``templates.TEMPLATE_SETS``) or format strings.
            cache_dir: embedding cache folder (None = the default).
            use_cache: read/write the cache.
            batch_size: prompts per forward pass.

        Returns:
            Tensor[C, D], unit-norm rows.
        """
        templates = resolve_templates(templates)
        self.warn_truncated(class_prompts, templates)
        return embed_class_prompts(
            lambda prompts: self.encode_text(prompts, batch_size=batch_size),
            class_prompts,
            templates,
            cache_identity=self.cache_identity if use_cache else None,
            cache_dir=cache_dir,
        ).to(self.device)

    @property
    def cache_identity(self) -> dict[str, object]:
        """What identifies this encoder's text embeddings in cache keys."""
        return {
            "model": self.name,
            "weights": self.weights_id,
            "context_length": self.context_length,
            "embed_dim": self.embed_dim,
        }

    def warn_truncated(
        self, class_prompts: Sequence[Sequence[str]], templates: Sequence[str]
    ) -> None:
        """Warn, per class, about prompts longer than the context length (they get truncated)."""
        prompts, owner = expand_prompts(class_prompts, templates)
        prompts_per_class = Counter(owner)
        too_long: dict[int, list[int]] = {}
        for prompt, index in zip(prompts, owner):
            length = self.num_tokens(prompt)
            if length > self.context_length:
                too_long.setdefault(index, []).append(length)
        for index, lengths in too_long.items():
            name, total = class_prompts[index][0], prompts_per_class[index]
            warnings.warn(
                f"class '{name}': {len(lengths)} of {total} prompts are longer "
                f"(up to {max(lengths)} tokens) than the context length {self.context_length} "
                f"of text encoder '{self.name}' and were truncated",
                UserWarning,
                stacklevel=4,
            )

    def extra_repr(self) -> str:
        return f"name={self.name!r}, pretrained={self.pretrained!r}, embed_dim={self.embed_dim}"


def _file_sha256(path: str, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}:{tensor.dtype}:{tuple(state[key].shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
