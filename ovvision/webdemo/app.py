"""The Gradio page of the web demo and the server that serves it.

Gradio is imported here only, after analytics are turned off, so that the demo never reaches
the network. The server serves the page, the uploads it stores in the demo's own folder and the
results it writes there, and nothing else (no ``allowed_paths`` outside that folder).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .inputs import DemoInputError, DemoLimits, read_upload
from .modes import DemoMode

logger = logging.getLogger(__name__)

TABLE_HEADERS = ["name", "score", "x1", "y1", "x2", "y2"]
LOOPBACK = "127.0.0.1"


def _gradio() -> Any:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio

    return gradio


class WebDemo:
    """The demo's request handling, independent of the page (tests call :meth:`run`).

    Args:
        modes: mode name -> mode; the first is selected when the page opens.
        limits: caps on uploads and vocabularies.
        work_dir: the demo's own folder: example images, uploads and downloads live below it
            (this sets ``GRADIO_TEMP_DIR`` to its ``uploads`` folder).
        examples: example image files copied into ``work_dir/examples`` with a vocabulary each.
        threshold: the confidence slider's initial value.
    """

    def __init__(
        self,
        modes: Mapping[str, DemoMode],
        limits: DemoLimits,
        work_dir: str | os.PathLike,
        examples: Sequence[tuple[str, str]] = (),
        threshold: float = 0.5,
    ):
        if not modes:
            raise ValueError("the web demo needs at least one mode")
        self.modes = dict(modes)
        self.limits = limits
        self.threshold = threshold
        self.work_dir = os.path.abspath(os.fspath(work_dir))
        # Gradio stores uploads under GRADIO_TEMP_DIR: keep them in the demo's folder too
        os.environ["GRADIO_TEMP_DIR"] = os.path.join(self.work_dir, "uploads")
        self.downloads = os.path.join(self.work_dir, "downloads")
        os.makedirs(self.downloads, exist_ok=True)
        self.examples = []
        for path, vocabulary in examples:
            target = os.path.join(self.work_dir, "examples", os.path.basename(path))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)
            self.examples.append((target, vocabulary))

    def run(
        self, upload: str | None, text: str, threshold: float, mode: str
    ) -> tuple[Any, list[list[Any]], str | None, str]:
        """One request: ``(drawn image or None, table rows, json file or None, status text)``."""
        try:
            if mode not in self.modes:
                raise DemoInputError(f"Unknown mode '{mode}'; choose one of {list(self.modes)}.")
            image = read_upload(upload, self.limits)
            result = self.modes[mode](image, text, float(threshold))
        except DemoInputError as e:
            return None, [], None, f"**Error:** {e}"
        path = os.path.join(self.downloads, f"detections-{uuid.uuid4().hex[:12]}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result.coco, f, indent=1)
        status = f"{len(result.rows)} detections with score ≥ {threshold:.2f}."
        return result.image, result.rows, path, status

    def blocks(self) -> Any:
        """The Gradio page."""
        gr = _gradio()
        first = next(iter(self.modes.values()))
        with gr.Blocks(analytics_enabled=False, title="ovvision web demo") as page:
            gr.Markdown(
                "# ovvision: open-vocabulary detection\n"
                "Upload an image, type the classes to look for, and press **Run**."
            )
            with gr.Row():
                with gr.Column():
                    upload = gr.File(
                        label="Image", file_types=["image"], type="filepath", elem_id="upload"
                    )
                    text = gr.Textbox(
                        label=first.text_label,
                        max_length=self.limits.max_vocabulary_chars,
                        elem_id="vocabulary",
                    )
                    threshold = gr.Slider(
                        0.0, 1.0, value=self.threshold, step=0.01, label="Confidence",
                        elem_id="threshold",
                    )  # fmt: skip
                    mode = gr.Radio(
                        list(self.modes), value=next(iter(self.modes)), label="Mode",
                        visible=len(self.modes) > 1,
                    )  # fmt: skip
                    button = gr.Button("Run", variant="primary", elem_id="run")
                    if self.examples:
                        gr.Examples([list(e) for e in self.examples], inputs=[upload, text])
                with gr.Column():
                    status = gr.Markdown(elem_id="status")
                    drawn = gr.Image(label="Result", type="numpy", elem_id="result")
                    table = gr.Dataframe(
                        headers=TABLE_HEADERS, label="Detections", elem_id="detections",
                        interactive=False,
                    )  # fmt: skip
                    download = gr.File(label="Detections (COCO json)", elem_id="download")
            mode.change(lambda m: gr.update(label=self.modes[m].text_label), mode, text)
            button.click(
                self.run, [upload, text, threshold, mode], [drawn, table, download, status],
                concurrency_limit=1,
            )  # fmt: skip
        return page

    def launch(self, host: str = LOOPBACK, port: int = 7860, block: bool = True) -> Any:
        """Serve the page on ``host:port`` (loopback unless asked otherwise; no share link)."""
        gr = _gradio()
        if host != LOOPBACK:
            logger.warning(
                "Serving on %s: anyone who can reach this address can use the demo and the "
                "machine it runs on", host,
            )  # fmt: skip
        page = self.blocks()
        page.queue(default_concurrency_limit=1)
        theme = gr.themes.Default(
            font=["ui-sans-serif", "system-ui", "sans-serif"],
            font_mono=["ui-monospace", "monospace"],
        )  # system fonts: the page fetches nothing from the web
        page.launch(
            server_name=host,
            server_port=port,
            share=False,
            inbrowser=False,
            prevent_thread_lock=not block,
            max_file_size=self.limits.max_upload_bytes,
            allowed_paths=[os.path.join(self.work_dir, "examples"), self.downloads],
            ssr_mode=False,
            show_error=True,
            theme=theme,
            quiet=True,
        )
        return page
