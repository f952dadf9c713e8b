"""The differentially private release of population statistics (global_memory/release.py), attacked the way
the issue describes: a difference of two views, through `logo ask --at` and across builds. With the fake
embedder and model; the suite builds with --epsilon inf (conftest), so every build here names its budget."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from logo_cli import global_memory
from logo_cli.global_memory import release

from .helpers import lines, make_records, run, write_jsonl

W = release.DEFAULT_PERIOD_DAYS * release.DAY
PERIOD_A = int(53 * 365.25 * release.DAY / W)  # in 2023: the five first raters; PERIOD_A + 1: the newcomer
FILMS = 150
TWO_TOPICS = {f"film{i}": ("films", 12) for i in range(5)} | {f"cook{i}": ("cooking", 12) for i in range(5)}


def film(i: int) -> str:
    return f"Quiet Harbor {i} part{i}"  # two tokens of its own: the fake embedder finds it among the others


def first_raters(films: int) -> list[dict]:
    """Five people rate every film in period A; filler users give the clusters their topics."""
    rows = make_records(
        {f"cook{i}": ("cooking", 10) for i in range(4)} | {f"trav{i}": ("travel", 10) for i in range(4)}
    )
    for u, pattern in enumerate([3.0, 4.0, 2.0, 5.0, 3.0]):
        for i in range(films):
            rows.append(
                {
                    "user": f"early{u}",
                    "id": f"early{u}-{i}",
                    "text": f"Watched the film {film(i)} at the cinema, the director and the actors made a tense movie",
                    "item": film(i),
                    "rating": pattern if i % 2 else 6.0 - pattern,
                    "timestamp": (PERIOD_A + 0.3) * W + 60 * (u * films + i),
                }
            )
    return rows


def newcomer(films: int, when: float) -> list[dict]:
    """One more person rates each film: 1, 2, 3, 4, 5, 1, ... (what the attacker wants to learn)."""
    return [
        {
            "user": "p9",
            "id": f"p9-{i}",
            "text": f"Rewatched the movie {film(i)}, a film with a great director, cast and cinema score",
            "item": film(i),
            "rating": float(1 + i % 5),
            "timestamp": when + i,
        }
        for i in range(films)
    ]


def seen(films: int, at: float | None, epsilon: float | str | None = None) -> dict[str, tuple[float, int] | None]:
    """What an attacker reads from `logo ask --json`: each film's population mean and ratings (None: hidden).
    Every answer must say the budget it was built with: `epsilon`, else the default or inf."""
    questions = "".join(
        json.dumps(
            {
                "user": "attacker",
                "query": f"How would I rate the film {film(i)} at the cinema?",
                **({"at": at} if at else {}),
            }
        )
        + "\n"
        for i in range(films)
    )
    code, out, err = run("ask", "-", "--json", input=questions)
    assert code == 0, err
    budgets = (3.0, "inf") if epsilon is None else (epsilon,)
    found: dict[str, tuple[float, int] | None] = {}
    for answer, i in zip(lines(out), range(films), strict=True):
        items = {e["item"]: e for e in (answer["evidence"] or {}).get("items", [])}
        hit = items.get(film(i))
        ok = hit is not None and hit["rating_mean"] is not None
        found[film(i)] = (hit["rating_mean"], hit["ratings"]) if ok else None
        assert answer["privacy"]["epsilon"] in budgets
    return found


def attack(before: dict, after: dict, films: int) -> np.ndarray:
    """The attacker's guess of the newcomer's rating of each film: the difference of the two views' sums
    (a guess of 3 where either view hides the film), against the truth: absolute errors."""
    errors = []
    for i in range(films):
        a, b = before[film(i)], after[film(i)]
        guess = 3.0 if a is None or b is None else float(np.clip(np.round(b[0] * b[1] - a[0] * a[1]), 1, 5))
        errors.append(abs(guess - (1 + i % 5)))
    return np.asarray(errors)


def build(*args: str) -> dict:
    shape = () if "--update" in args else ("--clusters", "3")
    code, out, err = run("build-global", "--seed", "0", *shape, *args)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def attacked(fake_env: Path, tmp_path: Path) -> Path:
    rows = first_raters(FILMS) + newcomer(FILMS, (PERIOD_A + 1.3) * W)
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0
    return fake_env


def test_without_privacy_the_difference_attack_reads_the_rating_exactly(attacked: Path) -> None:
    build("--epsilon", "inf")
    before, after = seen(FILMS, (PERIOD_A + 1) * W + 10), seen(FILMS, (PERIOD_A + 2) * W + 10)
    assert before[film(0)] == (2.6, 5) and after[film(0)] == (pytest.approx(2.333, abs=1e-3), 6)
    assert attack(before, after, FILMS).mean() == 0.0  # the attack: exact, for every film


def test_the_difference_attack_through_ask_at_recovers_no_more_than_a_guess(attacked: Path) -> None:
    errors = []
    for _ in range(2):  # two independent releases (a fresh global memory each): more samples of the noise
        shutil.rmtree(attacked / "global", ignore_errors=True)
        summary = build("--epsilon", "3")
        assert summary["privacy"]["epsilon"] == 3.0
        errors.append(attack(seen(FILMS, (PERIOD_A + 1) * W + 10), seen(FILMS, (PERIOD_A + 2) * W + 10), FILMS))
    mae = float(np.concatenate(errors).mean())
    assert mae >= 1.0, mae  # a guess of 3 on 1..5 errs by 1.2; the attack reads 0.0 without privacy


def test_the_difference_attack_across_builds_recovers_no_more_than_a_guess(fake_env: Path, tmp_path: Path) -> None:
    assert run("ingest", str(write_jsonl(tmp_path / "first.jsonl", first_raters(FILMS))))[0] == 0
    build("--epsilon", "3")
    before = seen(FILMS, None)
    # the newcomer rates in the open period (now): the next build releases the change as a new increment
    assert run("ingest", str(write_jsonl(tmp_path / "p9.jsonl", newcomer(FILMS, time.time() - 3600))))[0] == 0
    summary = build("--epsilon", "3", "--update")
    after = seen(FILMS, None)
    mae = float(attack(before, after, FILMS).mean())
    assert mae >= 1.0, mae
    ledger = summary["privacy"]["ledger"]
    # community sizes and keywords are drawn afresh each build
    assert len(ledger) == 2 and ledger[1]["epsilon_old_records"] == pytest.approx(2 * 3.0 / 24)


def assert_closed_periods_kept(old: release.Release, new: release.Release) -> None:
    """Every cell `old` released for a period closed by then reads the same noisy number in `new`."""
    for name, family in old.families.items():
        closed = (family.periods != release.UNDATED) & ((family.periods + 1) * W <= old.built_at)
        rows = [new.families[name].keys.index(k) for k in family.keys]
        cols = np.searchsorted(new.families[name].periods, family.periods[closed])
        assert np.array_equal(new.families[name].noisy[np.ix_(rows, cols)], family.noisy[:, closed]), name


def test_the_ledger_adds_up_and_past_releases_are_never_redrawn(attacked: Path, tmp_path: Path) -> None:
    first = build("--epsilon", "3")["privacy"]
    entry = first["ledger"][0]
    assert sum(r["epsilon"] for r in entry["releases"]) == pytest.approx(3.0)
    assert entry["epsilon_new_records"] == pytest.approx(3.0) and first["epsilon_spent"] == pytest.approx(3.0)
    for r in entry["releases"]:
        assert r["scale"] == pytest.approx(r["sensitivity"] / r["epsilon"])
        if r["cells_released"]:
            assert r["epsilon_stated_by_opendp"] == pytest.approx(r["epsilon"])  # OpenDP's own accounting
    old = global_memory.versions.load_release(attacked / "global")
    at = (PERIOD_A + 2) * W + 10
    view = global_memory.load(attacked / "global").as_of(at)
    assert view.items is not None
    snap = view.items.snapshot(at, 3)

    more = make_records({f"late{i}": ("travel", 10) for i in range(4)}, start=int(time.time()) - 86_400 * 20)
    assert run("ingest", str(write_jsonl(tmp_path / "more.jsonl", more)))[0] == 0
    second = build("--epsilon", "3", "--update")["privacy"]
    assert len(second["ledger"]) == 2
    # an update keeps the clusters: only community sizes and keywords are drawn again for records already released
    assert second["epsilon_spent"] == pytest.approx(3.0 + 2 * 3.0 / 24)
    new = global_memory.versions.load_release(attacked / "global")
    assert old is not None and new is not None
    assert_closed_periods_kept(old, new)
    after = global_memory.load(attacked / "global").as_of(at)
    assert after.items is not None
    again = after.items.snapshot(at, 3)
    assert np.array_equal(snap.users, again.users) and np.allclose(snap.rating_mean, again.rating_mean, equal_nan=True)
    assert [c.size for c in after.clusters] == [c.size for c in view.clusters]

    code, out, _ = run("global", "--ledger")
    assert code == 0 and json.loads(out)["epsilon_spent"] == pytest.approx(3.0 + 2 * 3.0 / 24)
    code, out, _ = run("doctor", "--json")
    assert "epsilon 3 per record" in out


def test_the_advised_period_keeps_any_span_within_the_advised_periods() -> None:
    """Periods are aligned to 1970, so a span of n lengths can touch n + 1 periods: the advice allows for it."""
    for days, first in [(1000, 5), (1000, 0), (101, 7), (4000, 123), (250, 99)]:
        advice = release.period_advice(days, 1.0)
        assert advice is not None
        longer = int(advice.split("`--period-days ")[1].split("`")[0])
        last = first + days - 1
        assert last // longer - first // longer + 1 <= release.ADVISED_PERIODS, (days, first, longer)
    assert release.period_advice(release.ADVISED_PERIODS, 7.0) is None


def test_an_exact_build_between_private_ones_never_lets_a_closed_period_be_drawn_again(attacked: Path) -> None:
    """An --epsilon inf build shows every figure exactly; the private build after it must continue the release
    before it (the exact version holds it), not draw closed periods afresh: a second draw is a second look. The
    ledger keeps the exact build, and what a record has spent is inf from then on."""
    build("--epsilon", "3")
    old = global_memory.versions.load_release(attacked / "global")
    assert build("--epsilon", "inf")["privacy"]["exact"] is True
    assert global_memory.versions.load_release(attacked / "global") is None  # views read exact figures
    held = json.loads(run("global", "--ledger")[1])  # what was spent stays readable meanwhile
    assert held["exact"] is True and held["epsilon_spent"] == "inf" and [e["epsilon"] for e in held["ledger"]] == [
        3.0,
        "inf",
    ]
    again = build("--epsilon", "3", "--update")["privacy"]
    new = global_memory.versions.load_release(attacked / "global")
    assert old is not None and new is not None
    assert_closed_periods_kept(old, new)
    assert [e["epsilon"] for e in again["ledger"]] == [3.0, "inf", 3.0]
    assert again["epsilon_spent"] == "inf"
    reused = {r["statistic"]: r["cells_final_reused"] for r in again["ledger"][2]["releases"]}
    assert reused["item_rating_sum"] > 0
    code, out, _ = run("doctor", "--json")
    assert code == 0 and "inf spent at most by any record over 3 build(s)" in out


def test_a_release_is_continued_from_an_older_version_and_a_damaged_one_has_a_way_out(attacked: Path) -> None:
    """An exact version written before versions held a release: the next private build continues the newest
    older version's. A damaged current release stops a private build (exit 6, saying what to do); an exact build
    gets past it, and the private build after that starts a new release, its ledger opening with the exact build.
    A store built exact first remembers that build too."""
    import shutil

    build("--epsilon", "3")
    build("--epsilon", "inf")
    home = attacked / "global"
    exact = home / (home / "CURRENT").read_text().strip()
    shutil.rmtree(exact / global_memory.versions.HELD)  # as old code wrote it: no held release, no "private" flag
    written = json.loads((exact / "memory.json").read_text())
    (exact / "memory.json").write_text(json.dumps({k: v for k, v in written.items() if k != "private"}))
    after = build("--epsilon", "3", "--update")["privacy"]
    assert len(after["ledger"]) == 2 and after["ledger"][1]["releases"][2]["cells_final_reused"] > 0

    (home / (home / "CURRENT").read_text().strip() / "release.npz").write_bytes(b"damaged")
    code, _, err = run("build-global", "--seed", "0", "--epsilon", "3", "--update")
    assert code == 6 and "unreadable" in err and "--epsilon inf" in err, err
    assert build("--epsilon", "inf", "--update")["privacy"]["exact"] is True
    fresh = build("--epsilon", "3", "--update")["privacy"]
    assert [e["epsilon"] for e in fresh["ledger"]] == ["inf", 3.0] and fresh["epsilon_spent"] == "inf"
    assert all(r["cells_final_reused"] == 0 for r in fresh["ledger"][1]["releases"])

    shutil.rmtree(home)
    build("--epsilon", "inf")  # exact first: everything shown, nothing released before
    first = build("--epsilon", "3", "--update")["privacy"]
    assert [e["epsilon"] for e in first["ledger"]] == ["inf", 3.0] and first["epsilon_spent"] == "inf"


def test_a_store_keeps_its_period_unless_told_otherwise(attacked: Path) -> None:
    """A new period grid releases every old record again: a build without --period-days keeps the store's, so
    changing logo's default never spends a store's budget twice."""
    assert build("--epsilon", "3", "--period-days", "365")["privacy"]["ledger"][0]["period_days"] == 365
    kept = build("--epsilon", "3", "--update")["privacy"]
    assert kept["ledger"][1]["period_days"] == 365 and kept["ledger"][1]["epsilon_old_records"] == pytest.approx(
        2 * 3.0 / 24  # community sizes and keywords, drawn every build
    )
    moved = build("--epsilon", "3", "--update", "--period-days", "91")["privacy"]
    assert moved["ledger"][2]["period_days"] == 91 and moved["ledger"][2]["epsilon_old_records"] == pytest.approx(3.0)
    assert release.chosen_period(None, None) == release.DEFAULT_PERIOD_DAYS


def test_a_build_of_more_periods_than_flat_increments_suit_advises_a_longer_period(
    fake_env: Path, tmp_path: Path
) -> None:
    """A view sums one noisy cell per period, so past ADVISED_PERIODS a tree would be less noisy (logo has none):
    the build says so on stderr and names a period that keeps the store within them; its JSON counts the periods."""
    rows = first_raters(5) + newcomer(5, (PERIOD_A + 1.3) * W)
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0
    code, out, err = run("build-global", "--seed", "0", "--clusters", "3", "--epsilon", "3", "--period-days", "1")
    assert code == 0, err
    privacy = json.loads(out)["privacy"]
    days = privacy["periods"]  # days from the first record to the last
    assert days > release.ADVISED_PERIODS
    said = " ".join(err.split())
    assert "Advice:" in said and f"`--period-days {math.ceil(days / (release.ADVISED_PERIODS - 1))}` keeps" in said
    code, out, err = run("build-global", "--seed", "0", "--clusters", "3", "--epsilon", "3", "--period-days", "91")
    assert code == 0 and json.loads(out)["privacy"]["periods"] < release.ADVISED_PERIODS
    assert "Advice" not in err
    answer = lines(run("ask", "--user", "p9", "--json", f"How would I rate {film(0)}?")[1])[0]
    assert answer["privacy"]["periods"] == json.loads(out)["privacy"]["periods"]


def test_item_neighbours_in_a_private_view_move_only_at_period_ends(fake_env: Path, tmp_path: Path) -> None:
    """`ask --at` refitted who-has-what neighbours from exact mentions to the second: asked one second apart, a
    recommendation's `together` told anyone when another person added an item. Under privacy a view's neighbours
    count the mentions before its last period end, as every released figure does."""
    from logo_cli.global_memory.collaborative import neighbours_of

    start = (PERIOD_A + 0.2) * W
    rows = [
        {"user": u, "id": f"{u}-{item}", "text": f"Watched the film {item} at the cinema", "item": item,
         "rating": 4.0, "timestamp": start + 60 * i}
        for i, (u, item) in enumerate((u, item) for u in ("ann", "bob", "cid", "dee") for item in ("Alpha", "Beta"))
    ]
    added = (PERIOD_A + 1.5) * W  # mid-period: the victim adds Beta then
    rows += [
        {"user": "vic", "id": "vic-a", "text": "Watched the film Alpha at the cinema", "item": "Alpha", "rating": 3.0,
         "timestamp": start},
        {"user": "vic", "id": "vic-b", "text": "Watched the film Beta at the cinema", "item": "Beta", "rating": 3.0,
         "timestamp": added},
    ]
    rows += first_raters(3)  # filler: clusters with topics
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0

    def together(at: float) -> float:
        memory = global_memory.load(fake_env / "global").as_of(at)
        near = neighbours_of(memory)
        assert near is not None and memory.items is not None
        rows = memory.items.rows
        return float(near.similarity_to(rows["Alpha"], np.array([rows["Beta"]]))[0])

    build("--epsilon", "inf")
    assert together(added) != together(added + 1)  # exact: to the second (research only, and says so)
    build("--epsilon", "3")
    assert together(added) == together(added + 1) == together((PERIOD_A + 1) * W + 1)
    assert together((PERIOD_A + 2) * W + 1) != together(added)  # the period's end shows the change


def test_one_persons_odd_ratings_do_not_set_everyones_scale(fake_env: Path, tmp_path: Path) -> None:
    """The scale came from every rating: one person's 9 made every rating answer read "4.5/9" and doubled the
    sums' noise; one 4.33 turned everyone's scale step from a whole star to none. A value shapes it only when
    min_users people gave it; the odd ratings are clipped into the scale where figures are summed."""
    odd = [
        {"user": "odd", "id": f"odd-{i}", "text": f"Watched the film {film(i)} at the cinema", "item": film(i),
         "rating": rating, "timestamp": (PERIOD_A + 0.5) * W + i}
        for i, rating in enumerate([9.0, 4.33])
    ]
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", first_raters(10) + odd)))[0] == 0
    summary = build("--epsilon", "3")["privacy"]
    memory = global_memory.load(fake_env / "global")
    assert memory.rating_range == (1.0, 5.0) and memory.rating_step == 1.0
    (sums,) = [r for r in summary["ledger"][0]["releases"] if r["statistic"] == "item_rating_sum"]
    assert sums["sensitivity"] == 2  # half of 1..5 in whole stars, not half of 1..9


def test_a_choice_finds_its_item_among_what_the_view_may_name_by_noisy_people(fake_env: Path, tmp_path: Path) -> None:
    """A choice option matched its item by exact all-time counts: of "Dune" and "Dune (2021)", four people each,
    a fifth person's record of the remake flipped `choices[].item` with certainty, and named it in a view that
    had released nothing yet. Under privacy only items the view may name count, by their noisy people."""
    from dataclasses import replace

    text = "Watched the film {} at the cinema"
    rows = [
        {"user": f"{who}{i}", "id": f"{who}{i}", "text": text.format(item), "item": item, "rating": 4.0,
         "timestamp": (PERIOD_A + 0.2) * W + i}
        for who, item in (("a", "Dune"), ("b", "Dune (2021)"))
        for i in range(4)
    ]
    rows.append({"user": "victim", "id": "v", "text": text.format("Dune (2021)"), "item": "Dune (2021)",
                 "rating": 5.0, "timestamp": (PERIOD_A + 0.5) * W})
    rows += first_raters(3)
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0
    build("--epsilon", "3")
    question = {"user": "eve", "query": "Which should I watch tonight?", "candidates": ["Dune", "Barbie"],
                "answer_type": "choice", "at": (PERIOD_A + 0.9) * W}  # before the first period ends: nothing named
    code, out, err = run("ask", "-", input=json.dumps(question) + "\n")
    assert code == 0, err
    assert [c["item"] for c in lines(out)[0]["choices"]] == [None, None]  # the old code named "Dune (2021)"

    table = global_memory.load(fake_env / "global").items
    assert table is not None
    dune, remake = table.rows["Dune"], table.rows["Dune (2021)"]
    snap = table.snapshot(None, 3)
    for more, fewer in ((dune, remake), (remake, dune)):  # the view's (noisy) people decide, not the exact ones
        users = snap.users.copy()
        users[more], users[fewer] = 9, 5
        public = snap.public.copy()
        public[[more, fewer]] = True
        assert table.find("Dune", replace(snap, users=users, public=public)) == more
    public = snap.public.copy()
    public[[dune, remake]] = False
    assert table.find("Dune", replace(snap, public=public)) is None


def test_an_items_terms_are_words_enough_of_its_people_used(fake_env: Path, tmp_path: Path) -> None:
    """A word one person wrote about an item was one of its terms, and "no almonds" dropped the item from a
    recommendation: anyone could test what that person wrote. A term now needs min_users of the item's people
    (a person's words count once per item), in both engines."""
    texts = ["Watched {} at the cinema, a tense drama"] * 3 + ["Watched {} at the cinema, ate almonds loudly"]
    rows = [
        {"user": f"p{i}", "id": f"p{i}-{k}", "text": text.format("Harbor Lights"), "item": "Harbor Lights",
         "rating": 4.0, "timestamp": (PERIOD_A + 0.2) * W + i + k}
        for i, text in enumerate(texts)
        for k in range(1 if i < 3 else 3)  # the last person writes it three times: still one person
    ]
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows + first_raters(3))))[0] == 0
    build("--epsilon", "inf")
    table = global_memory.load(fake_env / "global").items
    assert table is not None
    row = table.rows["Harbor Lights"]
    assert table.term_match(["almonds"])[row] == 0 and table.term_match(["loudly"])[row] == 0
    assert table.term_match(["tense"])[row] > 0  # three people's word


