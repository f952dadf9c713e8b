"""The Spark engine (`logo build-global --engine spark`): the build's stages on Apache Spark, from the snapshot.

What runs where:
- on the executors (Spark SQL, MLlib, pandas UDFs): reading the snapshot's Parquet files; k-means|| (MLlib
  `KMeans`, cosine) on the fit sample, each candidate k scored by `ClusteringEvaluator` (cosine silhouette)
  on the subsample; the assignment of every record to its nearest centroid (a pandas UDF); every per-record
  aggregate: cluster sizes, users, labels and examples, the time views (records, first users and raters per
  cluster sorted by time with running rating sums), the item table (distinct users, ratings, raters, summed
  vectors, the terms of each item's first texts), c-TF-IDF keywords, users' cluster counts and rating sums;
  communities (MLlib `KMeans` on users' cluster shares, their number by silhouette);
- on the driver: the fit sample's plan (`stages.sample_plan`, the same records the local engine fits on),
  the sorted arrays Spark returns assembled into the same `GlobalMemory` the local engine writes (the model's
  format keeps one profile per user and the timeline per record), and then `build.finish` and the atomic
  `versions.save`, as for the local engine.

The privacy threshold is applied by the same code (`records.clusters_from`, `ItemTable.snapshot`) on the
same counts. `master`: `local[N]` (default `local[*]`), `spark://HOST:PORT` (or `yarn`, `k8s://...`), or a
Spark Connect server `sc://HOST:PORT`. Only this module imports pyspark.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

import numpy as np
import orjson
import pandas as pd  # pyspark needs it for pandas UDFs, whose type hints name it

from ...errors import EngineError, StoreError
from ...terms import terms
from .. import versions
from ..model import GlobalMemory, ItemTable, Timeline
from ..records import (
    ITEM_CANDIDATES,
    ITEM_TABLE_MAX,
    ITEM_TEXTS,
    KEYWORD_WORDS_PER_RECORD,
    UNDATED,
    _add_item_terms,
    clusters_from,
    profiles_from,
    segments_between,
    unit_rows,
)
from ..stages import (
    COMMUNITY_SILHOUETTE_SAMPLE,
    GENERIC_WORDS,
    KEYWORD_CANDIDATES,
    VOCABULARY,
    BuildOptions,
    Communities,
    Fit,
    Kept,
    Say,
    communities_from,
    community_candidates,
    forced_k,
    group_communities,
    k_candidates,
    measure_drift,
    placed_users,
    ratings_scale,
    sample_plan,
)

INF = float("inf")
KMEANS_ITERATIONS = 20
CANDIDATE_JOBS = 4  # candidate k's fitted at once


def session(master: str | None = None) -> Any:
    """The SparkSession to build with: the active one (tests start one per run), else a new one on `master`.
    Nothing is downloaded: no packages, no jars beyond pyspark's own."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise EngineError(
            "--engine spark needs pyspark, which is not installed.", "pip install 'logo-cli[spark]'"
        ) from exc
    active = SparkSession.getActiveSession()
    if active is not None and (master is None or _master_of(active) == master):  # --master names another: not it
        return active
    if master is None and os.environ.get("PYSPARK_GATEWAY_PORT"):  # launched by spark-submit: its settings hold
        return SparkSession.builder.appName("logo build-global").getOrCreate()
    url = master or os.environ.get("LOGO_SPARK_MASTER") or "local[*]"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors on this machine run this interpreter
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        if url.startswith("sc://"):
            return SparkSession.builder.remote(url).appName("logo build-global").getOrCreate()
        builder = SparkSession.builder.master(url).appName("logo build-global")
        builder = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
        if url.startswith("local"):
            builder = builder.config("spark.driver.memory", os.environ.get("LOGO_SPARK_DRIVER_MEMORY", "2g"))
            builder = builder.config("spark.sql.shuffle.partitions", os.environ.get("LOGO_SPARK_PARTITIONS", "8"))
        spark = builder.getOrCreate()
    except Exception as exc:
        raise EngineError(
            f"Spark could not start on {url}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            "Spark needs Java 17 or newer (`java -version`, JAVA_HOME) and, for a cluster, a reachable master.",
        ) from exc
    with contextlib.suppress(Exception):  # a Spark Connect session has no SparkContext; its server sets its logs
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def _master_of(spark: Any) -> str | None:
    try:
        return str(spark.conf.get("spark.master"))
    except Exception:
        return None


