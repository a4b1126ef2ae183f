"""Gradio entry point (`python app.py` or `rag serve`); the UI lives in rag/ui.py."""

from rag.ui import serve

if __name__ == "__main__":
    serve()
