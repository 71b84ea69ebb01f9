"""The `clogs` command line (also `python streaming_process.py ...`): one entry for every job.

The settings are built once here, from the CLOGS_* variables and the command's flags
(``with_flags``), and handed to the command.  Heavy imports (torch, faust) happen inside each
command so that `--help` is instant.
"""
import argparse
import json
import sys

from app.settings import Settings, SettingsError
from app.streaming_cli import add_streaming_commands

FLAG_SETTINGS = ("broker", "topic", "app_id", "index", "es_url", "checkpoint_dir", "factor", "threshold", "web_port",
                 "partitions", "warmup_lines", "data_dir", "learning_lines")


def with_flags(settings, args):
    """The settings with the command's flags applied (a flag not given keeps the setting)."""
    flags = {name: getattr(args, name, None) for name in FLAG_SETTINGS}
    if getattr(args, "anomalies_only", False):
        flags["anomalies_only"] = True
    if getattr(args, "no_learning", False):
        flags["learning"] = False
    return settings.replace(**flags)


def cmd_train(args, settings):
    from model.data import load_lines
    from model.normalise import Normaliser
    from model.online import calibration_threshold
    from model.train import train

    try:
        items = load_lines(args.input, labels=args.labels, normal_only=True)
    except FileNotFoundError as exc:
        sys.exit(f"clogs train: {exc}")
    normaliser = Normaliser.from_file(args.rules) if args.rules else None
    print(f"training on {len(items)} lines from {len(args.input)} input(s) -> {args.out}")
    try:
        scorer = train([line for line, _ in items], out_dir=args.out, normaliser=normaliser, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, max_len=args.max_len, seed=args.seed,
                       val_fraction=args.val_fraction, device=args.device, hidden_dim=args.hidden_dim,
                       embed_dim=args.embed_dim, latent_dim=args.latent_dim, max_vocab=args.max_vocab,
                       output_classes=args.output_classes)
    except (ValueError, RuntimeError) as exc:
        sys.exit(f"clogs train: {exc}")
    cal = scorer.calibration
    print(f"vocabulary {len(scorer.vocab)} tokens; calibration mean {cal['mean']:.3f} std {cal['std']:.3f} "
          f"(threshold at factor {settings.factor}: {calibration_threshold(cal, settings.factor):.3f})")
    print(f"wrote {args.out}/model.pth, vocab_full.json, config.json")


def cmd_evaluate(args, settings):
    from model import CheckpointError, Scorer
    from model.evaluate import evaluate, evaluate_online
    from model.online import Policy

    from model.multiline import assembler_of

    try:
        assembler = assembler_of(settings)   # CLOGS_MULTILINE_*: events as the worker assembles them
        scorer = Scorer.from_checkpoint(settings.checkpoint_dir, device=args.device,
                                        precision=settings.scorer_precision)
        if args.online:
            policy = Policy.of(settings, learning=True)
            result, top = evaluate_online(scorer, args.input, args.out_dir, policy, top=args.top, labels=args.labels,
                                          retrain_every=args.retrain_every, retrain_epochs=settings.retrain_epochs,
                                          retrain_min_samples=settings.retrain_min_samples, assembler=assembler)
        else:
            result, top = evaluate(scorer, args.input, args.out_dir, factor=settings.factor, top=args.top,
                                   labels=args.labels, assembler=assembler)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        sys.exit(f"clogs evaluate: {exc}")
    if args.online:
        modes = ", ".join(f"{k} {v}" for k, v in result["modes"].items())
        print(f"\n{result['n']} lines judged online (then learned), {result['n_anomalies']} anomalies; modes: {modes}; "
              f"{result['patterns']} patterns, {len(result['retrains'])} retrains")
    else:
        print(f"\n{result['n']} lines, threshold {result['threshold']:.3f} (mean {result['mean']:.3f} + "
              f"{settings.factor} x std {result['std']:.3f}), {result['n_anomalies']} anomalies")
    if "roc_auc" in result:
        print(f"precision {result['precision']:.3f} recall {result['recall']:.3f} F1 {result['f1']:.3f} | "
              f"ROC-AUC {result['roc_auc']:.3f} PR-AUC {result['pr_auc']:.3f} best F1 {result['best_f1']:.3f}")
    print(f"\ntop {len(top)} lines by score:")
    for row, flag in top:
        r = row["result"]
        mark = "ANOMALY" if flag else "       "
        print(f"  {mark} {r.score:7.3f}  line {row['line_no']:>6}  [{', '.join(r.top_tokens)}]  {row['line'][:100]}")
    print(f"\nwrote {args.out_dir}/test_anomaly_results.csv, anomalies_only.csv, metrics.json, score_hist.png")


