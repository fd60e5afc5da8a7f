"""A visitor's run in the web app, from the page's fields to what the page shows, without gradio.

`RunForm` holds the run's fields by name, as the page has them; `run_session` turns one into a run
and streams `RunView`s (the page's run outputs by name; None leaves one as it is): the original
model's preview, then step, share done and time left with the loss curves and previews, then the
results (`results_view`: the summary, pictures, both metric tables and the downloads). The other
handlers' work is here too: set and mask previews, a user's image through both models, pushing to
the Hub and the `/unlearn` API's run.

The GPU work goes through `zerogpu.gpu`: on a ZeroGPU Space each call gets a GPU for its duration,
in a worker process; elsewhere the decorator does nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

import pandas as pd
import torch
from PIL import Image

from unlearn_core.errors import UserInputError
from unlearn_core.methods import get_method
from unlearn_core.models import get_family
from unlearn_core.models.registry import DEFAULT as DEFAULT_FAMILY
from unlearn_core.run.pipeline import RunOutput, RunSpec, measure_original, write_outputs
from unlearn_core.serving import history, hub, zerogpu
from unlearn_core.serving.report import CHANGE_NOTE, MASK_HEADERS, MASK_TABLE_NOTE, mask_headers, mask_rows, metrics_rows  # noqa: F401
from unlearn_core.serving.session import Session, own_folders, running
from unlearn_core.serving.studio import (
    EXTRAS_FOLLOW,
    editor_has_strokes,
    export,
    extras_text,
    loss_long_rows,
    make_spec,
    mask_description,
    mask_from_editor,
    mask_preview,
    progress_text,
    run_to_end,
    server_checkpoint,
    server_mask,
    server_source,
    set_preview,
    stream,
    summary,
    try_image,
    ui_defaults,
)

UPLOAD = "my images (upload)"  # the set choice that takes the visitor's files
DRAW = "draw my own"  # the mask choice that takes the visitor's painting
DEFAULT_MODEL = DEFAULT_FAMILY  # the family the page opens on
# Live plot, preview and status refresh. Each redraws the plot in the browser, which shares the
# CPU with the run, so refreshing less often brings the results sooner (docs/BENCHMARKS.md, 'The
# app's default run: a lighter page and a quicker schedule').
UPDATE_SECONDS = 2.0
LOSS_COLUMNS = ["step", "loss", "term"]
METRIC_HEADERS = ["set", "metric", "original", "unlearned", "change"]
CLEAR = "clear"  # a `RunView` value that empties its output (None leaves it as it is)


@dataclass(frozen=True)
class RunForm:
    """A run's fields as the page holds them (numbers may be floats, strings or None)."""

    fc: str  # forget set: a built-in or Hugging Face set's name, or UPLOAD
    ff: list[str] | None  # the forget set's uploaded files (with UPLOAD)
    rc: str  # retain set, as `fc`
    rf: list[str] | None
    model: str  # model family
    checkpoint: str  # model source: empty (the embedded model), a server folder or a Hub id
    mask_choice: str  # a preset, or DRAW
    drawn: object  # the mask editor's value (with DRAW)
    method: str
    alpha: object  # empty: the method's default on the family
    steps: object
    lr: object
    seed: object
    sampling: object  # sampling steps; empty: the model's sampler default
    train_mask: str | None  # studio.SAME_MASK, a training-only mask or a preset
    image_metrics: bool  # FID and embed_cos too

    def spec(self, allowed: Iterable[str | Path] = (), eval_masks=None) -> RunSpec:
        """The run these fields ask for (`studio.make_spec`); `allowed`: server folders the visitor may
        name besides the embedded checkpoints; `eval_masks`: the masks of the per-mask table."""
        return make_spec(
            chosen_source(self.fc, self.ff),
            chosen_source(self.rc, self.rf),
            self.model,
            server_checkpoint(self.checkpoint, allowed),
            chosen_mask(self.mask_choice, self.drawn),
            self.method,
            self.alpha,
            self.steps,
            self.lr,
            self.seed,
            self.sampling,
            self.train_mask,
            self.image_metrics,
            eval_masks,
        )


FORM_FIELDS = tuple(f.name for f in fields(RunForm))


def default_form() -> RunForm:
    """What the page's fields show before anyone touches them, and the Example button sets."""
    family = ui_defaults(DEFAULT_MODEL, method="ours")
    return RunForm(
        fc="builtin:cat",
        ff=None,
        rc="builtin:dog",
        rf=None,
        model=DEFAULT_MODEL,
        checkpoint="",
        mask_choice=family.mask,
        drawn=None,
        method="ours",
        alpha=family.alpha,
        steps=family.steps,
        lr=family.lr,
        seed=0,
        sampling=family.sampling_steps,
        train_mask=family.train_mask,
        # FID / embed_cos: Inception features of the generated and true images, slow on a CPU
        # (docs/app.md, 'Using it')
        image_metrics=torch.cuda.is_available(),
    )