def _stamp(spark: Any, path: str) -> dict[str, Any]:
    """The snapshot's stamp.json: read directly when the path is local, through Spark otherwise (a path only the
    cluster sees, e.g. hdfs:// or s3a://)."""
    local = path[len("file://") :] if path.startswith("file://") else path
    if "://" not in local:
        try:
            with open(os.path.join(local, "stamp.json"), "rb") as fh:
                return dict(orjson.loads(fh.read()))
        except FileNotFoundError as exc:
            from ...errors import NotFound

            raise NotFound(f"{path}: no snapshot here (no stamp.json).", "Write one with `logo snapshot DIR`.") from exc
    text = "".join(row[0] for row in spark.read.text(f"{path}/stamp.json", wholetext=True).collect())
    return dict(orjson.loads(text))


def build(
    path: str, embedder_id: str, dim: int, options: BuildOptions, kept: Kept | None, say: Say, *, master: str | None
) -> GlobalMemory:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.time()
    say("starting Spark")
    spark = session(master)
    stamp = _stamp(spark, path)
    if stamp.get("embedder") != embedder_id or int(stamp.get("dim", -1)) != dim:
        raise StoreError(
            f"{path}: the snapshot was made with embedder {stamp.get('embedder')} (dim {stamp.get('dim')}), "
            f"not {embedder_id} (dim {dim}).",
            "Use the same --embedder as when you ingested, or write the snapshot again.",
        )
    total = int(stamp["records"])
    data = spark.read.parquet(*[f"{path}/{name}" for name in stamp["files"]])
    data = data.withColumn("ts", F.coalesce(F.col("ts"), F.lit(INF)))

    # 1-2. sample and fit: the records the local engine fits on (`sample_plan`), k-means|| with cosine distance
    positions, rows, whole = sample_plan(total, options.seed)
    say(f"reading {total} records" if whole else f"sampling {len(positions)} of {total} records")
    sample = data if whole else _at(spark, data, positions)
    sample = sample.withColumn("features", _vector(F.col("vector"))).persist(StorageLevel.MEMORY_AND_DISK)
    if kept is not None:
        fit = kept.fit
    else:
        fit = _fit(spark, sample, _at(spark, sample, positions[rows]), total, options, say)
    centroids = fit.centroids

    # 4. assign every record (a pandas UDF; vectors leave the plan right after)
    say("assigning records to clusters")
    assign = _assign_udf(centroids)
    users = _first_appearance(spark, data.select("user", "pos"), "user")  # numbered as the local engine does
    items = _first_appearance(spark, data.select("item", "pos"), "item")
    records = (
        data.withColumn("a", assign(F.col("vector")))
        .select("pos", "uid", "user", "item", "label", "ts", "rating", "text", "a.cluster", "a.sim")
        .join(users, "user")
        .join(items, "item", "left")
        .persist(StorageLevel.MEMORY_AND_DISK)  # every stage below reads these, without vectors
    )
    user_names = [str(u) for u in users.orderBy("user_idx").toPandas()["user"]]
    k = len(centroids)

    # 3. vocabulary: c-TF-IDF over the fit sample's texts, each counted in its nearest cluster
    fitted = records if whole else _at(spark, records, positions)
    keywords = _keywords(spark, fitted, _at(spark, records, positions[rows]), records, k, options.min_users)

    say("describing clusters")
    timeline = _timeline(spark, records, k)
    sizes = np.diff(timeline.record_offsets)
    cluster_users = np.diff(timeline.user_offsets)
    lo_hi = records.filter(F.col("ts") < INF).agg(F.min("ts"), F.max("ts")).first()
    segments = segments_between(lo_hi[0], lo_hi[1], options.segments)
    clusters = clusters_from(
        sizes=sizes,
        users=cluster_users,
        labels=_labels(records, options.min_users),
        examples=_examples(records, k),
        timeline=timeline,
        keywords=keywords,
        segments=segments,
        min_users=options.min_users,
    )
    item_table = _items(spark, records, data, items, options.min_users)

    say("profiling users")
    counts = records.groupBy("user_idx", "cluster").count().toPandas()
    user_counts = np.zeros((len(user_names), k), dtype=np.int64)
    if len(counts):
        user_counts[counts["user_idx"].to_numpy(), counts["cluster"].to_numpy()] = counts["count"].to_numpy()
    rated = (
        records.filter(F.col("rating").isNotNull())
        .groupBy("user_idx")
        .agg(F.sum("rating").alias("s"), F.count("rating").alias("n"))
        .toPandas()
    )
    rating_sum = np.zeros(len(user_names))
    rating_n = np.zeros(len(user_names), dtype=np.int64)
    rating_sum[rated["user_idx"].to_numpy()] = rated["s"].to_numpy()
    rating_n[rated["user_idx"].to_numpy()] = rated["n"].to_numpy()
    profiles = profiles_from(user_names, user_counts, rating_sum, rating_n)

    say("grouping users into communities")
    if kept is not None:
        grouped = group_communities(user_counts, options.seed, None, kept.community_centroids)
    else:
        grouped = _communities(spark, user_counts, options)
    for name, community in zip(user_names, grouped.member, strict=True):
        if community >= 0:
            profiles[name].community = int(community)
    if item_table is not None and len(grouped.member):
        item_table.user_community = grouped.member[item_table.user_community]

    summary = records.agg(F.sum("sim"), F.count(F.lit(1))).first()
    drift = measure_drift(float(summary[0] or 0.0), int(summary[1]), kept.baseline if kept else None)
    given = (
        records.filter(F.col("rating").isNotNull())
        .groupBy("rating")
        .agg(F.countDistinct("user").alias("people"))
        .toPandas()
    )
    scale_range, scale_step = ratings_scale(
        given["rating"].to_numpy(dtype=np.float64), given["people"].to_numpy(), options.min_users
    )
    records.unpersist()
    users.unpersist()
    items.unpersist()
    sample.unpersist()
    selection = {**fit.selection, **({"communities": grouped.selection} if grouped.selection else {})}
    return GlobalMemory(
        version=versions.new_version(),
        built_at=time.time(),
        data_at=float(stamp.get("written_at", 0.0)),
        embedder=embedder_id,
        options=asdict(options),
        records=int(summary[1]),
        clusters=clusters,
        users=profiles,
        communities=grouped.communities,
        segments=segments,
        rating_range=scale_range,
        rating_step=scale_step,
        selection={**selection, "engine": "spark", "seconds": round(time.time() - started, 2)},
        drift=drift,
        centroids=centroids,
        community_centroids=grouped.centroids,
        timeline=timeline,
        items=item_table,
    )


