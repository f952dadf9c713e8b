"""Local memory: each user's own history. `store` (the only chromadb importer: records and their vectors, on
disk or on a server), `user_index` (user -> record ids, so a history is read by id), `ingest` (records ->
embeddings -> store) and `locking` (one process at a time per store). Import the modules by name: this
package imports nothing itself, so a command that needs none of them pays for none.
"""