def default_spec(eval_masks=None) -> RunSpec:
    """The run the page's fields show before anyone touches them."""
    return default_form().spec((), eval_masks)


def field_defaults(model: str, checkpoint: str, method: str = "ours", session: Session | None = None, recipe: str = "demo"):
    """What the fields that follow the model family, the method and the settings show
    (`studio.ui_defaults`) for the model the page names, with the folders this session may use;
    None when the model or its source is refused."""
    try:
        return ui_defaults(model, server_checkpoint(checkpoint, own_folders(session)), method, recipe)
    except UserInputError:
        return None


def warm_up(eval_masks=None) -> str:
    """For a server at start: load the default model, sets and probe, and measure the original
    model (and its never-saw-the-class reference) for the default run (`pipeline.measure_original`), so that the first visitor's run
    measures only the unlearned model (what that saves: docs/app.md, 'Several visitors'). Returns
    a line for the log; never raises (a server serves without it)."""
    try:
        return f"warm-up: the default run's original model measured in {measure_original(default_spec(eval_masks)):.1f} s"
    except Exception as e:  # noqa: BLE001 - a failed warm-up costs the first run time, nothing more
        return f"warm-up skipped: {type(e).__name__}: {e}"


def start_warm_up(eval_masks=None) -> threading.Thread:
    """`warm_up` in a daemon thread, its line printed to the log when done: the page serves meanwhile."""
    thread = threading.Thread(target=lambda: print(warm_up(eval_masks), flush=True), name="warm-up", daemon=True)
    thread.start()
    return thread


def chosen_source(choice: str, files: list[str] | None):
    """A set field's value: the uploaded files with UPLOAD, else the set's name."""
    if choice == UPLOAD:
        if not files:
            raise UserInputError("upload some images (or a zip) first, or pick a built-in set")
        return list(files)
    return choice


def chosen_mask(choice: str, drawn):
    """The mask field's value: the painted mask with DRAW, else the preset's name."""
    return mask_from_editor(drawn) if choice == DRAW else choice


# ------------------------------------------------------------------------------ what the page says about a choice

EXAMPLE = {"fc": "builtin:cat", "rc": "builtin:dog"}  # the sets the Example button runs with


def example_label(model: str, mask_choice: str) -> str:
    """The Example button's words: what it runs (the sets, and the family and mask the page shows)."""
    mask = "your drawn mask" if mask_choice == DRAW else mask_choice
    return f"Example: forget cats, keep dogs · {model} · {mask}"


def example_sets(fc: str, rc: str) -> tuple[str, str, str]:
    """The Example's sets, and a line saying which of the visitor's choices it replaced (their
    uploaded files stay in the file box, a choice away); every other field stays as it is."""
    changed = [
        f"{name} set {old!r} → {new!r}" for name, old, new in (("forget", fc, EXAMPLE["fc"]), ("retain", rc, EXAMPLE["rc"])) if old != new
    ]
    if not changed:
        return EXAMPLE["fc"], EXAMPLE["rc"], ""
    return EXAMPLE["fc"], EXAMPLE["rc"], f"The example changed the {' and the '.join(changed)}; the other settings are as you left them."


def family_warning(model: str) -> str:
    """A family's known limit, shown before a run (empty when it has none)."""
    limit = get_family(model).guide.known_limit()
    return f"**Known limit.** {limit}" if limit else ""


def how_it_works(model: str) -> str:
    """The method in a paragraph, and what to look for in this family's results."""
    f = get_family(model)
    return f"""### How it works
Only the encoder E is tuned; the decoder stays as it was. The loss is

||E(T(x_r)) - E0(T(x_r))||² + α ||E(T(x_f)) - E0(T(n))||²

where E0 is a frozen copy of the original encoder, T the mask and n a noise image with the forget
set's mean and spread. Retain images keep their embeddings, so the decoder keeps drawing them as
before. Forget images are given the embedding the original encoder gave to noise, so the decoder
draws noise for them.

**What to look for ({f.label}):** {f.guide.look_for}. Forgotten outputs: {f.guide.forgotten}. In the
plot, the red forget dots move onto the grey noise targets while the blue retain dots stay put.
"""


def loss_legend(method: str, alpha) -> str:
    """The loss plot's label: its terms, and how the total combines them with the weight shown."""
    try:
        m = get_method(method)
    except UserInputError:
        return "Losses (retain, forget, total)"
    weight = "the method's default" if alpha is None or (isinstance(alpha, str) and not alpha.strip()) else f"{float(alpha):g}"
    return f"Losses: total = {m.total} (α = {weight})"


