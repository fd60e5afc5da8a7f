"""Command line: `python -m unlearn_core {unlearn,evaluate,audit,compare,train,table,bench} ...`.

argparse lives here only; each command turns its arguments into the library's dataclasses at
once. User mistakes print one line (`error: ...`) and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

from unlearn_core.compute import distributed
from unlearn_core.compute.precision import PRECISIONS
from unlearn_core.errors import RunFailed, UserInputError


class LineProgress:
    """Progress for logs (stderr not a terminal): one line every `every` percent, not hundreds of
    carriage-return updates. Has the part of tqdm's interface the commands use."""

    def __init__(self, total: int, desc: str, every: int = 5, file=None):
        self.total, self.desc, self.every, self.file = total, desc, every, file or sys.stderr
        self.n, self._postfix, self._printed = 0, "", -1
        self._start = time.perf_counter()

    def set_postfix(self, **values) -> None:
        self._postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        percent = 100 * self.n // max(1, self.total)
        if percent // self.every > self._printed // self.every or self.n == self.total:
            self._printed = percent
            elapsed = time.perf_counter() - self._start
            print(f"{self.desc}: {percent}% ({self.n}/{self.total}, {elapsed:.0f} s) {self._postfix}".rstrip(), file=self.file, flush=True)

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, quiet: bool = False):
    """A tqdm bar on a terminal; a line every 5% when stderr goes to a file or a pipe; nothing
    when `quiet` (the other processes of a multi-process run)."""
    if quiet:
        return LineProgress(total, desc, file=io.StringIO())
    if not sys.stderr.isatty():
        return LineProgress(total, desc)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)


# ------------------------------------------------------------------------------------------ train


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from unlearn_core.compute.device import resolve_device
    from unlearn_core.models.checkpoints import metadata
    from unlearn_core.models.train import TrainConfig

    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    state = args.out / TRAIN_STATE
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        noise_share=args.noise_share,
        state=str(state),
        resume=args.resume,
    )
    if state.exists() and not args.resume:
        raise UserInputError(f"{state} holds an interrupted training: add --resume to go on from it, or remove it to start again")
    command = "python -m unlearn_core " + shlex.join([a for a in sys.argv[1:] if a != "--resume"])
    bar = _progress(cfg.steps, f"train {args.model}")

    def on_progress(done: int, total: int, loss: float) -> None:
        bar.total = total
        bar.update(done - bar.n)
        if done % 20 == 0:
            bar.set_postfix(loss=f"{loss:.4f}")

    if args.model == "probe":
        if args.size is not None or args.channels is not None:
            raise UserInputError("the probe reads 32x32 grayscale images; --size and --channels are for the I2I models")
        if args.noise_share or args.init is not None:
            raise UserInputError("--noise-share and --init are for the I2I models (the probe learns noise as 'none' already)")
        log = _train_probe(args, cfg, device, lambda s, v: on_progress(s + 1, cfg.steps, v), command)
    else:
        from unlearn_core.models.train import train_family

        given = {
            "tokenizer_steps": args.tokenizer_steps,
            "image_size": args.size,
            "channels": args.channels,
            "tokenizer": args.tokenizer,
            "init": args.init,
        }
        options = {k: v for k, v in given.items() if v is not None}
        model, log = train_family(args.model, args.data, args.preset, cfg, device, on_progress, **options)
        training = {"command": command, "data": args.data, "preset": args.preset, **_settings(cfg), **log}
        model.save(args.out, metadata(base_model=None, training=training))
    bar.close()
    for stage, found in _plateaus(log):
        reached = "reached" if found["reached"] else "NOT reached: train longer"
        print(
            f"{stage}held-out loss fell {100 * found['last_fifth_gain']:.2f}% over the last fifth of the steps: plateau {reached}",
            file=sys.stderr,
        )
    print(json.dumps(log))
    return 0


TRAIN_STATE = "training-state.pt"  # what `train` keeps in --out while it runs (models.train.fit)


