#!/usr/bin/env python
"""Write the text-embedding matrix of a vocabulary for use in configs (VOCABULARY.EMBEDDINGS).

Example::

    python tools/dump_text_embeddings.py --vocabulary coco_ov --model ViT-B-16 \\
        --pretrained openai --output datasets/metadata/coco_ov_vitb16.npy

writes ``FILE.npy`` (float32 [C, D], unit rows, rows in the vocabulary's class order) and
``FILE.json`` (names, synonyms, novel flags, templates, model, weights).
"""

from __future__ import annotations

import argparse

from ovvision.engine.config_paths import is_path_value, require_file
from ovvision.engine.defaults import run_tool
from ovvision.modeling.text import (
    BUILTIN_VOCABULARIES,
    TEMPLATE_SETS,
    build_vocabulary,
    create_text_encoder,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabulary", required=True, choices=BUILTIN_VOCABULARIES)
    parser.add_argument(
        "--custom-vocabulary",
        default="",
        help='for --vocabulary custom: "a,b|synonym of b" or a text file, one class per line',
    )
    parser.add_argument(
        "--annotation-json", default="", help="for lvis / ov_shapes: the json with the categories"
    )
    parser.add_argument("--model", required=True, help="open_clip or ovvision model-config name")
    parser.add_argument(
        "--pretrained", default="", help="open_clip tag or checkpoint path ('' = random weights)"
    )
    parser.add_argument("--templates", default="openai_imagenet", choices=sorted(TEMPLATE_SETS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder")
    parser.add_argument("--output", required=True, help="the .npy file to write")
    args = parser.parse_args(argv)
    if not args.output.endswith(".npy"):
        parser.error(f"--output must end in .npy, got '{args.output}'")
    return args


def check_files(args: argparse.Namespace) -> None:
    """A missing weights, annotation or vocabulary file is an error naming its argument."""
    for argument, kind, value in (
        ("--pretrained", "file_or_tag", args.pretrained),
        ("--annotation-json", "file", args.annotation_json),
        ("--custom-vocabulary", "file_or_names", args.custom_vocabulary),
    ):
        if is_path_value(kind, value):
            require_file(value, argument)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_files(args)
    encoder = create_text_encoder(
        args.model, pretrained=args.pretrained or None, device=args.device
    )
    vocabulary = build_vocabulary(
        args.vocabulary,
        encoder,
        custom=args.custom_vocabulary,
        annotation_json=args.annotation_json,
        templates=args.templates,
        cache_dir=args.cache_dir,
    )
    vocabulary.save(
        args.output,
        vocabulary_name=args.vocabulary,
        model=args.model,
        pretrained=args.pretrained,
        weights_id=encoder.weights_id,
    )
    print(f"wrote {vocabulary.num_classes} x {vocabulary.dim} embeddings to {args.output}")
    return 0


if __name__ == "__main__":
    run_tool(main, prog="dump_text_embeddings.py", user_errors=(ValueError,))
