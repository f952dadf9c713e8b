"""`logo serve`: a local HTTP server that keeps the embedder, the store, global memory and the model loaded,
so a shell loop of asks pays no start-up. `service.py` is the state and the rules (plain Python), `app.py`
the HTTP routes (FastAPI, imported only when serving), `client.py` what `logo --server URL` commands use."""
