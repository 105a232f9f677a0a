"""`densekit train-llm`: LoRA fine-tuning of a decoder LLM encoder, optionally with GRL."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int, rank_window
from densekit.cli.train_command import report_result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-llm",
        help="LoRA-tune a decoder LLM as an encoder (contrastive, + GRL / DPO by weight)",
        description="Fine-tune an llm: encoder with LoRA on a dataset's training judgements: "
        "InfoNCE over in-batch and mined hard negatives, plus, with --grl-weight, the KL "
        "alignment of representation scores to the same LLM's generation scores (ULLME's GRL), "
        "and, with --dpo-weight, a DPO-style term that trains the generation side as well.",
    )
    parser.add_argument("dataset", help="BEIR-layout dataset directory")
    parser.add_argument("--out", required=True, help="folder for the trained model")
    parser.add_argument("--base", default="llm:smollm2", help="llm:NAME[#options] (smollm2)")
    parser.add_argument("--split", default="train", help="qrels split (default: %(default)s)")
    parser.add_argument(
        "--collection", help="a collection of the dataset's corpus, to mine hard negatives from"
    )
    parser.add_argument("--negatives", type=int, default=3, help="hard negatives per row (3)")
    parser.add_argument(
        "--ranks", type=rank_window, default=(10, 60), help="mining rank window FIRST:LAST (10:60)"
    )
    parser.add_argument(
        "--grl-weight", type=float, default=0.0, help="weight of the GRL term (0: contrastive)"
    )
    parser.add_argument(
        "--grl-temperature",
        type=float,
        default=1.0,
        help="τ_gen: GRL's generation scores are divided by it (1; lower is a sharper target)",
    )
    parser.add_argument(
        "--dpo-weight",
        type=float,
        default=0.0,
        help="weight of the DPO-style generative term (0: none)",
    )
    parser.add_argument("--dpo-beta", type=float, default=0.1, help="DPO's β (0.1)")
    parser.add_argument("--lora-rank", type=positive_int, default=8)
    parser.add_argument("--lora-alpha", type=positive_int, default=16)
    parser.add_argument(
        "--targets", default="q_proj,k_proj,v_proj,o_proj", help="modules LoRA adapts"
    )
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--batch", type=positive_int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--max-steps", type=positive_int, help="stop after this many steps")
    parser.add_argument(
        "--projection", type=positive_int, help="train a linear head to this many dimensions"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--adapter-only", action="store_true", help="save the LoRA weights, not a merged model"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a model at --out")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from densekit.train.llm import LlmConfig, train_llm
    from densekit.train.llm_trainer import LlmTraining, LoraSettings
    from densekit.train.mining import MiningConfig

    training = LlmTraining(
        epochs=args.epochs,
        batch=args.batch,
        learning_rate=args.lr,
        temperature=args.temperature,
        grl_weight=args.grl_weight,
        grl_temperature=args.grl_temperature,
        dpo_weight=args.dpo_weight,
        dpo_beta=args.dpo_beta,
        max_steps=args.max_steps,
        projection=args.projection,
        seed=args.seed,
        lora=LoraSettings(
            rank=args.lora_rank,
            alpha=args.lora_alpha,
            targets=tuple(t.strip() for t in args.targets.split(",") if t.strip()),
        ),
    )
    config = LlmConfig(
        args.dataset,
        args.out,
        base=args.base,
        split=args.split,
        collection=args.collection,
        mining=MiningConfig(negatives=args.negatives, ranks=args.ranks),
        training=training,
        merged=not args.adapter_only,
        overwrite=args.overwrite,
    )
    return report_result(train_llm(config), as_json=args.json)