def test_epsilon_inf_releases_the_exact_figures_and_says_so(attacked: Path) -> None:
    summary = build("--epsilon", "inf")
    assert summary["privacy"]["epsilon"] == "inf" and summary["privacy"]["exact"] is True
    memory = global_memory.load(attacked / "global")
    exact = global_memory.versions.load_exact(attacked / "global")
    assert memory.release is None and [c.size for c in memory.clusters] == [c.size for c in exact.clusters]
    assert memory.items is not None
    assert memory.items.rating(memory.items.rows[film(0)], None, 3) == (pytest.approx(14 / 6), 6)
    answer = lines(run("ask", "--user", "p9", "--json", f"How would I rate {film(0)}?")[1])[0]
    assert answer["privacy"]["epsilon"] == "inf" and "protect nobody" in answer["privacy"]["note"]
    code, out, _ = run("global", "--json")
    assert code == 0 and all(row["epsilon"] == "inf" for row in lines(out))


def test_a_view_shows_no_keywords_of_a_private_cluster_nor_an_exact_count_of_people(
    attacked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before any record every cluster is private (no noisy people): it shows no keywords, though keywords have no
    periods. The table's title named the exact number of users in every view (one user's only record moved it):
    only an exact, latest view names it now. No view, exact or not, shows people's own sentences."""
    from logo_cli.cli.output import print_clusters
    from logo_cli.views import cluster_rows

    build("--epsilon", "3")
    past = lines(run("global", "--json", "--at", "1970-01-02")[1])
    assert past and all(r["private"] and r["keywords"] == [] and r["keyword_people"] == {} for r in past)
    code, _, err = run("profile", "--user", "p9", "--at", "1970-01-02")  # nobody had records then: say so
    assert code == 4 and "No records for user 'p9' before 1970-01-02" in err and "A later --at" in err, err
    latest = lines(run("global", "--json")[1])  # keyword noise has scale 16 here: a word may or may not show
    assert all(max(r["keyword_people"].values(), default=0) <= r["users"] for r in latest)

    def title() -> str:
        memory = global_memory.load(attacked / "global")
        print_clusters(cluster_rows(memory), memory, detailed=False)
        return next(line for line in capsys.readouterr().out.splitlines() if "global memory" in line)

    assert "records" in title() and "users" not in title()
    build("--epsilon", "inf")
    assert f"{len(global_memory.load(attacked / 'global').users)} users" in title()
    assert all(r["examples"] == [] for r in lines(run("global", "--json")[1]))


