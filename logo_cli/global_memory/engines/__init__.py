"""Build engines: each turns a snapshot of the store into a GlobalMemory (not yet saved) with the same stages.

- `local`: one process, in streaming passes over the snapshot's Parquet files (bounded memory);
- `spark`: the same stages on Apache Spark (`--engine spark`), on `local[N]` or a cluster.

`build.build_global` chooses one, then runs the finishing steps common to both and saves the version.
"""

ENGINES = ("local", "spark")