# ------------------------------------------------------------------------------ previews


def set_view(
    choice: str, files: list[str] | None, model: str, checkpoint: str, session: Session | None = None
) -> tuple[Image.Image | None, str]:
    """Preview picture (None: nothing to show) and the line under it, for a set field."""
    if choice == UPLOAD and not files:
        return None, "Upload images or one zip (PNG, JPEG, WebP, BMP, GIF, TIFF; 20 MB a file)."
    try:
        return set_preview(chosen_source(choice, files), model, server_checkpoint(checkpoint, own_folders(session)))
    except UserInputError as e:
        return None, f"**Error:** {e}"


def mask_view(choice: str, drawn, model: str, checkpoint: str, seed=0, session: Session | None = None) -> tuple[Image.Image | None, str]:
    """The mask on a sample image (None: nothing to show) and the line under it."""
    if choice == DRAW and not editor_has_strokes(drawn):
        return None, "Paint the region to generate in white over the sample; it becomes the mask."
    try:
        ckpt = server_checkpoint(checkpoint, own_folders(session))
        preview = mask_preview(chosen_mask(choice, drawn), model, ckpt, seed=int(seed or 0))
        return preview, f"Blue = generated. {mask_description(choice)}"
    except (UserInputError, TypeError, ValueError) as e:
        return None, f"**Error:** {e}"


# ------------------------------------------------------------------------------ runs


@dataclass(frozen=True)
class RunView:
    """One update of the page's run outputs, by name; None leaves an output as it is."""

    status: str | None = None
    plot: pd.DataFrame | None = None  # the loss curves, LOSS_COLUMNS
    preview: Image.Image | None = None  # forget (top) and retain (bottom) outputs now
    live: bool | None = None  # whether the plot and preview show
    results: bool | None = None  # whether the results show
    compare: Image.Image | None = None
    compare_mask: list[str] | None = None  # the masks the comparison can be shown under, the run's own first
    table: pd.DataFrame | None = None  # METRIC_HEADERS
    mask_table: pd.DataFrame | None = None  # report.mask_headers
    embedding: Image.Image | str | None = None  # CLEAR: none yet (the headline results)
    metrics: dict | None = None
    model_file: str | None = None
    report_file: str | None = None
    session: Session | None = None


RUN_OUTPUTS = tuple(f.name for f in fields(RunView))


@zerogpu.gpu(duration=lambda spec, stop_file: zerogpu.run_seconds(spec))
def gpu_stream(spec: RunSpec, stop_file: str):
    yield from stream(spec, stop_file, interval=UPDATE_SECONDS)


@zerogpu.gpu(duration=lambda spec, per_mask=False: zerogpu.run_seconds(spec))
def gpu_metrics(spec: RunSpec, per_mask: bool = False) -> dict:
    """The `/unlearn` API's run: the headline results, with `per_mask` the per-mask table too."""
    return run_to_end(spec, extras=per_mask).metrics


gpu_try_image = zerogpu.gpu(duration=zerogpu.IMAGE_SECONDS)(try_image)


def run_session(
    form: RunForm,
    session: Session | None,
    *,
    eval_masks,
    max_age: float,
    max_mb: float,
    runs_dir: str | None = None,
    key: str | None = None,
) -> Iterator[RunView]:
    """The run `form` asks for, as the page's updates; the finished run is kept in the visitor's
    history (`history.root(session, runs_dir, key)`). The session's other folders idle for over
    `max_age` seconds, or beyond `max_mb` in all, are swept first (`session.sweep_sessions`).
    Closing the generator (the page went away) stops the run."""
    session = session or Session()
    if session.cancelled:  # stopped while it waited in the queue
        session.cancelled = session.waiting = False
        yield RunView(status="Cancelled before it started. Press **Unlearn** to run.", session=session)
        return
    session.waiting = False
    try:
        spec = form.spec(own_folders(session), eval_masks)
    except UserInputError as e:
        yield RunView(status=f"**Error:** {e}", session=session)
        return
    with running(session, max_age, max_mb):
        yield from _follow(spec, session, history.root(session, runs_dir, key))


