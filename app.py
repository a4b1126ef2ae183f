"""Entry point (`python app.py`, like `rag serve`): the web app at / and the HTTP API at /api and /v1, one port."""

from rag.api import serve

if __name__ == "__main__":
    serve()
