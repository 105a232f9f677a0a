"""The HTTP server (FastAPI under uvicorn) and its Python client.

Needs the ``serve`` extra: ``pip install 'densekit[serve]'``.
"""

from densekit.serve.client import Client, ServerError

__all__ = ["Client", "ServerError"]