# ------------------------------------------------------------------------------------------------ helpers


def _vector(column: Any) -> Any:
    from pyspark.ml.functions import array_to_vector

    return array_to_vector(column)


def _at(spark: Any, frame: Any, positions: np.ndarray) -> Any:
    """The rows of `frame` at these positions (a broadcast join with the few positions wanted)."""
    from pyspark.sql import functions as F

    wanted = spark.createDataFrame(pd.DataFrame({"pos": np.asarray(positions, dtype=np.int64)}))
    return frame.join(F.broadcast(wanted), "pos")


def _first_appearance(spark: Any, records: Any, column: str) -> Any:
    """Each distinct value of `column` with its index in order of first appearance (as the local engine
    numbers users and items)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = records.filter(F.col(column).isNotNull()).groupBy(column).agg(F.min("pos").alias("first"))
    numbered = first.withColumn(f"{column}_idx", F.row_number().over(Window.orderBy("first")) - 1)
    return numbered.select(column, f"{column}_idx").persist()


def _assign_udf(centroids: np.ndarray) -> Any:
    """A pandas UDF: each vector's nearest centroid (cosine: the vectors are unit length) and its similarity."""
    from pyspark.sql.functions import pandas_udf  # type: ignore[attr-defined]

    matrix = np.asarray(centroids, dtype=np.float32)

    @pandas_udf("cluster int, sim double")  # type: ignore[untyped-decorator,misc,call-overload]
    def assign(vectors: pd.Series) -> pd.DataFrame:
        x = np.stack(vectors.to_numpy()).astype(np.float32) if len(vectors) else np.zeros((0, matrix.shape[1]))
        sims = x @ matrix.T
        best = np.argmax(sims, axis=1) if len(x) else np.zeros(0, dtype=np.int64)
        return pd.DataFrame({"cluster": best.astype(np.int32), "sim": sims[np.arange(len(best)), best].astype(float)})

    return assign