def cmd_score(args, settings):
    from model import CheckpointError, Scorer

    try:
        scorer = Scorer.from_checkpoint(settings.checkpoint_dir, precision=settings.scorer_precision)
    except CheckpointError as exc:
        sys.exit(f"clogs score: {exc}")
    from dataclasses import replace

    from model.events import read_events
    from model.multiline import assembler_of

    try:
        assembler = assembler_of(settings)
    except (FileNotFoundError, ValueError) as exc:
        sys.exit(f"clogs score: {exc}")
    given = args.line or (line.rstrip("\n") for line in sys.stdin)
    events = list(read_events(((n, line, None) for n, line in enumerate(given, 1)), assembler,
                              source=args.source))   # as the worker assembles them
    for event, r in zip(events, scorer.score_batch([e["text"] for e in events]) if events else ()):
        extras = event["extras"]
        r = replace(r, pattern=extras.get("pattern", r.pattern))
        out = {"score": round(r.score, 4), "tokens": r.tokens, "unknown": r.unknown, "top_tokens": r.top_tokens,
               "line_no": event["line_no"], "lines": event["lines"], "line": extras.get("original", event["line"])}
        if event["line"] != out["line"]:
            out["message"] = event["line"]
        out.update({k: extras[k] for k in ("logger", "error", "error_type", "call_site") if k in extras})
        if "pattern" in extras:
            out["pattern"] = extras["pattern"]
        print(json.dumps(out))


def add_model_commands(sub, settings):
    p = sub.add_parser("train", help="train the LSTM autoencoder on log files or folders")
    p.add_argument("--input", nargs="+", required=True, help="files or folders (recursive)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-len", type=int, default=64, help="tokens per line (longer lines are truncated)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--labels", choices=["none", "loghub"], default="none",
                   help="loghub: first field is a label ('-' = normal); only normal lines are trained on")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--embed-dim", type=int, default=32)
    p.add_argument("--hidden-dim", type=int, default=64)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--max-vocab", type=int, default=5000)
    p.add_argument("--output-classes", type=int, default=0,
                   help="0: one softmax over the vocabulary; C > 0: a class-factored output of C classes "
                        "(about the square root of the vocabulary size): a fraction of the arithmetic at scoring time")
    p.add_argument("--rules", help="JSON file of normaliser rules to add or override")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a file offline: report, CSVs, metrics.json, histogram")
    p.add_argument("--input", required=True)
    p.add_argument("--checkpoint-dir", default=None, help=f"CLOGS_CHECKPOINT_DIR, default {settings.checkpoint_dir}")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--factor", type=float, default=None, help=f"CLOGS_FACTOR, default {settings.factor}")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--labels", choices=["none", "loghub"], default="none")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    p.add_argument("--online", action="store_true", help="prequential: judge each line, then learn from it, "
                   "in file order, with the worker's own learning (CLOGS_* learning settings)")
    p.add_argument("--retrain-every", type=int, default=0, help="with --online: also retrain the model on the "
                   "reservoir after every N lines (the slow path, synchronously)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="score lines given as arguments or on stdin, assembled into events as the "
                                     "worker does (JSON per event)")
    p.add_argument("line", nargs="*")
    p.add_argument("--source", default="-", help="the source the lines come from (its CLOGS_MULTILINE_RULES apply)")
    p.add_argument("--checkpoint-dir", default=None, help=f"CLOGS_CHECKPOINT_DIR, default {settings.checkpoint_dir}")
    p.set_defaults(func=cmd_score)


def build_parser(settings):
    parser = argparse.ArgumentParser(prog="clogs", description="clogs: streaming log-anomaly detection")
    sub = parser.add_subparsers(dest="command", required=True)
    add_model_commands(sub, settings)
    add_streaming_commands(sub, settings)
    return parser


def main(argv=None):
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"clogs: {exc}")
    args = build_parser(settings).parse_args(argv)
    try:
        settings = with_flags(settings, args)
    except SettingsError as exc:
        sys.exit(f"clogs {args.command}: {exc}")
    return args.func(args, settings) or 0


if __name__ == "__main__":
    sys.exit(main())
