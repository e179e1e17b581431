"""The browser demo: a Gradio page over the project's models (``tools/web_demo.py``).

:mod:`.inputs` checks what a browser sends, :mod:`.modes` holds what a request runs (the
``detect`` mode and the registry where other modes plug in), :mod:`.ground` the ``ground`` mode
(referring expressions), :mod:`.app` the page and the server. Importing this package does not
import Gradio.
"""

from .ground import GroundMode
from .inputs import DemoInputError, DemoLimits, parse_vocabulary, read_upload
from .modes import DEMO_MODE_REGISTRY, DemoMode, DemoResult, DetectMode, build_demo_mode

__all__ = [
    "DEMO_MODE_REGISTRY",
    "DemoInputError",
    "DemoLimits",
    "DemoMode",
    "DemoResult",
    "DetectMode",
    "GroundMode",
    "build_demo_mode",
    "parse_vocabulary",
    "read_upload",
]
