"""How the calibrated fusion's per-query BM25 weight was chosen: the rule and its numbers.

    .venv/bin/python benchmarks/fusion_rule.py

A calibrated fusion scores a candidate 1 × its dense score in deviations above random documents
plus w × its BM25 score as a share of the query's ceiling (densekit.retrieve.fusion). w is set
per query from how far BM25's top candidate stands above its tenth (the gap, in shares of the
ceiling): `low` up to a gap of `start`, rising linearly to `high` at `start + ramp`. This script
searches low x high x start x ramp (and fixed weights) on the query sets of
benchmarks/fusion.py, with SciFact train in place of SciFact test (which stays held out), and
chooses the rule with the best worst-case nDCG@10 (R@2 on LIMIT-small) against the better of
dense and BM25 alone on each set (rounded to 0.001), then the best mean. It also chooses again
with each set left out, and scores the rule on the set left out.

Candidates come from each collection's own retrievers (depth 100, the lists a search fuses);
fusion and the measures are computed here in numpy over those lists (linear gains, as
trec_eval's nDCG), so the grid is quick; benchmarks/fusion.py measures the shipped rule with
`densekit eval`'s metrics. Writes benchmarks/results/fusion_rule.json; the chosen numbers are
the defaults of densekit.retrieve.fusion.StandoutWeight.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass

import numpy as np
from _common import build_or_open, dataset, environment, write_json
from fusion import JUDGED, QUERY_SETS, own_collection, paraphrase_set, query_set, typo_queries

import densekit
from densekit.evaluate.beir import load_beir
from densekit.retrieve.fusion import BM25_WEIGHT, DEFAULT_FUSION, calibrated_scores
from densekit.retrieve.pipeline import CandidateStage, Pipeline

DEPTH = 100
LOWS = (4.0, 6.0, 8.0, 10.0, 12.0)
HIGHS = (16.0, 24.0, 32.0, 48.0)
STARTS = (0.1, 0.15, 0.2, 0.25, 0.3)
RAMPS = (0.05, 0.1, 0.2, 0.3)
FIXED = (8.0, 12.0, 16.0, 20.0, 24.0)


@dataclass(frozen=True)
class Rule:
    low: float
    high: float
    start: float
    ramp: float

    def weights(self, gaps: np.ndarray) -> np.ndarray:
        rise = np.clip((gaps - self.start) / self.ramp, 0.0, 1.0)
        return self.low + (self.high - self.low) * rise


class QuerySet:
    """One set's candidates: per query, the union of the dense and BM25 top 100, with each
    candidate's calibrated dense and BM25 scores (a list's lowest where it did not give it)."""

    def __init__(self, data, collection: densekit.Collection, measure: str) -> None:
        stages = (CandidateStage("dense", DEPTH), CandidateStage("bm25", DEPTH))
        searcher = collection.searcher(pipeline=Pipeline(stages, DEFAULT_FUSION, name="lists"))
        qids = [q for q in data.qrels if q in data.queries]
        lists = searcher.runner.candidates([data.queries[q] for q in qids], 10)
        width = max(len(set(d.rows.tolist()) | set(b.rows.tolist())) for d, b in lists)
        self.dense = np.zeros((len(qids), width))
        self.bm25 = np.zeros((len(qids), width))
        self.valid = np.zeros((len(qids), width), bool)
        self.in_bm25 = np.zeros((len(qids), width), bool)
        self.gain = np.zeros((len(qids), width))
        self.gaps = np.zeros(len(qids))
        self.ideal = np.zeros(len(qids))
        self.relevant = np.zeros(len(qids))
        ids = collection.stored.row_ids
        for i, (qid, (d, b)) in enumerate(zip(qids, lists, strict=True)):
            dc, bc = calibrated_scores(d), calibrated_scores(b)
            rows = list(dict.fromkeys([*d.rows.tolist(), *b.rows.tolist()]))
            dense_of = dict(zip(d.rows.tolist(), dc.tolist(), strict=True))
            bm25_of = dict(zip(b.rows.tolist(), bc.tolist(), strict=True))
            dense_floor = min(dense_of.values(), default=0.0)
            bm25_floor = min(bm25_of.values(), default=0.0)
            n = len(rows)
            self.valid[i, :n] = True
            self.dense[i, :n] = [dense_of.get(r, dense_floor) for r in rows]
            self.bm25[i, :n] = [bm25_of.get(r, bm25_floor) for r in rows]
            self.in_bm25[i, :n] = [r in bm25_of for r in rows]
            judged = data.qrels[qid]
            self.gain[i, :n] = [max(0, judged.get(ids[r], 0)) for r in rows]
            tenth = float(bc[9]) if len(bc) >= 10 else 0.0
            self.gaps[i] = float(bc[0]) - tenth if len(bc) else 0.0
            best = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
            self.ideal[i] = sum(g / np.log2(rank + 2) for rank, g in enumerate(best))
            self.relevant[i] = sum(1 for g in judged.values() if g > 0)
        self.recall_at = 2 if measure == "R@2" else None
        self.alone = {
            "dense": self.score_fused(self.dense),
            "bm25": self.score_fused(np.where(self.in_bm25, self.bm25, -np.inf)),
        }
        self.better = max(self.alone.values())

    def score_fused(self, fused: np.ndarray) -> float:
        fused = np.where(self.valid, fused, -np.inf)
        cut = self.recall_at or 10
        top = np.argsort(-fused, axis=1, kind="stable")[:, :cut]
        gains = np.take_along_axis(self.gain, top, 1)
        if self.recall_at:
            return float(((gains > 0).sum(1) / np.maximum(self.relevant, 1)).mean())
        dcg = (gains / np.log2(np.arange(2, cut + 2))).sum(1)
        return float(np.where(self.ideal > 0, dcg / np.maximum(self.ideal, 1e-12), 0.0).mean())

    def regret(self, weights: np.ndarray) -> float:
        """The fusion's score minus the better list alone's."""
        fused = self.dense + weights[:, None] * self.bm25
        return self.score_fused(fused) - self.better


def query_sets() -> dict[str, QuerySet]:
    sets = {}
    for name, (folder, corpus) in JUDGED.items():
        split = "train" if name == "scifact" else "test"
        label = f"{name}-train" if name == "scifact" else name
        measure = "R@2" if name == "limit-small" else "nDCG@10"
        collection = build_or_open(corpus, sparse="splade-tiny")
        sets[label] = QuerySet(load_beir(dataset(folder), split), collection, measure)
    for name, (corpus, task) in QUERY_SETS.items():
        collection = build_or_open(corpus, sparse="splade-tiny")
        sets[name] = QuerySet(load_beir(query_set(corpus, task), "test"), collection, "nDCG@10")
    scifact = build_or_open("scifact", sparse="splade-tiny")
    sets["scifact-typos"] = QuerySet(load_beir(typo_queries(), "test"), scifact, "nDCG@10")
    paraphrases = paraphrase_set()
    collection = own_collection(paraphrases, "stsb-paraphrase")
    sets["stsb-paraphrase"] = QuerySet(load_beir(paraphrases, "test"), collection, "nDCG@10")
    return sets


def choose(table: dict[str, dict[str, float]], names: list[str]) -> str:
    """The rule with the best worst-case regret over ``names`` (to 0.001), then the best mean."""
    return max(
        table,
        key=lambda rule: (
            round(min(table[rule][n] for n in names), 3),
            float(np.mean([table[rule][n] for n in names])),
        ),
    )


def main() -> None:
    started = time.perf_counter()
    sets = query_sets()
    rules = {
        f"low {low:g} high {high:g} start {start:g} ramp {ramp:g}": Rule(low, high, start, ramp)
        for low, high, start, ramp in itertools.product(LOWS, HIGHS, STARTS, RAMPS)
    }
    rules |= {f"fixed {w:g}": Rule(w, w, 0.0, 1.0) for w in FIXED}
    table = {
        label: {name: round(s.regret(rule.weights(s.gaps)), 4) for name, s in sets.items()}
        for label, rule in rules.items()
    }
    names = list(sets)
    chosen = choose(table, names)
    held_out = {}
    for name in names:
        rule = choose(table, [n for n in names if n != name])
        held_out[name] = {"rule": asdict(rules[rule]), "regret": table[rule][name]}
    shipped = Rule(BM25_WEIGHT.low, BM25_WEIGHT.high, BM25_WEIGHT.start, BM25_WEIGHT.ramp)
    result = {
        "environment": environment(),
        "sets": {
            name: {"queries": len(s.gaps), **{k: round(v, 4) for k, v in s.alone.items()}}
            for name, s in sets.items()
        },
        "chosen": {"rule": asdict(rules[chosen]), "regret": table[chosen]},
        "shipped": asdict(shipped),
        "shipped_is_chosen": shipped == rules[chosen],
        "fixed": {label: table[label] for label in table if label.startswith("fixed")},
        "leave_one_set_out": held_out,
        "rules_scored": len(rules),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print("chosen", chosen, table[chosen])
    print("worst held-out regret", min(v["regret"] for v in held_out.values()))
    print("wrote", write_json("fusion_rule", result))


if __name__ == "__main__":
    main()