def test_thresholds_read_the_noisy_counts_and_examples_are_never_shown(attacked: Path) -> None:
    build("--epsilon", "3")
    memory = global_memory.load(attacked / "global")
    assert memory.items is not None and memory.release is not None
    snap = memory.items.snapshot(None, 3)
    users = np.maximum(memory.release.values("item_users", None), 0).round()
    assert np.array_equal(snap.public, users >= 3)
    assert np.isnan(snap.rating_mean[~snap.public]).all()
    assert all(c.examples == [] for c in memory.clusters)
    exact = global_memory.versions.load_exact(attacked / "global")
    assert any(c.examples for c in exact.clusters)  # kept for the operator's files, never in a view
    assert [c.size for c in memory.clusters] != [c.size for c in exact.clusters]  # noise, not the exact counts


def test_a_users_diversity_is_measured_against_the_released_cluster_sizes(fake_env: Path, tmp_path: Path) -> None:
    """Against exact cluster sizes a user's own diversity moved in its fourth digit when one record was added to
    another cluster (seen by a helper playing attacker through `profile`): it now reads the released sizes."""
    people = {f"cook{i}": ("cooking", 10) for i in range(4)} | {f"trav{i}": ("travel", 10) for i in range(4)}
    rows = make_records(people)
    for topic, n in (("cooking", 12), ("travel", 2)):  # one person with both, mostly one (a diversity below 1)
        rows += [r | {"user": "mix", "id": f"mix-{topic}-{i}"} for i, r in enumerate(make_records({"m": (topic, n)}))]
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0
    build("--epsilon", "3")
    memory = global_memory.load(fake_env / "global")
    assert memory.release is not None
    profile = memory.users["mix"]
    assert len(profile.distribution) > 1
    counts = np.zeros(len(memory.clusters))
    for cid, share in profile.distribution.items():
        counts[cid] = round(share * profile.history)
    released = np.maximum(memory.release.values("cluster_records", None), 0)
    exact = np.array([c.size for c in global_memory.versions.load_exact(fake_env / "global").clusters], float)
    assert not np.array_equal(released, exact)  # noise, so the two readings differ
    assert profile.diversity == round(global_memory.model.relative_diversity(counts, released), 4)


