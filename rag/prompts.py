"""Prompts live in prompts/*.txt, one per task and language, with ${variables} checked when loaded."""

from __future__ import annotations

from pathlib import Path
from string import Template

from rag.errors import ConfigError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

# name -> the variables its text must use (no more, no fewer)
EXPECTED = {
    "answer_system": set(), "answer_example": set(), "answer_user": {"passages", "question"},
    "rewrite": {"history", "question"}, "judge": {"question", "passages", "answer", "expected"},
    "brief_story": {"passages"}, "brief_reduce": {"summaries"},
    "extract_system": set(), "extract_example": set(), "choose": {"sentences", "question"}, "extract": {"sentences", "question"},
    "translate": {"sentence"}, "gist": {"sentence"},
}


class Prompt:
    def __init__(self, name: str, text: str, variables: set[str]):
        found = set(Template(text).get_identifiers())
        if found != variables:
            raise ConfigError(f"prompt {name!r} uses variables {sorted(found)} but must use exactly "
                              f"{sorted(variables)}: fix prompts/{name}.txt")
        self.name, self.text, self.variables = name, text, variables

    def render(self, **values: str) -> str:
        missing = self.variables - values.keys()
        if missing:
            raise ValueError(f"prompt {self.name!r} needs {sorted(missing)}")
        return Template(self.text).substitute(**values)


def load_prompt(task: str, lang: str, prompts_dir: Path | None = None) -> Prompt:
    if task not in EXPECTED:
        raise ValueError(f"unknown prompt task {task!r}; known: {sorted(EXPECTED)}")
    if lang not in ("ar", "en"):
        raise ValueError(f"lang must be 'ar' or 'en', got {lang!r}")
    name = f"{task}_{lang}"
    path = (prompts_dir or PROMPTS_DIR) / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"prompt file {path} is missing: restore it from the repository") from exc
    return Prompt(name, text, EXPECTED[task])
