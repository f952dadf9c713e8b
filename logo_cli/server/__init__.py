"""`logo serve`: a local HTTP server that keeps the embedder, the store, global memory and the model loaded,
so a shell loop of asks pays no start-up. `service.py` is the state and the rules (plain Python: who may ask
what, one request model, turns), `queue.py` whose turn it is, `app.py` the HTTP checks and routes (FastAPI,
imported only when serving), `client.py` what `logo --server URL` commands use."""