def _each(spark: Any, candidates: list[int], score: Any) -> dict[int, float]:
    """Score every candidate number of groups, CANDIDATE_JOBS at a time: each k-means is a chain of small
    Spark jobs whose cost on a sample is mostly scheduling, so concurrent jobs fill the executors."""
    from concurrent.futures import ThreadPoolExecutor

    activate = getattr(type(spark), "_set_default_and_active_session", None)

    def in_session(candidate: int) -> float | None:
        if activate is not None:  # Spark Connect keeps the active session per thread, and MLlib looks it up
            activate(spark)
        return score(candidate)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=CANDIDATE_JOBS) as pool:
        found = dict(zip(candidates, pool.map(in_session, candidates), strict=True))
    return {c: s for c, s in found.items() if s is not None}


def _fit(spark: Any, sample: Any, subsample: Any, total: int, options: BuildOptions, say: Say) -> Fit:
    """k forced or chosen by cosine silhouette (ClusteringEvaluator) on the subsample, then k-means|| with
    cosine distance on the fit sample; unit centroids."""
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator

    forced = forced_k(options, total)
    if forced is not None:
        k, selection = forced
    else:
        say("choosing the number of clusters")
        subsample = subsample.coalesce(1).persist()  # at most SAMPLE_SIZE rows: one task, not one per file
        n = subsample.count()
        evaluator = ClusteringEvaluator(distanceMeasure="cosine", featuresCol="features")

        def score(candidate: int) -> float | None:
            model = KMeans(k=candidate, seed=options.seed, distanceMeasure="cosine", maxIter=KMEANS_ITERATIONS).fit(
                subsample
            )
            predicted = model.transform(subsample)
            return float(evaluator.evaluate(predicted)) if len(model.clusterCenters()) > 1 else None

        scores = _each(spark, [c for c in k_candidates(total) if 2 <= c < n], score)
        subsample.unpersist()
        k = max(scores, key=lambda c: scores[c]) if scores else 1
        selection = {
            "clusters": {
                "method": "silhouette",
                "k": k,
                "sample": n,
                "scores": {str(c): round(s, 4) for c, s in scores.items()},
            }
        }
    say(f"clustering {total} records into {k} interest clusters")
    if k == 1:
        summed = sample.select("vector").toPandas()["vector"]
        centroid = np.stack(summed.to_numpy()).astype(np.float32).sum(axis=0, keepdims=True)
        return Fit(unit_rows(centroid), selection)
    model = KMeans(k=k, seed=options.seed, distanceMeasure="cosine", maxIter=KMEANS_ITERATIONS).fit(sample)
    return Fit(unit_rows(np.asarray(model.clusterCenters(), dtype=np.float32)), selection)