def test_epsilon_must_be_a_budget_that_leaves_figures_or_inf_by_name(attacked: Path) -> None:
    """0 and below protect by showing nothing; 1e-300 divided by zero (a traceback), 1e-9 wrote 10^11 records into
    the undated period that every later view kept; 1e400 overflowed to an exact build without a word, and 1e308
    was exact in all but name (two builds overflowed the ledger's sum)."""
    for bad in ("0", "-1", "lots", "nan", "1e-300", "1e-9", "0.005", "1e400", "1e308", "-inf", "1_0"):
        code, _, err = run("build-global", "--epsilon", bad)
        assert code == 2 and "--epsilon must be a number from 0.01 to 1e+06, or inf" in " ".join(err.split()), bad
    for bad in ("0", "nan", "inf", "4000"):
        code, _, err = run("build-global", "--period-days", bad)
        assert code == 2 and "--period-days" in err, (bad, err)
    assert build("--epsilon", "0.01")["privacy"]["epsilon"] == 0.01
    assert build("--epsilon", "+Infinity")["privacy"]["exact"] is True


def small_release(cluster_sums: list[int], cluster_rated: list[int], variance: float) -> release.Release:
    """A release of two clusters over one period, with a stated noise variance per cell."""

    def family(name: str, values: list[int]) -> release.Family:
        noisy = np.array(values, dtype=np.int64)[:, None]
        return release.Family(name, ["0", "1"], np.array([60], dtype=np.int64), noisy, noisy, np.array([variance]))

    families = {
        "cluster_rating_sum": family("cluster_rating_sum", cluster_sums),
        "cluster_rated": family("cluster_rated", cluster_rated),
        "item_rating_sum": family("item_rating_sum", cluster_sums),
        "item_ratings": family("item_ratings", cluster_rated),
    }
    return release.Release(3.0, 365, 1.0, 3, 2, 0.0, families, [], "", 1.0, 5.0)


def test_noisy_means_are_pulled_toward_the_population_by_their_noise() -> None:
    # cluster 0: 4 ratings averaging 1.5 (sum of rating - 3 is -6); cluster 1: 400 ratings averaging 4.5
    sums, rated = np.array([-6.0, 600.0]), np.array([4.0, 400.0])
    exact = release._shrunk_cluster_means(small_release([-6, 600], [4, 400], 0.0), sums, rated, None)
    noisy = release._shrunk_cluster_means(small_release([-6, 600], [4, 400], 500.0), sums, rated, None)
    assert exact == pytest.approx([1.5, 4.5], abs=0.01)  # no noise: the means as they are
    assert noisy[0] > 4.0 and noisy[1] == pytest.approx(4.5, abs=0.05)  # 4 noisy ratings say little
    rel = small_release([-6, 600], [4, 400], 500.0)
    spread = rel.mean_noise(np.array([1.5, 4.5]), rated, None)
    assert spread[0] > 100 * spread[1] > 0  # an item mean's noise falls with its ratings


def test_figures_without_time_are_read_whole(attacked: Path) -> None:
    """Community sizes and label counts have one column and no dated period: the latest view reads it as
    released, with no threshold (that is for the undated period of a time-indexed figure)."""
    build("--epsilon", "3")
    memory = global_memory.load(attacked / "global")
    assert memory.release is not None and memory.communities
    released = memory.release.families["communities"].noisy[:, 0]
    assert np.array_equal(memory.release.values("communities", None), released)
    assert [c.size for c in memory.communities] == np.maximum(released, 0).tolist()


def test_keywords_need_enough_people_counted_with_noise(fake_env: Path, tmp_path: Path) -> None:
    """A word one person repeats is never a keyword; the others are shown by their noisy count of people, in
    every view, and the JSON carries those noisy counts, not the exact ones."""
    solo = [
        {
            "user": "solo",
            "id": f"solo-{i}",
            "text": f"Watched {film(i)} at the cinema: zanzibarique, zanzibarique cinema",
            "item": film(i),
            "rating": 3.0,
            "timestamp": (PERIOD_A + 0.5) * W + i,
        }
        for i in range(20)
    ]
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", first_raters(20) + solo)))[0] == 0
    build("--epsilon", "3")
    exact = global_memory.versions.load_exact(fake_env / "global")
    assert all("zanzibarique" not in c.keyword_people for c in exact.clusters)
    assert all(n >= 3 for c in exact.clusters for n in c.keyword_people.values())
    memory = global_memory.load(fake_env / "global")
    assert memory.release is not None
    family = memory.release.families["cluster_keywords"]
    assert family.keys == [f"{c.id}\t{w}" for c in exact.clusters for w in c.keyword_people]
    assert np.any(family.noisy != family.exact)  # noise, not the exact counts
    (entry,) = [r for r in memory.release.ledger[0]["releases"] if r["statistic"] == "cluster_keywords"]
    assert entry["sensitivity"] == 2 and entry["epsilon"] == pytest.approx(3.0 / 24)
    noisy = dict(zip(family.keys, family.noisy[:, 0].tolist(), strict=True))
    for c, e in zip(memory.clusters, exact.clusters, strict=True):
        assert c.keywords == list(c.keyword_people)[:6] and set(c.keyword_people) <= set(e.keyword_people)
        passed = [w for w in e.keyword_people if noisy[f"{c.id}\t{w}"] >= 3]
        assert (passed if not c.private else []) == list(c.keyword_people)  # a private cluster names no word
        # a count of people is at most the cluster's (noisy) people
        assert all(n == min(noisy[f"{c.id}\t{w}"], c.users) for w, n in c.keyword_people.items())
    # not vacuous: clusters have candidates (exact), each shown or not by its stored noisy count above; whether any
    # passes is the draw's (scale 16 people; a cluster of 4-6 people can read as private)
    assert any(e.keyword_people for e in exact.clusters)
    code, out, _ = run("global", "--json")
    assert code == 0 and [r["keywords"] for r in lines(out)] == [c.keywords for c in memory.clusters]
    past = memory.as_of((PERIOD_A + 2) * W)  # keywords have no periods: a past view shows the latest ones
    # but a cluster private then (the cooks and travellers come later) shows none
    assert [p.keywords for p in past.clusters] == [
        [] if p.private else c.keywords for p, c in zip(past.clusters, memory.clusters, strict=True)
    ]


