"""A modal file picker: a directory tree of the files a job can take, or a typed path."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Label, Static


class MediaTree(DirectoryTree):
    """A directory tree showing folders and the files a job can take (hidden files left out)."""

    def __init__(self, path: Path, extensions: set[str], **kwargs: Any) -> None:
        self.extensions = extensions
        super().__init__(path, **kwargs)

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        """Keep folders and matching files."""
        return [p for p in paths if not p.name.startswith(".")
                and (p.is_dir() or p.suffix.lower() in self.extensions)]


class FilePickerScreen(ModalScreen[Path | None]):
    """Pick a file: browse with arrows/Enter, Backspace goes up a folder, or type a path."""

    DEFAULT_CSS = """
    FilePickerScreen { align: center middle; }
    FilePickerScreen > Vertical { width: 90%; height: 90%; border: round $primary; background: $surface; }
    FilePickerScreen MediaTree { height: 1fr; }
    FilePickerScreen #picker-path { height: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("backspace", "up", "parent folder")]

    def __init__(self, start: Path, extensions: set[str]) -> None:
        super().__init__()
        self.start = start
        self.extensions = extensions

    def compose(self) -> ComposeResult:
        """Tree and path box."""
        with Vertical():
            yield Label(f"Choose a file ({', '.join(sorted(self.extensions))})", classes="muted")
            yield MediaTree(self.start, self.extensions, id="picker-tree")
            yield Input(str(self.start), id="picker-path", compact=True)
            yield Static("Enter: choose · Backspace: parent folder · Esc: cancel", classes="muted")

    def on_mount(self) -> None:
        """Keyboard in the tree."""
        self.query_one(MediaTree).focus()

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        """A file chosen in the tree."""
        self.dismiss(Path(event.path))

    def on_tree_node_highlighted(self, event: MediaTree.NodeHighlighted[Any]) -> None:
        """Mirror the highlighted path in the path box."""
        data = event.node.data
        if data is not None:
            self.query_one("#picker-path", Input).value = str(data.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """A typed path: a file is chosen, a folder becomes the tree's root."""
        path = Path(event.value).expanduser()
        if path.is_dir():
            self.query_one(MediaTree).path = path
        elif path.is_file():
            self.dismiss(path)
        else:
            self.notify(f"{path} does not exist", severity="error")

    def action_up(self) -> None:
        """Show the parent folder."""
        tree = self.query_one(MediaTree)
        if self.focused is tree:
            tree.path = Path(tree.path).resolve().parent

    def action_cancel(self) -> None:
        """Close without choosing."""
        self.dismiss(None)