def _keywords(spark: Any, fitted: Any, subsample: Any, records: Any, k: int, min_users: int) -> list[dict[str, int]]:
    """`stages.keyword_candidates` and `records.KeywordPeople` in Spark SQL. Class-based TF-IDF: the vocabulary
    is the VOCABULARY most frequent words of the subsample (no stop words), counted over the fit sample's texts
    in their nearest cluster; score = tf * idf with tf = count / the cluster's words, idf = log(1 + mean words
    per cluster / the word's count). Each cluster's KEYWORD_CANDIDATES best, kept where min_users distinct
    people used them over every record, a record counting its person for at most KEYWORD_WORDS_PER_RECORD."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stop = sorted(ENGLISH_STOP_WORDS | GENERIC_WORDS)

    def words(frame: Any, pattern: str, drop: list[str], *keep: str) -> Any:
        text = F.lower(_embedding_text())
        found = F.explode(F.regexp_extract_all(text, F.lit(pattern), 0)).alias("word")
        exploded = frame.select(*keep, "cluster", found)
        return exploded.filter(~F.col("word").isin(drop)) if drop else exploded

    pattern = r"\b[a-zA-Z][a-zA-Z]{2,}\b"
    vocabulary = (
        words(subsample, pattern, stop).groupBy("word").count().orderBy(F.desc("count"), "word").limit(VOCABULARY)
    )
    if not vocabulary.limit(1).count():  # only stop words in the sample: every word counts
        pattern, stop = r"\b\w+\b", []
        vocabulary = words(subsample, pattern, stop).groupBy("word").count().limit(VOCABULARY)
    used = words(fitted, pattern, stop, "uid", "user").join(F.broadcast(vocabulary.select("word")), "word")
    counts = used.groupBy("cluster", "word").count()
    cluster_total = Window.partitionBy("cluster")
    word_total = Window.partitionBy("word")
    grand = counts.agg(F.sum("count")).first()[0] or 0
    scored = counts.select(
        "cluster",
        "word",
        (
            F.col("count")
            / F.sum("count").over(cluster_total)
            * F.log(1.0 + F.lit(grand / max(k, 1)) / F.greatest(F.sum("count").over(word_total), F.lit(1)))
        ).alias("score"),
    ).filter(F.col("score") > 0)
    candidates = scored.withColumn(
        "rank", F.row_number().over(Window.partitionBy("cluster").orderBy(F.desc("score"), "word"))
    ).filter(F.col("rank") <= KEYWORD_CANDIDATES)
    per_record = (  # over every record: the sample only chose the candidates
        words(records, pattern, [], "uid", "user")
        .join(F.broadcast(candidates.select("cluster", "word", "rank")), ["cluster", "word"])
        .distinct()
    )
    capped = per_record.withColumn("n", F.row_number().over(Window.partitionBy("uid").orderBy("rank"))).filter(
        F.col("n") <= KEYWORD_WORDS_PER_RECORD
    )
    people = capped.groupBy("cluster", "word", "rank").agg(F.countDistinct("user").alias("people"))
    out: list[dict[str, int]] = [{} for _ in range(k)]
    for row in people.filter(F.col("people") >= min_users).orderBy("cluster", "rank").collect():
        out[int(row["cluster"])][str(row["word"])] = int(row["people"])
    return out


def _embedding_text() -> Any:
    """What the embedder read: the item's name before a text that does not say it (Record.embedding_text)."""
    from pyspark.sql import functions as F

    says_item = F.instr(F.lower(F.col("text")), F.lower(F.col("item"))) > 0
    return F.when(
        F.col("item").isNotNull() & ~says_item, F.concat(F.col("item"), F.lit(": "), F.col("text"))
    ).otherwise(F.col("text"))