def test_doctor_says_a_release_from_before_keywords_shows_none(attacked: Path) -> None:
    build("--epsilon", "3")
    import orjson

    folder = attacked / "global" / (attacked / "global" / global_memory.POINTER).read_text().strip()
    settings = orjson.loads((folder / "ledger.json").read_bytes())
    settings["families"].remove("cluster_keywords")  # as a release saved before keywords were released
    (folder / "ledger.json").write_bytes(orjson.dumps(settings))
    memory = global_memory.load(attacked / "global")
    assert all(c.keywords == [] for c in memory.clusters)  # nothing unreleased is shown
    out = run("doctor", "--json")[1]
    assert "clusters show none until `logo build-global`" in out
    build("--epsilon", "3")
    assert "until `logo build-global`" not in run("doctor", "--json")[1]


def test_recent_reads_the_last_released_periods_that_span_the_window() -> None:
    """A recommendation's "recent" term under privacy: one period is too few people to rank by when periods
    are short, so it reads as many of the last released ones as span the window (at least one)."""
    periods = np.array([0, 1, 2, 3, release.UNDATED], dtype=np.int64)
    noisy = np.array([[1, 2, 4, 8, 100]], dtype=np.int64)
    users = release.Family("item_users", ["film"], periods, noisy, noisy, np.zeros(5))
    rel = release.Release(3.0, 30, 1.0, 3, 2, 0.0, {"item_users": users}, [], "", 1.0, 5.0)
    day = release.DAY
    assert rel.last_periods("item_users", None)[0] == 8  # no window: the newest dated period
    assert rel.last_periods("item_users", None, 60 * day)[0] == 12  # two 30-day periods
    assert rel.last_periods("item_users", None, 70 * day)[0] == 14  # a part of a period takes the period
    assert rel.last_periods("item_users", 3 * 30 * day, 180 * day)[0] == 7  # as of then: those ended by then
    assert rel.last_periods("item_users", 10 * day, 180 * day)[0] == 0  # none ended yet


def test_the_tree_benchmark_reads_a_real_release_the_way_views_do(attacked: Path) -> None:
    """bench/privacy_noise.py --release compares logo's views with OpenDP's tree on the same cells: its flat
    figure for the latest view of the clusters is the error of the views logo itself serves."""
    import subprocess
    import sys

    build("--epsilon", "3", "--period-days", "30")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "privacy_noise.py"), "--release", str(attacked / "global")],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for family in ("item_ratings", "item_rating_sum", "cluster_records"):
        assert f"{family}:" in done.stdout
    rel = global_memory.versions.load_release(attacked / "global")
    assert rel is not None
    sections = done.stdout.split("item_rating_sum:")[1].split("cluster_records:")
    # the rating sums are weighed (`denoise`): the bench must read them as views do, not as raw cells
    for name, text, tier in (("item_rating_sum", sections[0], "1-9:"), ("cluster_records", sections[1], "all:")):
        family = rel.families[name]
        dated = int((family.periods != release.UNDATED).sum())
        truth = np.cumsum(family.exact[:, :dated], axis=1)[:, -1]
        served = family.cumulative[:, dated - 1]
        if name == "item_rating_sum":
            ratings = rel.families["item_ratings"].exact[:, :dated].sum(axis=1)
            inside = (ratings >= 1) & (ratings <= 9)
            truth, served = truth[inside], served[inside]
            assert not np.allclose(family.cells, family.noisy)
        expected = float(np.sqrt(((served - truth) ** 2).mean()))
        row = next(line for line in text.splitlines() if line.strip().startswith(tier))
        assert f"latest flat {expected:8.2f}" in row


def test_an_item_that_leaves_the_table_and_comes_back_keeps_its_closed_cells(attacked: Path) -> None:
    """Found by a helper playing attacker: an item that left the item table (a `forget`, a higher --min-users)
    had its closed periods drawn afresh when it came back, a second noisy look at the same ratings that the
    ledger did not charge. Keys that leave are kept, unread, so that a build where they return continues them."""
    build("--epsilon", "3")
    old = global_memory.versions.load_release(attacked / "global")
    build("--epsilon", "3", "--min-users", "7")  # six people rated each film: every film leaves the table
    gone = global_memory.versions.load_release(attacked / "global")
    assert gone is not None and film(0) in gone.retired["item_users"].keys
    assert "item_users" not in gone.families  # no item has six people: the table is gone, its cells kept
    assert global_memory.load(attacked / "global").privacy()["epsilon_spent"] == pytest.approx(3.0 + 2 * 3.0 / 24)
    third = build("--epsilon", "3", "--min-users", "3")["privacy"]
    back = global_memory.versions.load_release(attacked / "global")
    assert old is not None and back is not None
    assert_closed_periods_kept(old, back)
    for name, family in old.families.items():  # the noise a view reads is still known (a reviewer found 0)
        closed = (family.periods != release.UNDATED) & ((family.periods + 1) * W <= old.built_at)
        cols = np.searchsorted(back.families[name].periods, family.periods[closed])
        assert np.array_equal(back.families[name].variance[cols], family.variance[closed]), name
    assert film(0) not in back.retired.get("item_users", release.Family("", [], *[np.zeros(0)] * 3)).keys
    # only community sizes and keywords are drawn again, every build: nothing else was released twice
    assert third["epsilon_spent"] == pytest.approx(3.0 + 4 * 3.0 / 24)
    for entry in third["ledger"][1:]:
        again = {r["statistic"] for r in entry["releases"] if r["released_old_records_again"]}
        assert again == set(release.REDRAWN)


