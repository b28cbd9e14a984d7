"""Pages that later work fills: each says what will be there and what the user must set up."""

from collections.abc import Callable

from PySide6.QtWidgets import QStyle, QVBoxLayout, QWidget

from app.settings import setting_place
from ui.icons import standard_icon
from ui.pages.empty_state import EmptyStateWidget
from ui.services import Services

SP = QStyle.StandardPixmap


class EmptyPage(QWidget):
    """A page made of one empty state."""

    def __init__(self, empty_state: EmptyStateWidget) -> None:
        super().__init__()
        self.empty_state = empty_state
        QVBoxLayout(self).addWidget(empty_state)


def library_empty_state(add_folder: Callable[[], None]) -> EmptyStateWidget:
    """What the Library page shows while the library has no entries; its button calls
    `add_folder` (which asks for the folder)."""
    return EmptyStateWidget(
        standard_icon(SP.SP_DirIcon),
        "No models yet",
        "Every model and LoRA adapter on this machine will be listed here with what "
        "matters: architecture, parameters, experts, trained context, quantisation and size.",
        "Add a folder of GGUF or Hugging Face models (the folders are listed in "
        f"{setting_place('model_folders')}). The Hugging Face cache, Ollama and LM Studio "
        "folders are found by themselves.",
        ("Add a model folder…", add_folder),
    )


def fit_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    return EmptyPage(
        EmptyStateWidget(
            standard_icon(SP.SP_FileDialogDetailedView),
            "Will it fit?",
            "Pick a model and GPUs, move context, KV cache, slots and experts, and see what "
            "each GPU and the host RAM will really hold before anything starts.",
            "Needs a model in the Library.",
        )
    )


def backends_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    return EmptyPage(
        EmptyStateWidget(
            standard_icon(SP.SP_ComputerIcon),
            "No backends running",
            "llama.cpp and vLLM servers on your GPUs will show here as cards per GPU: "
            "starting, loading, ready or failed with the reason, with logs and Stop.",
            "Needs a Docker engine (or llama-server on PATH for local processes) and a model.",
        )
    )


def monitor_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    return EmptyPage(
        EmptyStateWidget(
            standard_icon(SP.SP_DriveHDIcon),
            "Monitor",
            "Live graphs per GPU (VRAM by backend, temperature, power, utilisation) and for "
            "the host (RAM, CPU, swap), with hours of history and alerts.",
            "GPU readings need an NVIDIA driver; host readings work everywhere.",
        )
    )


def chat_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    return EmptyPage(
        EmptyStateWidget(
            standard_icon(SP.SP_MessageBoxQuestion),
            "No conversation yet",
            "Talk to a running model, with its thinking shown apart, think / no-think and "
            "expert-count presets, tokens per second, and every conversation kept.",
            "Start a backend first.",
        )
    )

