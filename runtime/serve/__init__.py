"""`planrt serve` (extra planc[serve]): bundles as models behind the Open Inference Protocol (KServe v2).

Modules import starlette, uvicorn and prometheus-client only when a server is built, so the plain
runtime install imports this package without them."""