def test_a_damaged_or_missing_release_is_never_read_as_exact_nor_started_afresh(attacked: Path) -> None:
    """Found by a helper playing attacker. A private version without its ledger.json was served as exact (every
    figure without noise, `doctor` ok); a truncated release.npz raised a traceback (exit 1) even for the exact
    build that is the way out; a damaged held release passed `doctor`; a store without CURRENT started a new
    ledger and drew every closed period again."""
    build("--epsilon", "3")
    home = attacked / "global"
    current = home / (home / "CURRENT").read_text().strip()
    old = global_memory.versions.load_release(home)
    assert old is not None

    (current / "ledger.json").rename(current / "ledger.json.away")
    for args in (("global", "--json"), ("build-global", "--seed", "0", "--epsilon", "3", "--update")):
        code, out, err = run(*args)
        assert code == 6 and "ledger.json is missing" in err and '"inf"' not in out, (args, err)
    code, out, _ = run("doctor", "--json")
    assert not next(c for c in lines(out) if c.get("check") == "population statistics are private")["ok"]
    (current / "ledger.json.away").rename(current / "ledger.json")

    data = (current / "release.npz").read_bytes()
    (current / "release.npz").write_bytes(data[:1000])  # truncated: a bad zip
    for args in (("global",), ("ask", "--user", "p9", "How would I rate Quiet Harbor 1 part1?")):
        code, _, err = run(*args)
        assert code == 6 and "unreadable" in err, (args, err)
    assert build("--epsilon", "inf", "--update")["privacy"]["exact"] is True  # the way out still works
    exact = home / (home / "CURRENT").read_text().strip()
    (exact / global_memory.versions.HELD / "ledger.json").write_bytes(b"{")  # the release an exact version holds
    assert run("global", "--ledger")[0] == 6
    code, out, _ = run("doctor", "--json")
    assert not next(c for c in lines(out) if c.get("check") == "population statistics are private")["ok"]

    shutil.rmtree(exact)
    (current / "release.npz").write_bytes(data)
    (home / "CURRENT").unlink()  # lost: the newest version stands for it
    again = build("--epsilon", "3")["privacy"]
    assert len(again["ledger"]) == 2  # continued from the newest readable version, not started afresh
    new = global_memory.versions.load_release(home)
    assert new is not None
    assert_closed_periods_kept(old, new)


def test_one_item_that_leaves_while_the_others_stay_keeps_its_cells(fake_env: Path, tmp_path: Path) -> None:
    """The case the attacker met: the item family stays, one key leaves (three people, then --min-users 4) and
    comes back. Old code drew its closed periods again with `released_old_records_again` false."""
    lone = [
        {"user": f"lone{u}", "id": f"lone{u}", "text": "Watched Lone Star Bay, a film", "item": "Lone Star Bay",
         "rating": 2.0 + u, "timestamp": (PERIOD_A + 0.5) * W + u}
        for u in range(3)
    ]
    rows = first_raters(10) + lone
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0
    build("--epsilon", "3")
    old = global_memory.versions.load_release(fake_env / "global")
    build("--epsilon", "3", "--min-users", "4")
    gone = global_memory.versions.load_release(fake_env / "global")
    assert gone is not None and "Lone Star Bay" in gone.retired["item_users"].keys
    assert "Lone Star Bay" not in gone.families["item_users"].keys and film(0) in gone.families["item_users"].keys
    build("--epsilon", "3", "--min-users", "3")
    back = global_memory.versions.load_release(fake_env / "global")
    assert old is not None and back is not None
    assert_closed_periods_kept(old, back)
    assert "item_users" not in back.retired


def test_a_store_without_current_is_read_from_its_newest_version_as_strictly(attacked: Path) -> None:
    """A reviewer found that without CURRENT every version counted as "older": a newest exact version's held
    release was passed over (the ledger lost its "inf"), and a damaged newest one was skipped in silence."""
    build("--epsilon", "3")
    build("--epsilon", "inf", "--update")
    home = attacked / "global"
    (home / "CURRENT").unlink()
    code, _, err = run("global")
    assert code == 6 and "CURRENT is missing" in err and "continues the newest" in err, err
    after = build("--epsilon", "3")["privacy"]
    assert [e["epsilon"] for e in after["ledger"]] == [3.0, "inf", 3.0] and after["epsilon_spent"] == "inf"

    newest = home / (home / "CURRENT").read_text().strip()
    (newest / "release.npz").write_bytes((newest / "release.npz").read_bytes()[:1000])
    (home / "CURRENT").unlink()
    code, _, err = run("build-global", "--seed", "0", "--clusters", "3", "--epsilon", "3")
    assert code == 6 and "unreadable" in err and str(newest.name) in err, err


def test_a_period_at_the_edge_stays_when_its_records_go_and_come_back(fake_env: Path, tmp_path: Path) -> None:
    """Found by a helper playing attacker: forgetting the store's oldest records shrank the span of periods, so
    when they were ingested again the closed cells of that edge were drawn afresh (four draws of one rating in
    three rounds), uncharged. The periods a release had stay in every later one."""
    early = [
        {"user": "early", "id": "e1", "text": f"Watched {film(0)}, a film", "item": film(0), "rating": 1.0,
         "timestamp": (PERIOD_A - 6.5) * W}
    ]
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", first_raters(10))))[0] == 0
    assert run("ingest", str(write_jsonl(tmp_path / "early.jsonl", early)))[0] == 0
    build("--epsilon", "3")
    old = global_memory.versions.load_release(fake_env / "global")
    assert old is not None and old.families["item_rating_sum"].periods[0] == PERIOD_A - 7
    for _ in range(2):
        assert run("forget", "--user", "early")[0] == 0
        assert run("ingest", str(tmp_path / "early.jsonl"))[0] == 0
        build("--epsilon", "3", "--update")
        new = global_memory.versions.load_release(fake_env / "global")
        assert new is not None
        assert_closed_periods_kept(old, new)


def test_an_exact_version_that_lost_its_held_release_stops_the_next_private_build(attacked: Path) -> None:
    """Found by a helper playing attacker: without `held/` an exact version was read as one from before held
    releases existed, and the next private build started a new ledger (spent 3, not inf)."""
    import shutil

    build("--epsilon", "3")
    build("--epsilon", "inf", "--update")
    home = attacked / "global"
    shutil.rmtree(home / (home / "CURRENT").read_text().strip() / global_memory.versions.HELD)
    code, _, err = run("build-global", "--seed", "0", "--epsilon", "3", "--update")
    assert code == 6 and "held" in err, err
    code, out, _ = run("doctor", "--json")
    assert not next(c for c in lines(out) if c.get("check") == "population statistics are private")["ok"]
    assert build("--epsilon", "inf", "--update")["privacy"]["exact"] is True  # the way out


def test_a_label_one_person_gave_is_never_shown(attacked: Path, tmp_path: Path) -> None:
    """Found by a helper playing attacker: a label of one record showed by name in 4 of 6 private builds. A
    label now needs min_users people (an exact count, like an item's) and a noisy count of min_users."""
    solo = [{"user": "solo", "id": "s1", "text": "Watched a film at the cinema", "label": "hiv-positive"}]
    shared = [
        {"user": f"early{u}", "id": f"l{u}", "text": "Watched a film at the cinema", "label": "cinephile"}
        for u in range(5)
    ]
    assert run("ingest", str(write_jsonl(tmp_path / "labels.jsonl", solo + shared)))[0] == 0
    for epsilon in ("inf", "3", "3"):
        build("--epsilon", epsilon)
        code, out, _ = run("global", "--json")
        assert code == 0 and "hiv-positive" not in out
    exact = global_memory.versions.load_exact(attacked / "global")
    assert any("cinephile" in c.labels for c in exact.clusters)


def test_a_release_whose_arrays_disagree_is_unreadable(attacked: Path) -> None:
    """Found by a helper playing attacker: a release.npz that opens but whose arrays disagree in shape gave an
    IndexError traceback in every command."""
    build("--epsilon", "3")
    home = attacked / "global"
    folder = home / (home / "CURRENT").read_text().strip()
    with np.load(folder / "release.npz") as stored:
        arrays = dict(stored)
    damaged = {
        "a noisy table cut short": {"item_users.noisy": arrays["item_users.noisy"][:, :1]},
        "a key both live and retired": {
            "item_users.retired.keys": arrays["item_users.keys"][:1],
            **{f"item_users.retired.{part}": arrays[f"item_users.{part}"][:1] for part in ("exact", "noisy")},
            "item_users.retired.periods": arrays["item_users.periods"],
            "item_users.retired.variance": arrays["item_users.variance"],
            "item_users.retired.drawn": np.ones(arrays["item_users.noisy"][:1].shape, bool),
            "item_users.retired.final": np.ones(arrays["item_users.noisy"][:1].shape, bool),
        },
    }
    gone = damaged["a key both live and retired"]
    damaged["a retired mask of the wrong shape"] = gone | {
        "item_users.retired.keys": np.array(["a film nobody has now"]),
        "item_users.retired.final": np.ones((1, 1), bool),
    }
    twice = {f"item_users.{part}": np.concatenate([arrays[f"item_users.{part}"][:1], arrays[f"item_users.{part}"]])
             for part in ("keys", "exact", "noisy")}
    damaged["a key twice"] = twice  # the reviewer of stop 30 saw duplicate keys and periods out of order pass
    assert len(arrays["item_users.periods"]) > 1
    damaged["periods out of order"] = {"item_users.periods": arrays["item_users.periods"][::-1]}
    for what, change in damaged.items():
        np.savez(folder / "release.npz", **(arrays | change))
        for args in (("global",), ("global", "--ledger"), ("build-global", "--seed", "0", "--epsilon", "3")):
            code, _, err = run(*args)
            assert code == 6 and "unreadable" in err, (what, args, err)


