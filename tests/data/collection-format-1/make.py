"""Build a small collection with the densekit on PYTHONPATH and record its searches."""

import json
import sys
from pathlib import Path

import densekit
from densekit.store import BuildOptions

out = Path(sys.argv[1])
corpus = out.parent / "corpus.jsonl"
docs = [
    ("d1", "Vitamin D", "Vitamin D deficiency is linked to a higher risk of several cancers."),
    ("d2", "Sunlight", "Skin makes vitamin D from sunlight; winter months lower its levels."),
    ("d3", "Statins", "Statins lower LDL cholesterol and the risk of heart attacks."),
    ("d4", "Exercise", "Regular aerobic exercise improves heart health and blood pressure."),
    ("d5", "Sleep", "Short sleep is associated with obesity and insulin resistance."),
    ("d6", "Coffee", "Moderate coffee drinking is not linked to heart disease."),
    ("d7", "Smoking", "Smoking causes lung cancer and raises the risk of heart disease."),
    ("d8", "Diet", "A diet rich in fibre lowers cholesterol and blood sugar."),
    ("d9", "Antibiotics", "Antibiotic overuse breeds resistant bacteria in hospitals."),
    ("d10", "Vaccines", "Measles vaccination prevents outbreaks in schools."),
    ("d11", "Aspirin", "Low-dose aspirin reduces the risk of a second heart attack."),
    ("d12", "Calcium", "Calcium and vitamin D supplements and bone fractures in the elderly."),
]
corpus.write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs))
options = BuildOptions(model="static", retriever="hybrid", progress=False, cache_dir=None)
densekit.build_collection(corpus, out, options, overwrite=True).close()
queries = [
    "vitamin D and cancer",
    "heart attack risk",
    "cholesterol",
    "bacteria resistant to antibiotics",
]
results = {}
with densekit.open_collection(out) as collection:
    for retriever in ("dense", "bm25", "hybrid"):
        hits = collection.search_many(queries, 5, retriever=retriever)
        results[retriever] = [[[h.id, h.score] for h in q] for q in hits]
(out.parent / "expected.json").write_text(
    json.dumps({"queries": queries, "results": results}, indent=1)
)
print("built", out, densekit.__file__)