def _settings(cfg) -> dict:
    """A TrainConfig as the model's metadata records it: the settings, not where its state lived."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("state", "resume", "save_every")}


def _plateaus(log: dict, stage: str = ""):
    """(stage label, plateau) for every stage of a training log that recorded one."""
    if isinstance(log.get("plateau"), dict) and log["plateau"]["last_fifth_gain"] is not None:
        yield stage, log["plateau"]
    for name, part in log.items():
        if isinstance(part, dict) and name != "plateau":
            yield from _plateaus(part, f"{name}: ")


def _train_probe(args: argparse.Namespace, cfg, device, on_step, command: str) -> dict:
    from unlearn_core.data.sets import load_image_set
    from unlearn_core.measure.probe import Probe
    from unlearn_core.measure.probe_train import train_probe
    from unlearn_core.models.checkpoints import metadata

    data = load_image_set(args.data, 32, 1)
    if data.train_labels is None:
        raise UserInputError("the probe needs labelled data: use a built-in set")
    probe = Probe()
    log = train_probe(probe, data.train, data.train_labels, cfg, device, on_step, held_out=(data.test, data.test_labels))
    log.update(_probe_accuracy(probe.cpu(), data.test, data.test_labels))
    probe.save(args.out, metadata(training={"command": command, "data": args.data, **_settings(cfg), **log}))
    return log


def _probe_accuracy(probe, images, labels) -> dict:
    """Test accuracy on clean images, on images with regions blurred/noised, and the share of
    images with a large region erased that it calls "none" (all seeded)."""
    import torch

    from unlearn_core.measure.probe_train import corrupt, erase

    def acc(x, y) -> float:
        return round((probe.predict(x) == y).float().mean().item(), 4)

    g = torch.Generator().manual_seed(123)
    return {
        "test_acc_clean": acc(images, labels),
        "test_acc_corrupted": acc(corrupt(images, g), labels),
        "test_none_on_erased": acc(erase(images, g), torch.full_like(labels, probe.none_index)),
    }


# ------------------------------------------------------------------------------------ unlearn


def spec_from_args(args: argparse.Namespace):
    """The `RunSpec` of an `unlearn` command line (what is not given stays None: the family's)."""
    from unlearn_core.run.engine import UnlearnConfig
    from unlearn_core.run.pipeline import RunSpec

    cfg = UnlearnConfig(
        method=args.method,
        alpha=args.alpha,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        precision=args.precision,
        recipe=args.recipe,
    )
    return RunSpec(
        model=args.model,
        checkpoint=args.checkpoint,
        forget=args.forget,
        retain=args.retain,
        mask=args.mask,
        config=cfg,
        device=args.device,
        train_mask=args.train_mask,
        sampling_steps=args.sampling_steps,
        eval_masks=args.eval_masks,
        image_metrics=args.fid,
        reference=args.reference,
    )


def cmd_unlearn(args: argparse.Namespace) -> int:
    from unlearn_core.run.pipeline import prepare, run, write_outputs

    if args.push_to_hub:  # before any work: a missing token must not cost a whole run
        from unlearn_core.serving.hub import check_push

        check_push(args.push_to_hub)
    spec = spec_from_args(args)
    prepared = prepare(spec)
    bar = _progress(prepared.config.steps, f"unlearn {args.forget}", quiet=not distributed.is_main())

    def on_step(e) -> None:
        bar.update(1)
        if e.step % 10 == 0 or e.step == e.total_steps:
            bar.set_postfix(retain=f"{e.retain:.4f}", forget=f"{e.forget:.4f}")

    def on_measure(e) -> None:
        part = "other masks, embedding view" if e.extras else "headline"
        print(f"measure ({part}): {round(100 * e.done / e.total)}% ({e.what}, {e.seconds:.0f} s)", file=sys.stderr, flush=True)

    out = run(spec, on_step=on_step, prepared=prepared, on_measure=on_measure)
    bar.close()
    if out is None:  # another process of `accelerate launch`: the main one writes the outputs
        return 0
    args.out = args.out or Path("runs") / out.metrics["config_hash"]
    write_outputs(out, args.out)
    print(format_table(out.metrics), file=sys.stderr if args.json else sys.stdout)
    print(f"wrote {args.out}/model, metrics.json, losses.csv, compare.png (and compare-<mask>.png for the other masks)", file=sys.stderr)
    if args.push_to_hub:
        from unlearn_core.serving.hub import push_run

        print(f"pushed to {push_run(args.out, args.push_to_hub, private=args.private)}", file=sys.stderr)
    if args.json:
        print(json.dumps(out.metrics))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from unlearn_core.run.pipeline import evaluate_checkpoint

    result = evaluate_checkpoint(
        args.model,
        args.checkpoint,
        args.forget,
        args.retain,
        args.mask,
        args.device,
        args.seed,
        args.sampling_steps,
        eval_masks=args.eval_masks,
        image_metrics=args.fid,
        precision=args.precision,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['checkpoint']} ({result['mask']})")
        for name in ("forget", "retain"):
            print(f"  {name:7s} " + "  ".join(f"{k}={v}" for k, v in result[name].items()))
        print(_mask_table({m: {"model": v} for m, v in result["masks"].items()}))
        print("\n".join(f"note: {n}" for n in result["notes"]))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from unlearn_core.audit.common import AuditConfig
    from unlearn_core.audit.folder import open_run
    from unlearn_core.audit.runner import parse_only, run_audit, write_audit

    only = parse_only(args.only)
    d = AuditConfig()
    cfg = AuditConfig(
        images=args.images,
        relearn_k=tuple(_whole_numbers(args.k, "--k")) if args.k else d.relearn_k,
        relearn_steps=args.relearn_steps,
        membership_images=args.membership_images,
        inversion_steps=args.inversion_steps,
        inversion_images=min(args.images, d.inversion_images),
    )
    cfg.check()
    run = open_run(args.run_dir, args.device, args.forget, args.retain, args.precision, args.original)

    def on_progress(e) -> None:
        print(f"audit: {round(100 * e.done / e.total)}% ({e.what}, {e.seconds:.0f} s)", file=sys.stderr, flush=True)

    result = run_audit(run, only, cfg, on_progress)
    written = write_audit(run, result)
    for name in only:
        print(result[name]["verdict"], file=sys.stderr if args.json else sys.stdout)
    print(f"wrote {', '.join(p.name for p in written)} and the audit in metrics.json in {args.run_dir}", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from unlearn_core.audit.compare import compare_runs, comparison_html, comparison_text

    c = compare_runs(args.run_a, args.run_b, args.device, forget=args.forget, retain=args.retain)
    page = args.html or Path(f"compare-{c.names[0]}-vs-{c.names[1]}.html")
    page.write_text(comparison_html(c))
    print(comparison_text(c), file=sys.stderr if args.json else sys.stdout)
    print(f"wrote {page}", file=sys.stderr)
    if args.json:
        print(json.dumps({"names": c.names, "settings": c.settings, "figures": c.figures, "note": c.note}))
    return 0


def _cell(row: dict, name: str) -> str:
    return "-" if row.get(name) is None else str(row[name])


def cmd_families(args: argparse.Namespace) -> int:
    """Every model family (plug-ins included) and the defaults a run of it uses."""
    from unlearn_core.models import families

    rows = []
    for name, f in families().items():
        d = f.defaults
        row = {"family": name, "label": f.label, "embedded": f.embedded, "presets": list(f.presets), **asdict(d), "alpha": dict(d.alpha)}
        official = None if f.official is None else asdict(f.official) | {"alpha": dict(f.official.alpha)}
        rows.append(row | {"official": official, "references": dict(f.references)})
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        print(f"{r['family']}: {r['label']}")
        print(f"  defaults: {_recipe_words(r)}")
        if r["official"]:
            print(f"  official recipe (--recipe official): {_recipe_words(r['official'])}")
        print(f"  embedded checkpoint: {r['embedded'] or 'none'}; presets: {', '.join(r['presets'])}")
        if r["references"]:
            refs = ", ".join(f"{folder} (never saw {c}s)" for c, folder in r["references"].items())
            print(f"  reference trained without a class: {refs}")
    return 0


def _recipe_words(d: dict) -> str:
    alpha = ", ".join(f"{m} {a:g}" for m, a in d["alpha"].items()) or "each method's own"
    return (
        f"mask {d['mask']}, {d['steps']} steps at learning rate {d['lr']:g}, training mask {d['train_mask'] or 'the mask'}, "
        f"alpha {alpha}, sampling steps {d['sampling_steps'] or 'one pass'}"
    )


def cmd_bench(args: argparse.Namespace) -> int:
    from unlearn_core.studies.bench import bench

    result = bench(
        model=args.model,
        checkpoint=args.checkpoint,
        config=args.config,
        preset=args.preset,
        size=args.size,
        channels=args.channels,
        device=args.device,
        batch_size=args.batch_size,
        large_batch=args.large_batch,
        steps=args.steps,
        ttf=not args.no_ttf,
        check_every=args.check_every,
        max_steps=args.max_steps,
        precision=args.precision,
    )
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            if k != "checks":
                print(f"{k:>22}: {v}")
    return 0


def _whole_numbers(text: str, option: str = "--seeds") -> list[int]:
    try:
        return [int(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise UserInputError(f"{option} takes comma-separated whole numbers, got {text!r}") from None


def cmd_table(args: argparse.Namespace) -> int:
    from unlearn_core.studies.table import SPLITS, Split, TableSpec, build_splits

    def floats(text: str) -> list[float]:
        try:
            return [float(a) for a in text.split(",") if a.strip()]
        except ValueError:
            raise UserInputError(f"--alphas takes comma-separated numbers, got {text!r}") from None

    spec = TableSpec(
        models=_names(args.model),
        masks=_names(args.mask),
        out=args.out,
        alphas=floats(args.alphas),
        rows=_names(args.rows) if args.rows else None,
        steps=args.steps,
        batch_size=args.batch_size,
        seeds=_whole_numbers(args.seeds) if args.seeds else [args.seed],
        device=args.device,
        precision=args.precision,
        image_metrics=not args.no_fid,
        fid_images=args.fid_images or None,
        audit=args.audit,
        command="python -m unlearn_core " + shlex.join(sys.argv[1:]),
    )
    state = {"bar": None}

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        state["bar"] = None

    def on_step(e) -> None:
        if state["bar"] is None or e.step == 1:
            state["bar"] = _progress(e.total_steps, "  unlearn")
        state["bar"].update(1)

    own = [args.forget, args.retain, args.proxy]
    if any(own):
        if not all(own[:2]):
            raise UserInputError("--forget and --retain go together (and --proxy with them): a split of your own")
        splits = [Split("own", "Your split", args.forget, args.retain, args.proxy or "builtin:others")]
    else:
        unknown = [n for n in _names(args.split) if n not in SPLITS]
        if unknown or not _names(args.split):
            raise UserInputError(f"--split takes {', '.join(SPLITS)} (comma-separated), got {args.split!r}")
        splits = [SPLITS[n] for n in _names(args.split)]
    path = build_splits(spec, splits, say, on_step)
    print(f"wrote {path}, and in {', '.join(s.name + '/' for s in splits)}: RESULTS.md, results.csv, tradeoff.png", file=sys.stderr)
    return 0


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def format_table(metrics: dict) -> str:
    """Original vs unlearned, forget vs retain, as aligned text; then probe accuracy per mask."""
    names = ("psnr_masked", "probe_acc", "noise_cos", "fid", "embed_cos")
    lines = [f"{metrics['model']} / {metrics['method']} / {metrics['mask']}: {metrics['steps']} steps in {metrics['seconds']} s"]
    lines.append(f"{'':18s}" + "".join(f"{n:>13s}" for n in names))
    ref = metrics.get("reference")
    rows = {"original": metrics["original"], "unlearned": metrics["unlearned"]}
    if ref is not None:
        rows["reference"] = ref["masks"][metrics["mask"]]
    for which, sets in rows.items():
        for s in ("forget", "retain"):
            lines.append(f"{which + ' ' + s:18s}" + "".join(f"{_cell(sets[s], n):>13}" for n in names))
    masks = metrics.get("masks", {})
    if ref is not None:
        masks = {name: by_model | {"reference": ref["masks"][name]} for name, by_model in masks.items()}
        lines.insert(1, f"reference: {ref['name']}, a model that {ref['label']} (trained like the original without them)")
    if masks:
        lines.append(_mask_table(masks))
    if "measure_seconds" in metrics:
        from unlearn_core.serving.report import forgetting_verdict

        lines[0] += f", measured in {metrics['measure_seconds']} s"
        lines[0] += f" (other masks and embedding view: {metrics['extras_seconds']} s more)" if "extras_seconds" in metrics else ""
        lines.append("verdict: " + forgetting_verdict(metrics).replace("**", ""))
    lines.extend(f"note: {n}" for n in metrics.get("notes", []))
    return "\n".join(lines)


def _mask_table(masks: dict) -> str:
    """probe_acc (probe_agree where a set has no labels) of each set under each mask."""
    models = list(next(iter(masks.values()), {}))
    head = "".join(f"{f'{m} {s}':>18s}" for m in models for s in ("forget", "retain"))
    lines = [f"{'probe_acc by mask':18s}{head}"]
    for name, by_model in masks.items():
        cells = []
        for m in models:
            for s in ("forget", "retain"):
                row = by_model[m][s]
                cells.append(_cell(row, "probe_acc" if row.get("probe_acc") is not None else "probe_agree"))
        lines.append(f"{name:18s}" + "".join(f"{c:>18s}" for c in cells))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ parser


def _add_common(p: argparse.ArgumentParser) -> None:
    from unlearn_core.models.registry import DEFAULT, family_names

    p.add_argument("--model", default=DEFAULT, help=f"model family: {' | '.join(family_names())} (default: {DEFAULT})")
    p.add_argument("--checkpoint", help="a model folder to use instead of the embedded one")
    p.add_argument("--forget", required=True, help="built-in set (builtin:cat), folder, zip or image")
    p.add_argument("--retain", required=True, help="built-in set (builtin:dog), folder, zip or image")
    p.add_argument(
        "--mask",
        default=None,
        help="center25 | center50 | outpaint25 | outpaint50 | patches75 | mask image path (default: the model family's; see `families`)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sampling-steps",
        type=int,
        default=None,
        help="rounds of an iterative sampler for the metrics and pictures (VQ-GAN: MaskGIT rounds, default 8; "
        "diffusion: DDIM steps, default 10); MAE generates in one pass",
    )
    p.add_argument(
        "--eval-masks",
        default=None,
        help="comma-separated masks the results are also measured with (probe, PSNR, noise_cos per mask); "
        "default: every preset; '' for --mask only",
    )
    p.add_argument(
        "--fid",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="FID and embed_cos (Inception features; about a minute on a 2-core CPU). Default: on with a GPU, off on a CPU",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda[:N]")
    _add_precision(p)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON on the last line of stdout")


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="arithmetic: auto (bfloat16 on a CPU that computes it natively, faster there; TF32 products on an NVIDIA GPU "
        "of compute capability 8.0+; float32 elsewhere) | fp32 | tf32 | bf16",
    )


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one `error: ...` line (naming the command), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from unlearn_core.audit.common import AuditConfig
    from unlearn_core.models import family_names

    p = Parser(prog="python -m unlearn_core", description="Make image-to-image models forget.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an original model or the probe from an image set")
    t.add_argument("--model", choices=[*family_names(), "probe"], required=True)
    t.add_argument("--data", default="builtin:all")
    t.add_argument("--out", required=True, type=Path)
    t.add_argument("--preset", default="animals", help="model size preset: animals, tiny (every family); diffusion also animals-deep")
    t.add_argument("--tokenizer-steps", type=int, default=None, help="VQ-GAN: steps of stage 1, the tokenizer (default 3000)")
    t.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="VQ-GAN: skip stage 1, use this tokenizer folder (taming .ckpt + .yaml, or a diffusers VQModel)",
    )
    t.add_argument(
        "--init",
        default=None,
        help="start from this model folder's weights (a fine-tune; VQ-GAN: its transformer only) instead of a new model",
    )
    t.add_argument(
        "--noise-share",
        type=float,
        default=0.0,
        help="share of each batch replaced by noise images (the noise unlearning maps forget images to), "
        "so the model learns what to make of noise (default 0)",
    )
    t.add_argument("--size", type=int, default=None, help="image side in pixels (default: the preset's, 32)")
    t.add_argument("--channels", type=int, default=None, choices=[1, 3], help="1 grayscale or 3 RGB (default: the preset's, 1)")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1.5e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument(
        "--resume",
        action="store_true",
        help=f"go on from the training state an interrupted run of the same command left in --out ({TRAIN_STATE}; "
        "saved every 250 steps, removed when training ends). VQ-GAN: stage 2 resumes, stage 1 is not redone",
    )
    t.set_defaults(func=cmd_train)

    from unlearn_core.methods import methods
    from unlearn_core.models.registry import RECIPES
    from unlearn_core.run.engine import UnlearnConfig

    d = UnlearnConfig()
    u = sub.add_parser("unlearn", help="make a model forget a set while keeping another")
    _add_common(u)
    u.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<a hash of the run's settings>)")
    u.add_argument("--push-to-hub", metavar="REPO", default=None, help="then upload the model with a model card to Hub repo owner/name")
    u.add_argument("--private", action="store_true", help="with --push-to-hub: make the repository private")
    u.add_argument(
        "--reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure and picture the family's model that never saw the forget class, where it has one for a "
        "built-in forget set (`families` lists them; default: on)",
    )
    u.add_argument("--method", default=d.method, choices=list(methods()), help=f"unlearning method (default: {d.method})")
    u.add_argument(
        "--recipe",
        default="demo",
        choices=RECIPES,
        help="where unset steps, learning rate, training mask and alpha come from: demo (tuned on our data for the "
        "demonstration) or official (the official code's, scaled to our data; `families` lists both; default: demo)",
    )
    u.add_argument("--alpha", type=float, default=None, help="weight of the forget term (default: the method's)")
    u.add_argument("--steps", type=int, default=None, help="unlearning steps (default: the model family's; see `families`)")
    u.add_argument(
        "--train-mask",
        default=None,
        help="mask unlearning trains with: random (a fresh mask every step), presets (one of the presets every step), "
        "a preset or a mask image "
        "(default: the model family's, else --mask itself; see `families`)",
    )
    u.add_argument("--batch-size", type=int, default=d.batch_size)
    u.add_argument("--lr", type=float, default=None, help="learning rate (default: the model family's; see `families`)")
    u.set_defaults(func=cmd_unlearn)

    e = sub.add_parser("evaluate", help="metrics of one model on a forget and a retain set")
    _add_common(e)
    e.set_defaults(func=cmd_evaluate)

    a = sub.add_parser("audit", help="is it really gone? relearning, membership, decoder-inversion and mask-sweep attacks on a run folder")
    a.add_argument("run_dir", type=Path, help="the folder `unlearn --out` wrote")
    a.add_argument("--only", default=None, help="comma-separated: relearning, membership, inversion, mask_sweep (default: all)")
    a.add_argument("--k", default=None, help="relearning: comma-separated numbers of forget images the attacker holds (default 8,32)")
    a.add_argument("--relearn-steps", type=int, default=AuditConfig().relearn_steps, help="relearning: fine-tuning steps")
    a.add_argument("--images", type=int, default=AuditConfig().images, help="held-out images per set for probe scores")
    a.add_argument("--inversion-steps", type=int, default=AuditConfig().inversion_steps, help="decoder inversion: Adam steps")
    a.add_argument("--membership-images", type=int, default=AuditConfig().membership_images, help="members (and as many non-members)")
    a.add_argument("--forget", default=None, help="the run's forget set, when it was not built in (a folder, zip or image)")
    a.add_argument("--retain", default=None, help="the run's retain set, when it was not built in")
    a.add_argument("--original", default=None, help="the folder of the model the run started from, when it was not an embedded one")
    a.add_argument("--device", default="auto")
    _add_precision(a)
    a.add_argument("--json", action="store_true", help="print the audit as JSON on the last line of stdout")
    a.set_defaults(func=cmd_audit)

    c = sub.add_parser("compare", help="two run folders side by side: settings, figures, audits and outputs")
    c.add_argument("run_a", type=Path, help="a folder `unlearn --out` wrote")
    c.add_argument("run_b", type=Path)
    c.add_argument("--html", type=Path, default=None, help="the page to write (default: compare-A-vs-B.html here)")
    c.add_argument("--forget", default=None, help="run A's forget set, when it was not built in")
    c.add_argument("--retain", default=None, help="run A's retain set, when it was not built in")
    c.add_argument("--device", default="auto")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON on the last line of stdout")
    c.set_defaults(func=cmd_compare)

    f = sub.add_parser("families", help="the model families (plug-ins included) and their defaults")
    f.add_argument("--json", action="store_true", help="print them as JSON")
    f.set_defaults(func=cmd_families)

    b = sub.add_parser("bench", help="speed and memory: unlearning steps/s, ms per generated image, time to forget")
    b.add_argument("--model", default="mae", help="model family (default mae)")
    b.add_argument("--checkpoint", default=None, help="a model folder or Hub id (default: the embedded model)")
    b.add_argument("--config", default=None, help="a named real-size architecture with random weights: vitmae-base")
    b.add_argument(
        "--preset",
        default="animals",
        help="with --size/--channels: the family preset to rebuild (animals, tiny; diffusion also animals-deep)",
    )
    b.add_argument("--size", type=int, default=None, help="bench the family preset rebuilt for this image size (random weights)")
    b.add_argument("--channels", type=int, default=None, choices=[1, 3])
    b.add_argument("--device", default="auto")
    _add_precision(b)
    b.add_argument("--batch-size", type=int, default=32, help="forget and retain batch each (default 32)")
    b.add_argument("--large-batch", type=int, default=256, help="the large batch (0: skip)")
    b.add_argument("--steps", type=int, default=30, help="timed steps at the default batch")
    b.add_argument("--no-ttf", action="store_true", help="skip the time-to-forget run")
    b.add_argument("--check-every", type=int, default=50, help="time to forget: steps between checks")
    b.add_argument("--max-steps", type=int, default=None, help="time to forget: at most this many steps (default: the family's)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)

    tb = sub.add_parser("table", help="the paper's comparison: every method on every model and mask, as RESULTS.md")
    tb.add_argument("--model", default="mae,vqgan,diffusion", help="comma-separated model families")
    tb.add_argument("--mask", default="center25,center50,outpaint50", help="comma-separated evaluation masks")
    tb.add_argument("--out", required=True, type=Path, help="output folder (finished cells in it are kept: the table resumes)")
    tb.add_argument(
        "--split",
        default="paper,demo",
        help="comma-separated sections: paper (forget cats, retain the other nine classes, proxy giraffe+horse+sheep+zebra), "
        "demo (forget cats, keep dogs, proxy the eight others); each in its own folder under --out (default: both)",
    )
    tb.add_argument("--forget", default=None, help="with --retain: one split of your own instead of --split")
    tb.add_argument("--retain", default=None)
    tb.add_argument("--proxy", default=None, help="the proxy retain set of your own split's 'Ours (proxy D_R)' row (builtin:others)")
    tb.add_argument("--alphas", default="0.25,0.5,2,4", help="alphas of the sweep of ours, besides its default")
    tb.add_argument(
        "--rows",
        default=None,
        help="only these rows: original,retrain,max_loss,noisy_label,retain_label,random_encoder,finetune,ours,ours_official,ours_proxy",
    )
    tb.add_argument("--steps", type=int, default=None, help="unlearning steps (default: each family's)")
    tb.add_argument("--batch-size", type=int, default=d.batch_size)
    tb.add_argument("--seed", type=int, default=0, help="the seed of every cell (one seed)")
    tb.add_argument(
        "--seeds",
        default=None,
        help="comma-separated seeds (e.g. 0,1,2): every cell with each; the table gives the mean and the lowest and highest",
    )
    tb.add_argument("--device", default="auto")
    _add_precision(tb)
    tb.add_argument("--no-fid", action="store_true", help="skip FID and embed_cos")
    tb.add_argument(
        "--fid-images", type=int, default=200, help="FID and embed_cos on this many held-out images of each set, evenly spread (0: all)"
    )
    tb.add_argument(
        "--audit", action="store_true", help="also attack every method's model (relearning, membership, decoder inversion): slower"
    )
    tb.set_defaults(func=cmd_table)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserInputError, RunFailed) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