def _follow(spec: RunSpec, session: Session, kept: Path) -> Iterator[RunView]:
    started = time.monotonic()
    waited, head, folder = None, "", None
    for i, update in enumerate(gpu_stream(spec, str(session.stop_file))):
        if update.refused:
            yield RunView(status=f"**Error:** {update.error}", session=session)
            return
        if i == 0:  # the original model's preview, before the first step
            yield RunView(status="Starting...", preview=update.preview, live=True, results=False, session=session)
        elif update.error:
            yield RunView(status=f"**Run failed:** {update.error}. The original model is untouched.", session=session)
            return
        elif update.measuring is not None and update.measuring.extras:  # under the headline results, which stay
            yield RunView(status=f"{head}\n\n{extras_text(update.measuring)}", session=session)
        elif update.measuring is not None:
            yield RunView(status=progress_text(update.step, update.total_steps, update.seconds, update.measuring), session=session)
        elif update.output is None:
            status = progress_text(update.step, update.total_steps, update.seconds)
            status += " (stopping...)" if session.stop_file.exists() else ""
            yield RunView(status=status, plot=loss_frame(update.rows), preview=update.preview, session=session)
        else:
            session.output = update.output
            if waited is None:
                waited = time.monotonic() - (session.pressed if session.pressed is not None else started)
            if folder is None:
                folder = history.keep(update.output, kept)
            else:  # the finished run replaces its headline results in the history
                write_outputs(update.output, folder)
            session.kept = folder
            view = results_view(update.output, session, plot=loss_frame(update.rows), preview=update.preview, waited=waited)
            if update.headline:
                head = view.status
                view = replace(view, status=f"{head}\n\n{EXTRAS_FOLLOW}", embedding=CLEAR)
            yield view


def loss_frame(rows: list[dict]) -> pd.DataFrame:
    """The loss curves for a line plot: (step, loss, term) rows, thinned (`studio.loss_long_rows`)."""
    frame = pd.DataFrame(loss_long_rows(rows), columns=LOSS_COLUMNS)
    return frame.astype({"step": "int64", "loss": "float64", "term": "string"})


def results_view(
    out: RunOutput, session: Session, plot: pd.DataFrame | None = None, preview: Image.Image | None = None, waited: float | None = None
) -> RunView:
    """The page when a run ends: the summary line (`waited`: seconds since Unlearn was pressed), the
    comparison grid with the masks it can be shown under and the embeddings, both metric tables,
    metrics.json, and the model and report written into the session's folder."""
    files = export(out, session.tmp)
    return RunView(
        status=summary(out, waited),
        plot=plot,
        preview=preview,
        results=True,
        compare=out.compare,
        compare_mask=list(out.compares) or [out.metrics["mask"]],
        table=pd.DataFrame(metrics_rows(out.metrics), columns=METRIC_HEADERS),
        mask_table=pd.DataFrame(mask_rows(out.metrics), columns=mask_headers(out.metrics)),
        embedding=out.embedding,
        metrics=out.metrics,
        model_file=str(files["model"]),
        report_file=str(files["report"]),
        session=session,
    )


def compare_under(mask: str, session: Session | None) -> Image.Image | None:
    """The last run's comparison under one of its evaluation masks (None: no run, or not that mask)."""
    if session is None or session.output is None:
        return None
    return session.output.compares.get(mask)


def try_own(image: Image.Image | None, mask_choice: str, drawn, session: Session | None) -> tuple[Image.Image | None, str]:
    """A visitor's image through both models of their last run: the grid and a message."""
    if image is None:
        return None, "Upload or paste an image first."
    if session is None or session.output is None:
        return None, "Run an unlearning first; then any image goes through both models here."
    try:
        return gpu_try_image(session.output, image, chosen_mask(mask_choice, drawn)), ""
    except UserInputError as e:
        return None, f"**Error:** {e}"


def push_model(repo: str, private: bool, session: Session | None, owner: str = "") -> str:
    """Upload this session's unlearned model to Hub repository `repo` with the operator's token;
    `owner`: the only user or organisation whose repositories it may go to (empty: any)."""
    if session is None or session.output is None:
        return "Run an unlearning first."
    repo = (repo or "").strip()
    if owner and repo.split("/")[0] != owner:
        return f"**Error:** this app pushes only to repositories of {owner} ({owner}/name)."
    try:
        return f"Pushed: {hub.push_run(Path(session.tmp) / 'run', repo, private=bool(private))}"
    except UserInputError as e:
        return f"**Error:** {e}"


def api_spec(
    *, forget, retain, model, checkpoint, mask, method, alpha, steps, lr, seed, sampling_steps, train_mask, fid, eval_masks
) -> RunSpec:
    """The run the `/unlearn` API asks for: sets, mask and checkpoint as the server allows them
    (`studio.server_*`); `steps` and `lr` None: the model family's, as the page shows them."""
    if steps is None or lr is None:
        family = ui_defaults(model, server_checkpoint(checkpoint))
        steps = family.steps if steps is None else steps
        lr = family.lr if lr is None else lr
    return make_spec(
        server_source(forget),
        server_source(retain),
        model,
        server_checkpoint(checkpoint),
        server_mask(mask),
        method,
        alpha,
        steps,
        lr,
        seed,
        sampling_steps,
        train_mask,
        fid,
        eval_masks,
    )
