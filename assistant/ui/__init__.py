"""The Gradio web app: pages that wire widgets to the library (no domain logic here).

Importing this package stays light (no Gradio import), so the `python -m assistant.ui.accounts` alias is quick;
`build_app` imports Gradio when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr

    from assistant.ui.context import UIContext


def build_app(context: UIContext) -> gr.Blocks:
    from assistant.ui.webtemp import use_home_for_gradio_temp

    use_home_for_gradio_temp(context.settings.home)  # before Gradio is imported
    from assistant.ui.layout import build_app as _build

    return _build(context)


__all__ = ["build_app"]