def test_a_build_from_a_snapshot_older_than_the_last_build_is_refused(attacked: Path, tmp_path: Path) -> None:
    """Found by a helper auditing the ledger: a build from an older snapshot took the records ingested since out
    of the open period, and the next build put them back, each a new draw the ledger did not charge (a record
    paid 9 where the ledger said 3.75); after a forget it brought the person back."""
    old, new = tmp_path / "old-snap", tmp_path / "new-snap"
    assert run("snapshot", str(old))[0] == 0
    build("--epsilon", "3", "--snapshot", str(old))
    build("--epsilon", "3", "--update", "--snapshot", str(old))  # its own snapshot again: the same records
    late = [{"user": "late", "id": "late-1", "text": "Watched a film at the cinema", "item": film(0), "rating": 5}]
    assert run("ingest", str(write_jsonl(tmp_path / "late.jsonl", late)))[0] == 0
    build("--epsilon", "3", "--update")  # from the store: the late record is in
    for exact in ("3", "inf"):
        code, _, err = run("build-global", "--seed", "0", "--update", "--epsilon", exact, "--snapshot", str(old))
        assert code == 2 and "before the records" in " ".join(err.split()) and "logo snapshot" in err, err
    assert run("snapshot", str(new))[0] == 0
    assert build("--epsilon", "3", "--update", "--snapshot", str(new))["privacy"]["epsilon"] == 3.0


def test_a_change_of_the_rating_range_releases_the_rating_sums_again_and_charges_them(
    fake_env: Path, tmp_path: Path
) -> None:
    """Found by a helper auditing the ledger: a range of 1-5 narrowed to 2-4 (the same centre) re-clipped every
    rating sum and changed its sensitivity, drawing closed periods again, and the ledger charged nothing."""
    rows = make_records({f"film{i}": ("films", 10) for i in range(6)})
    for row in rows:
        row["rating"] = 2.0 + row["rating"] % 3  # 2, 3 and 4 from everyone
    for u in range(4):  # four people also give a 5 and a 1: in the scale at min_users 3, out of it at 5
        rows += [{**rows[u * 10], "id": f"edge{u}-{r}", "rating": float(r)} for r in (1, 5)]
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0
    build("--epsilon", "3", "--min-users", "3")
    narrowed = build("--epsilon", "3", "--update", "--min-users", "5")["privacy"]["ledger"][-1]
    again = {e["statistic"] for e in narrowed["releases"] if e["released_old_records_again"]}
    assert {"item_rating_sum", "cluster_rating_sum"} <= again, again
    assert build("--epsilon", "3", "--update", "--min-users", "5")["privacy"]["ledger"][-1]["epsilon_old_records"] < 1


def test_one_record_moves_each_family_by_no_more_than_its_stated_sensitivity(
    fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a helper auditing the ledger: a person counts in the period of their first record of an item (or
    in a cluster), so one earlier record moves them: two cells change, where the people counts stated 1. Two
    stores one record apart, with the same clusters (--update): each family's exact cells differ by at most the
    sensitivity its draws use (L1)."""
    rows = make_records(TWO_TOPICS)
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0
    build("--epsilon", "3")
    twin = tmp_path / "twin"
    shutil.copytree(fake_env, twin)
    first = min((r for r in rows if r["user"] == "film0"), key=lambda r: r["timestamp"])
    earlier = {**first, "id": "earlier", "timestamp": first["timestamp"] - 400 * release.DAY}  # periods before
    monkeypatch.setenv("LOGO_HOME", str(twin))
    assert run("ingest", str(write_jsonl(tmp_path / "one.jsonl", [earlier])))[0] == 0
    cells = []
    for home in (fake_env, twin):
        monkeypatch.setenv("LOGO_HOME", str(home))
        build("--epsilon", "3", "--update")
        cells.append(release.exact_cells(global_memory.versions.load_exact(home / "global"), W))
    moved = {}
    for name in [*release.ITEM_FAMILIES, "cluster_users", "cluster_records", "cluster_rated", "cluster_rating_sum"]:
        a, b = cells[0][name], cells[1][name]
        keys, periods = sorted(set(a.keys) | set(b.keys)), np.union1d(a.periods, b.periods)
        moved[name] = int(np.abs(dense(a, keys, periods) - dense(b, keys, periods)).sum())
        assert moved[name] <= b.sensitivity, (name, moved[name], b.sensitivity)
    assert moved["item_users"] == 2 and moved["cluster_users"] == 2  # the person moved to the earlier period


def dense(cells: release.Cells, keys: list[str], periods: np.ndarray) -> np.ndarray:
    """The family's exact cells on these keys and periods (zero where it has none)."""
    out = np.zeros((len(keys), len(periods)), dtype=np.int64)
    rows = np.array([keys.index(k) for k in cells.keys], dtype=np.int64)[cells.rows]
    np.add.at(out, (rows, np.searchsorted(periods, cells.periods)), cells.values)
    return out


def test_records_that_leave_an_open_period_are_charged_again(fake_env: Path, tmp_path: Path) -> None:
    """A forget takes a person's records out of cells still open (here the undated period, which never closes):
    the next increment of those cells holds them with a minus sign, a second draw of them. The ledger charges it;
    a forget of records in closed periods only costs nothing."""
    rows = make_records(TWO_TOPICS)
    undated = [
        {k: v for k, v in r.items() if k != "timestamp"} | {"user": "nodate", "id": f"nd{i}"}
        for i, r in enumerate(rows[:12])
    ]
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows + undated)))[0] == 0
    build("--epsilon", "3")
    for user, charged in (("film4", False), ("nodate", True)):
        code, _, err = run("forget", "--user", user)
        assert code == 0, err
        last = global_memory.versions.load(fake_env / "global").release.ledger[-1]
        assert last["records_left_open_periods"] is charged, (user, last)
        assert (last["epsilon_old_records"] >= 3.0) is charged, (user, last["epsilon_old_records"])
    # a dated record of a person whose records were undated moves them out of the open undated cell of people:
    # a count that fell with nobody leaving, not charged (the reviewer saw it charged)
    fresh = {**undated[0], "user": "fresh", "id": "fresh-undated"}
    assert run("ingest", str(write_jsonl(tmp_path / "undated.jsonl", [fresh])))[0] == 0
    build("--epsilon", "3", "--update")
    before = global_memory.versions.load(fake_env / "global").release.families["cluster_users"]
    dated = {**fresh, "id": "fresh-dated", "timestamp": rows[0]["timestamp"]}  # earlier than undated
    assert run("ingest", str(write_jsonl(tmp_path / "dated.jsonl", [dated])))[0] == 0
    last = build("--epsilon", "3", "--update")["privacy"]["ledger"][-1]
    after = global_memory.versions.load(fake_env / "global").release.families["cluster_users"]
    assert after.exact[:, -1].sum() == before.exact[:, -1].sum() - 1  # fresh left the undated cell of people
    assert last["records_left_open_periods"] is False and last["epsilon_old_records"] < 3, last
    again = {e["statistic"] for e in last["releases"] if e["released_old_records_again"]}
    assert "cluster_users" in again and "item_ratings" not in again, again  # (a person moved twice: the reviewer)