def _sorted_arrays(
    frame: Any, key: str, k: int, order: list[str], values: list[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows sorted by `key` then `order`, as arrays, with offsets slicing each key 0..k-1."""
    table = frame.select(key, *values).orderBy(key, *order).toPandas() if k else None
    keys = table[key].to_numpy() if table is not None else np.zeros(0, dtype=np.int64)
    offsets = np.searchsorted(keys, np.arange(k + 1), side="left")
    return offsets, {v: (table[v].to_numpy() if table is not None else np.zeros(0)) for v in values}


def _timeline(spark: Any, records: Any, k: int) -> Timeline:
    """The time views in Spark SQL: records by (cluster, time) with running rating sums and counts; each
    (cluster, user)'s first record and first rating; each cluster's most shared items with their users' first
    times."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    running = Window.partitionBy("cluster").orderBy("ts", "pos").rowsBetween(Window.unboundedPreceding, 0)
    timed = records.select(
        "cluster",
        "ts",
        "pos",
        F.sum(F.coalesce(F.col("rating"), F.lit(0.0))).over(running).alias("rating_cum"),
        F.count(F.col("rating")).over(running).alias("rated_cum"),
    )
    record_offsets, cols = _sorted_arrays(timed, "cluster", k, ["ts", "pos"], ["ts", "rating_cum", "rated_cum"])
    firsts = records.groupBy("cluster", "user_idx").agg(F.min("ts").alias("ts"))
    user_offsets, users = _sorted_arrays(firsts, "cluster", k, ["ts", "user_idx"], ["ts"])
    raters = records.filter(F.col("rating").isNotNull()).groupBy("cluster", "user_idx").agg(F.min("ts").alias("ts"))
    rater_offsets, rater = _sorted_arrays(raters, "cluster", k, ["ts", "user_idx"], ["ts"])

    per_user = (
        records.filter(F.col("item").isNotNull()).groupBy("cluster", "item", "user_idx").agg(F.min("ts").alias("ts"))
    )
    per_item = per_user.groupBy("cluster", "item").agg(
        F.count(F.lit(1)).alias("users"), F.sort_array(F.collect_list("ts")).alias("first")
    )
    ranked = per_item.withColumn(
        "rank", F.row_number().over(Window.partitionBy("cluster").orderBy(F.desc("users"), "item"))
    ).filter(F.col("rank") <= ITEM_CANDIDATES)
    item_first_ts: dict[int, dict[str, list[float]]] = {}
    for row in ranked.orderBy("cluster", "rank").collect():
        item_first_ts.setdefault(int(row["cluster"]), {})[str(row["item"])] = [
            min(float(x), UNDATED) for x in row["first"]
        ]
    return Timeline(
        record_ts=cols["ts"].astype(np.float64),
        record_offsets=record_offsets.astype(np.int64),
        rating_cum=cols["rating_cum"].astype(np.float64),
        rated_cum=cols["rated_cum"].astype(np.int64),
        user_first_ts=users["ts"].astype(np.float64),
        user_offsets=user_offsets.astype(np.int64),
        rater_first_ts=rater["ts"].astype(np.float64),
        rater_offsets=rater_offsets.astype(np.int64),
        item_first_ts=item_first_ts,
    )


def _labels(records: Any, min_users: int) -> dict[int, dict[str, int]]:
    """cluster -> label -> records, for labels at least min_users people gave in the cluster, in order of their
    first appearance in the store (`records._label_counts`)."""
    from pyspark.sql import functions as F

    counted = (
        records.filter(F.col("label").isNotNull())
        .groupBy("cluster", "label")
        .agg(F.count(F.lit(1)).alias("n"), F.countDistinct("user").alias("people"), F.min("pos").alias("first"))
        .filter(F.col("people") >= min_users)
    )
    first = records.filter(F.col("label").isNotNull()).groupBy("label").agg(F.min("pos").alias("order"))
    out: dict[int, dict[str, int]] = {}
    for row in counted.join(first, "label").orderBy("cluster", "order").collect():
        out.setdefault(int(row["cluster"]), {})[str(row["label"])] = int(row["n"])
    return out


def _examples(records: Any, k: int) -> list[list[str]]:
    """Up to 3 texts per cluster, nearest its centroid, from distinct users (the 30 nearest considered)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("cluster").orderBy(F.desc("sim"), F.desc("user"), F.desc("uid"))
    nearest = records.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= 30)
    out: list[list[str]] = [[] for _ in range(k)]
    seen: list[set[str]] = [set() for _ in range(k)]
    for row in (
        nearest.select("cluster", "rank", "user", _embedding_text().alias("t")).orderBy("cluster", "rank").collect()
    ):
        c = int(row["cluster"])
        if row["user"] not in seen[c] and len(out[c]) < 3:
            out[c].append(str(row["t"])[:240])
            seen[c].add(row["user"])
    return out


def _items(spark: Any, records: Any, data: Any, items: Any, min_users: int) -> ItemTable | None:
    """The item table in Spark SQL: items at least min_users people have records of (the ITEM_TABLE_MAX most
    shared), each distinct user's first record, ratings sorted by time with running sums, first ratings, the
    mean of the item's vectors and the terms of its first ITEM_TEXTS texts."""
    from pyspark.ml.stat import Summarizer
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    mentions = records.filter(F.col("item").isNotNull())
    firsts = mentions.groupBy("item_idx", "user_idx").agg(F.min("ts").alias("ts"))
    shared = (
        firsts.groupBy("item_idx")
        .agg(F.count(F.lit(1)).alias("users"))
        .filter(F.col("users") >= min_users)
        .orderBy(F.desc("users"), "item_idx")
        .limit(ITEM_TABLE_MAX)
    )
    shared = shared.withColumn("row", F.row_number().over(Window.orderBy("item_idx")) - 1).select("item_idx", "row")
    shared = shared.join(items, "item_idx").persist()
    table = shared.orderBy("row").toPandas()
    n = len(table)
    if not n:
        shared.unpersist()
        return None
    rows = F.broadcast(shared.select("item_idx", "row"))
    user_offsets, users = _sorted_arrays(
        firsts.join(rows, "item_idx"), "row", n, ["ts", "user_idx"], ["ts", "user_idx"]
    )
    rated = mentions.filter(F.col("rating").isNotNull()).join(rows, "item_idx")
    running = Window.partitionBy("row").orderBy("ts", "pos").rowsBetween(Window.unboundedPreceding, 0)
    ratings = rated.select("row", "ts", "pos", F.sum("rating").over(running).alias("cum"))
    offsets, rating_cols = _sorted_arrays(ratings, "row", n, ["ts", "pos"], ["ts", "cum"])
    raters = rated.groupBy("row", "user_idx").agg(F.min("ts").alias("ts"))
    rater_offsets, rater_cols = _sorted_arrays(raters, "row", n, ["ts", "user_idx"], ["ts"])

    summed = (
        data.join(F.broadcast(shared.select("item", "row")), "item")
        .groupBy("row")
        .agg(Summarizer.sum(_vector(F.col("vector"))).alias("v"))
        .orderBy("row")
        .collect()
    )
    vectors = np.zeros((n, len(summed[0]["v"]) if summed else 0), dtype=np.float32)
    for row in summed:
        vectors[int(row["row"])] = np.asarray(row["v"].toArray(), dtype=np.float32)

    terms_udf = _terms_udf()
    texts = mentions.join(rows, "item_idx").filter(F.length("text") > 0)
    first_texts = texts.withColumn("n", F.row_number().over(Window.partitionBy("row").orderBy("pos"))).filter(
        F.col("n") <= ITEM_TEXTS
    )
    # of those, each person's first text of the item: a term's count is its people, as the local engine counts
    first_texts = first_texts.withColumn(
        "mine", F.row_number().over(Window.partitionBy("row", "user_idx").orderBy("pos"))
    ).filter(F.col("mine") == 1)
    term_counts = (
        first_texts.select("row", F.explode(F.array_distinct(terms_udf(F.col("text")))).alias("term"))
        .groupBy("row", "term")
        .count()
        .toPandas()
    )
    per_item: list[Counter[str]] = [Counter() for _ in range(n)]
    names = [set(terms(str(name))) for name in table["item"]]  # beyond its name: "Star Wars" is no war film
    for row, term, count in zip(term_counts["row"], term_counts["term"], term_counts["count"], strict=True):
        if str(term) not in names[int(row)]:
            per_item[int(row)][str(term)] = int(count)
    shared.unpersist()
    item_table = ItemTable(
        names=[str(x) for x in table["item"]],
        vectors=unit_rows(vectors),
        rating_ts=rating_cols["ts"].astype(np.float64),
        rating_cum=rating_cols["cum"].astype(np.float64),
        offsets=offsets.astype(np.int64),
        rater_ts=rater_cols["ts"].astype(np.float64),
        rater_offsets=rater_offsets.astype(np.int64),
        user_ts=users["ts"].astype(np.float64),
        user_offsets=user_offsets.astype(np.int64),
        user_index=users["user_idx"].astype(np.int32),
        user_community=users["user_idx"].astype(np.int32),  # user indices until communities exist
    )
    _add_item_terms(item_table, per_item, min_users)
    return item_table


def _terms_udf() -> Any:
    from pyspark.sql.functions import pandas_udf  # type: ignore[attr-defined]

    @pandas_udf("array<string>")  # type: ignore[untyped-decorator,misc,call-overload]
    def item_terms(texts: pd.Series) -> pd.Series:
        from logo_cli.terms import terms

        return pd.Series([sorted(set(terms(t))) for t in texts])

    return item_terms


def _communities(spark: Any, user_counts: np.ndarray, options: BuildOptions) -> Communities:
    """Users with enough history grouped by MLlib k-means over their cluster shares, into --communities or as
    many as the best cosine silhouette (ClusteringEvaluator) on up to COMMUNITY_SILHOUETTE_SAMPLE of them."""
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    k = user_counts.shape[1]
    placed = placed_users(user_counts)
    if not len(placed):
        return Communities([], np.zeros((0, k), dtype=np.float32), np.full(len(user_counts), -1, np.int32), None)
    shares = user_counts[placed] / np.maximum(user_counts[placed].sum(axis=1, keepdims=True), 1)
    frame = spark.createDataFrame(
        pd.DataFrame({"row": np.arange(len(placed)), "shares": [list(map(float, s)) for s in shares]})
    ).select("row", array_to_vector(F.col("shares")).alias("features"))
    frame = frame.persist()
    selection: dict[str, Any]
    if options.communities is not None:
        n_comm = max(1, min(options.communities, len(placed)))
        selection = {"method": "forced", "c": n_comm}
    else:
        fraction = min(1.0, COMMUNITY_SILHOUETTE_SAMPLE / len(placed))
        scored = frame.sample(fraction=fraction, seed=options.seed) if fraction < 1 else frame
        evaluator = ClusteringEvaluator(distanceMeasure="cosine")

        def score(c: int) -> float | None:
            predicted = KMeans(k=c, seed=options.seed, maxIter=KMEANS_ITERATIONS).fit(frame).transform(scored)
            return (
                float(evaluator.evaluate(predicted)) if predicted.select("prediction").distinct().count() > 1 else None
            )

        scores = _each(spark, [c for c in community_candidates(len(placed)) if c < len(placed)], score)
        n_comm = max(scores, key=lambda c: scores[c]) if scores else 1
        selection = {"method": "silhouette", "c": n_comm, "scores": {str(c): round(s, 4) for c, s in scores.items()}}
    model = KMeans(k=n_comm, seed=options.seed, maxIter=KMEANS_ITERATIONS).fit(frame) if n_comm > 1 else None
    if model is None:
        labels = np.zeros(len(placed), dtype=np.int64)
        centroids = shares.mean(axis=0, keepdims=True)
    else:
        predicted: Any = model.transform(frame).select("row", "prediction").orderBy("row").toPandas()
        labels = predicted["prediction"].to_numpy()
        centroids = np.asarray(model.clusterCenters())
        used = sorted(set(labels.tolist()))  # k-means|| may leave a centre empty: renumber the ones in use
        if len(used) < len(centroids):
            remap = {old: new for new, old in enumerate(used)}
            labels = np.array([remap[x] for x in labels])
            centroids = centroids[used]
    frame.unpersist()
    return communities_from(user_counts, placed, labels, centroids.astype(np.float32), selection)