def forget_killed_before_its_refresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """A private build of two topics and one person with undated records (a period that never closes), then a
    `logo forget` of that person killed after its delete, before its refresh. The rows and the undated ones."""
    from logo_cli import privacy
    from logo_cli.config import Settings
    from logo_cli.global_memory import build as building

    rows = make_records(TWO_TOPICS)
    undated = [
        {k: v for k, v in r.items() if k != "timestamp"} | {"user": "nodate", "id": f"nd{i}"}
        for i, r in enumerate(rows[:6])
    ]
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows + undated)))[0] == 0
    build("--epsilon", "3")

    def killed(*_args: object, **_kw: object) -> None:
        raise RuntimeError("killed")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(building, "build_global", killed)
        privacy.forget_user(Settings(), "nodate")
    return rows, undated


def refill_cells_of(undated: list, tmp_path: Path) -> None:
    """Another person's records in the same cells: no count falls, whoever left them."""
    masking = [{**r, "user": "other", "id": f"o{i}"} for i, r in enumerate(undated)]
    assert run("ingest", str(write_jsonl(tmp_path / "masking.jsonl", masking)))[0] == 0


def test_a_forget_killed_before_its_refresh_is_charged_by_the_next_build_even_if_an_ingest_masks_it(
    fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reviewer: a forget killed between its delete and its refresh left nothing to say records had left an
    open period, and an ingest into the same cells hid the fall of every count. A marker written before the
    delete makes the next build charge it. A forget of labelled records is charged too: label counts have no
    periods, so they never close."""
    rows, undated = forget_killed_before_its_refresh(tmp_path, monkeypatch)
    refill_cells_of(undated, tmp_path)
    last = build("--epsilon", "3", "--update")["privacy"]["ledger"][-1]
    assert last["records_left_open_periods"] is True and last["epsilon_old_records"] >= 3.0, last
    assert build("--epsilon", "3", "--update")["privacy"]["ledger"][-1]["records_left_open_periods"] is False

    labelled = [{**r, "user": "tagger", "id": f"t{i}", "label": "cinephile"} for i, r in enumerate(rows[:6])]
    assert run("ingest", str(write_jsonl(tmp_path / "labelled.jsonl", labelled)))[0] == 0  # closed periods
    build("--epsilon", "3", "--update")
    assert run("forget", "--user", "tagger")[0] == 0
    assert global_memory.versions.load(fake_env / "global").release.ledger[-1]["records_left_open_periods"] is True


def test_a_period_is_open_until_the_release_it_was_drawn_in_had_seen_it_end() -> None:
    rel = small_release([0, 0], [0, 0], 1.0)
    width = rel.period_days * release.DAY
    at_end = replace(rel, built_at=4 * width)  # periods 0..3 had ended by then, period 4 had not
    assert not release.in_open_periods(at_end, [3 * width, 3.5 * width, 4 * width - 1])
    assert release.in_open_periods(at_end, [4 * width]) and release.in_open_periods(at_end, [None])


def test_a_communitys_exact_shares_are_never_shown_under_privacy(attacked: Path) -> None:
    """Found by a helper playing attacker: a profile showed its community's top clusters with exact mean shares;
    in a community of two, twice the mean less one's own share gave the other member's, and their order says
    which clusters the other favours. Under privacy a profile names none."""
    for epsilon in ("inf", "3"):
        build("--epsilon", epsilon)
        placed = 0
        for user in ("early0", "early3", "cook0", "trav1"):
            code, out, err = run("profile", "--user", user, "--json")
            assert code == 0, err
            community = json.loads(out)["community"]
            if community is None:
                continue
            placed += 1
            shares = [t["share"] for t in community["top_clusters"]]
            if epsilon == "inf":
                assert shares and all(isinstance(s, float) for s in shares), community
            else:  # (the reviewer: at noise scale 16 a community of two reads 3 or more half the time)
                assert shares == [], community
        assert placed >= 2, epsilon


def test_a_ledger_from_before_the_people_counts_had_sensitivity_2_is_read_at_what_it_paid() -> None:
    """The reviewer: a ledger written with the people counts at sensitivity 1 still said 3, where a record could
    pay 3.75. It is read at what it paid: the people counts' epsilon twice, for new and re-released records."""
    shares = {"item_users": 0.5, "cluster_users": 0.25, "item_ratings": 0.5}

    def entry(new: float, old: float, again: bool, sensitivity: int) -> dict:
        releases = [
            {"statistic": name, "epsilon": eps, "sensitivity": sensitivity if name.endswith("users") else 1,
             "released_old_records_again": again}
            for name, eps in shares.items()
        ]
        return {"epsilon_new_records": new, "epsilon_old_records": old, "releases": releases}

    old_ledger = [entry(3.0, 0.0, False, 1), entry(3.0, 1.25, True, 1)]
    spent = small_release([0, 0], [0, 0], 1.0)
    assert replace(spent, ledger=old_ledger).spent() == pytest.approx(3.75 + 1.25 + 0.75)
    assert replace(spent, ledger=[entry(3.0, 0.0, False, 2), entry(3.0, 1.25, True, 2)]).spent() == 4.25


def test_a_snapshot_from_before_a_forget_is_refused_even_when_the_forget_left_nobody(
    fake_env: Path, tmp_path: Path
) -> None:
    """Found by a helper playing attacker: forgetting everyone deleted every version and the ledger with them,
    so a snapshot taken before was built without a word, bringing every forgotten person back under a fresh
    ledger that said 3. The time of the last forget is kept beside the versions, and the check reads it."""
    rows = make_records({"a": ("films", 6), "b": ("films", 6), "c": ("cooking", 6)})
    assert run("ingest", str(write_jsonl(tmp_path / "rows.jsonl", rows)))[0] == 0
    build("--epsilon", "3")
    assert run("snapshot", str(tmp_path / "snap"))[0] == 0
    for user in ("a", "b", "c"):
        assert run("forget", "--user", user)[0] == 0
    assert not global_memory.versions.version_folders(fake_env / "global")
    code, _, err = run("build-global", "--seed", "0", "--epsilon", "3", "--snapshot", str(tmp_path / "snap"))
    assert code == 2 and "logo forget" in " ".join(err.split()), err


def test_an_exact_build_after_a_killed_forget_leaves_the_charge_to_the_next_private_build(
    fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a helper playing attacker: a forget killed before its refresh, then an exact build, cleared the
    marker; the exact build read the store after the delete, so it never showed those records, and the next
    private build (continuing the release before it) did not charge their leaving."""
    _, undated = forget_killed_before_its_refresh(tmp_path, monkeypatch)
    build("--epsilon", "inf", "--update")
    refill_cells_of(undated, tmp_path)
    last = build("--epsilon", "3", "--update")["privacy"]["ledger"][-1]
    assert last["records_left_open_periods"] is True and last["epsilon_old_records"] >= 3.0, last


def test_the_shares_benchmark_builds_with_the_split_it_names(attacked: Path) -> None:
    """bench/privacy_shares.py builds through `logo build-global` with another split of epsilon: the ledger
    shows that split, and it still adds up to the budget."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "privacy_shares.py"), "people", "--", "--epsilon", "3", "--seed", "0",
         "--clusters", "3"],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)["privacy"]["ledger"][-1]
    spent = {r["statistic"]: r["epsilon"] for r in entry["releases"]}
    assert spent["item_users"] == pytest.approx(1.0)  # 1/3 of 3, against 1/6 in release.SHARES
    assert spent["cluster_records"] == pytest.approx(3 / 48)
    assert sum(spent.values()) == pytest.approx(3.0)
    assert release.SHARES["item_users"] == pytest.approx(1 / 6)  # the product's split is untouched
