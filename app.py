"""I2I Unlearning Studio: the web app.

Thin by design: this file builds the page and wires events to `unlearn_core`; all tensor work
happens in the library. Run with `python app.py` (127.0.0.1:7860, or GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT). Per-visitor state lives in `gr.State`; one unlearning run at a time goes
through the queue while other visitors keep browsing and generating. Every visitor's files live in
one temporary folder per process, removed when the app stops (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import shutil  # noqa: E402, F401 - tests/test_faults.py reaches it as app.shutil
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from unlearn_core.serving import session as sessions  # noqa: E402
from unlearn_core.serving.session import RUNNING as _running  # noqa: E402, F401 - tests reach it as app._running
from unlearn_core.serving.session import Session, announce_run, stop_run, workspace  # noqa: E402
from unlearn_core.serving.session import delete_session as _delete_session  # noqa: E402
from unlearn_core.serving.session import own_folders as _own_folders  # noqa: E402

# Gradio's own cache (uploads, images and files sent to browsers) goes inside the workspace too,
# so that stopping the app leaves nothing behind, unless the operator chose a folder for it.
os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(workspace(), "gradio"))

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from unlearn_core.compute.device import serve_threads  # noqa: E402
from unlearn_core.errors import RunFailed, UserInputError  # noqa: E402
from unlearn_core.serving import hub, studio, zerogpu  # noqa: E402

if __name__ == "__main__":  # serving: runs take all CPU threads in their own thread, the rest one each
    serve_threads()

UPLOAD = "my images (upload)"
DRAW = "draw my own"
MAX_UPLOAD = "20mb"
QUEUE_SIZE = 16
# Live plot, preview and status refresh. Each redraws the plot in the browser, which shares the
# CPU with the run: every 1 s took 74.1 s from click to results for the default run, every 2 s
# 68.1-70.1 s (2 cores, headless Chromium).
UPDATE_SECONDS = 2.0
LOSS_COLUMNS = ["step", "loss", "term"]
METRIC_HEADERS = ["set", "metric", "original", "unlearned", "change"]
# What `run_unlearning` yields, in this order (one value per output component).
RUN_OUTPUTS = (
    "status",
    "plot",
    "preview",
    "live",
    "results",
    "compare",
    "table",
    "mask_table",
    "embedding",
    "metrics",
    "model_file",
    "report_file",
    "session",
)
# The masks of the results' per-mask table: UNLEARN_EVAL_MASKS, comma-separated (empty: the run's
# own mask only); unset: every preset. Each mask costs a generation pass over both held-out sets.
# The run parses and checks the list (`pipeline.evaluation_masks`).
EVAL_MASKS = os.environ.get("UNLEARN_EVAL_MASKS")
# Pushing to the Hub uses the operator's token: on a public app, UNLEARN_HUB_PUSH_OWNER limits the
# repositories visitors may push to to that user's or organisation's.
PUSH_OWNER = os.environ.get("UNLEARN_HUB_PUSH_OWNER", "").strip()
HOW_IT_WORKS = """### How it works
Only the encoder E is tuned; the decoder stays as it was. The loss is

||E(T(x_r)) - E0(T(x_r))||² + α ||E(T(x_f)) - E0(T(n))||²

where E0 is a frozen copy of the original encoder, T the mask and n a noise image with the forget
set's mean and spread. Retain images keep their embeddings, so the decoder keeps drawing them as
before. Forget images are given the embedding the original encoder gave to noise, so the decoder
draws noise for them.

**What to look for:** in the plot, the red forget dots move onto the grey noise targets while the
blue retain dots stay put; in the grid, cat fills turn to grey texture while dog fills do not change.
"""


# Disk: a visitor's folder goes when their session ends; folders idle for longer than
# SESSION_MAX_AGE seconds go on a schedule (and at the start of every run), and while all of them
# together exceed OUTPUTS_MAX_MB the oldest go first. A folder whose run is still going is kept.
SESSION_MAX_AGE = int(os.environ.get("UNLEARN_SESSION_MAX_AGE", "3600"))
OUTPUTS_MAX_MB = int(os.environ.get("UNLEARN_OUTPUTS_MAX_MB", "2048"))
SWEEP_EVERY = 600  # seconds


def sweep_sessions(now: float | None = None) -> list[str]:
    """Remove idle session folders and, over the size cap, the oldest; returns what was removed."""
    return sessions.sweep_sessions(SESSION_MAX_AGE, OUTPUTS_MAX_MB, now)


def _sweep_forever() -> None:
    while True:
        time.sleep(SWEEP_EVERY)
        sweep_sessions()


# ------------------------------------------------------------------------------ handlers


def _source(choice: str, files: list[str] | None):
    if choice == UPLOAD:
        if not files:
            raise UserInputError("upload some images (or a zip) first, or pick a built-in set")
        return list(files)
    return choice


def show_set(choice: str, files: list[str] | None, model: str, checkpoint: str, session: Session | None = None):
    """Preview picture and count for a forget/retain choice."""
    files_box = gr.update(visible=choice == UPLOAD)
    if choice == UPLOAD and not files:
        return files_box, None, "Upload images or one zip (PNG, JPEG, WebP, BMP, GIF, TIFF; 20 MB a file)."
    try:
        ckpt = studio.server_checkpoint(checkpoint, _own_folders(session))
        picture, text = studio.set_preview(_source(choice, files), model, ckpt)
    except UserInputError as e:
        return files_box, None, f"**Error:** {e}"
    return files_box, picture, text


def _mask(choice: str, drawn):
    if choice != DRAW:
        return choice
    return studio.mask_from_editor(drawn)


def show_mask(choice: str, drawn, model: str, checkpoint: str, seed=0, session: Session | None = None):
    editor = gr.update(visible=choice == DRAW)
    if choice == DRAW and not studio.editor_has_strokes(drawn):
        return editor, None, "Paint the region to generate in white over the sample; it becomes the mask."
    try:
        ckpt = studio.server_checkpoint(checkpoint, _own_folders(session))
        preview = studio.mask_preview(_mask(choice, drawn), model, ckpt, seed=int(seed or 0))
        return editor, preview, f"Blue = generated. {studio.mask_description(choice)}"
    except (UserInputError, TypeError, ValueError) as e:
        return editor, None, f"**Error:** {e}"


def model_defaults(model: str, checkpoint: str, method: str = "ours", session: Session | None = None):
    """Training mask, steps, learning rate, sampling steps and alpha follow the model family:
    they show what a run with it uses."""
    try:
        d = studio.ui_defaults(model, studio.server_checkpoint(checkpoint, _own_folders(session)), method)
    except UserInputError:
        return (gr.skip(),) * 5
    sampling = gr.update(value=d.sampling_steps, visible=d.sampling_steps is not None, maximum=d.max_sampling_steps)
    return d.train_mask, d.steps, d.lr, sampling, d.alpha


def method_default_alpha(method: str, model: str, checkpoint: str = "", session: Session | None = None):
    """The alpha field follows the method and the model family (which may name its own weight
    for a method): it shows the weight a run with them uses."""
    try:
        return studio.ui_defaults(model, studio.server_checkpoint(checkpoint, _own_folders(session)), method).alpha
    except UserInputError:
        return gr.skip()


def _loss_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(studio.loss_long_rows(rows), columns=LOSS_COLUMNS)
    return frame.astype({"step": "int64", "loss": "float64", "term": "string"})


def _outputs(**values) -> tuple:
    """One value per `RUN_OUTPUTS` entry; the ones not given are left as they are."""
    unknown = set(values) - set(RUN_OUTPUTS)
    assert not unknown, unknown
    return tuple(values.get(name, gr.skip()) for name in RUN_OUTPUTS)


# The GPU work. On a ZeroGPU Space each of these gets a GPU for the call, in a worker process
# (see unlearn_core/serving/zerogpu.py); elsewhere the decorator does nothing.
@zerogpu.gpu(duration=lambda spec, stop_file: zerogpu.run_seconds(spec))
def _gpu_stream(spec, stop_file: str):
    yield from studio.stream(spec, stop_file, interval=UPDATE_SECONDS)


@zerogpu.gpu(duration=zerogpu.run_seconds)
def _gpu_metrics(spec) -> dict:
    return studio.run_to_end(spec).metrics


_gpu_try_image = zerogpu.gpu(duration=zerogpu.IMAGE_SECONDS)(studio.try_image)


def run_unlearning(fc, ff, rc, rf, model, checkpoint, mask_choice, drawn, method, alpha, steps, lr, seed,
                   sampling, train_mask, image_metrics, session):  # fmt: skip
    """Generator: streams status (step, share done, time left), loss plot, previews, then results
    and downloads. The status line is the progress bar: gradio's own tracker (an elapsed-time
    counter redrawn many times a second) took a third of a core in the browser during a run."""
    session = session or Session()
    if session.cancelled:  # stopped while it waited in the queue
        session.cancelled = session.waiting = False
        yield _outputs(status="Cancelled before it started. Press **Unlearn** to run.", session=session)
        return
    session.waiting = False
    try:
        spec = studio.make_spec(
            _source(fc, ff),
            _source(rc, rf),
            model,
            studio.server_checkpoint(checkpoint, _own_folders(session)),
            _mask(mask_choice, drawn),
            method,
            alpha,
            steps,
            lr,
            seed,
            sampling,
            train_mask,
            image_metrics,
            EVAL_MASKS,
        )
    except UserInputError as e:
        yield _outputs(status=f"**Error:** {e}", session=session)
        return
    with sessions.running(session, SESSION_MAX_AGE, OUTPUTS_MAX_MB):
        yield from _follow_run(spec, session)


def _follow_run(spec, session: Session):
    hidden = gr.update(visible=False)
    for i, update in enumerate(_gpu_stream(spec, str(session.stop_file))):
        if update.refused:
            yield _outputs(status=f"**Error:** {update.error}", session=session)
            break
        if i == 0:  # the original model's preview, before the first step
            yield _outputs(status="Starting...", preview=update.preview, live=gr.update(visible=True), results=hidden, session=session)
            continue
        if update.error:
            yield _outputs(status=f"**Run failed:** {update.error}. The original model is untouched.", session=session)
            break
        if update.output is None:
            status = studio.progress_text(update.step, update.total_steps, update.seconds)
            status += " (stopping...)" if session.stop_file.exists() else ""
            yield _outputs(status=status, plot=_loss_frame(update.rows), preview=update.preview or gr.skip(), session=session)
            continue
        out = update.output
        session.output = out
        files = studio.export(out, session.tmp)
        yield _outputs(
            status=studio.summary(out),
            plot=_loss_frame(update.rows),
            preview=update.preview or gr.skip(),
            results=gr.update(visible=True),
            compare=out.compare,
            embedding=out.embedding,
            table=pd.DataFrame(studio.metrics_rows(out.metrics), columns=METRIC_HEADERS),
            mask_table=pd.DataFrame(studio.mask_rows(out.metrics), columns=studio.MASK_HEADERS),
            metrics=out.metrics,
            model_file=str(files["model"]),
            report_file=str(files["report"]),
            session=session,
        )


def try_own(image, mask_choice, drawn, session: Session | None):
    if image is None:
        return None, "Upload or paste an image first."
    if session is None or session.output is None:
        return None, "Run an unlearning first; then any image goes through both models here."
    try:
        return _gpu_try_image(session.output, image, _mask(mask_choice, drawn)), ""
    except UserInputError as e:
        return None, f"**Error:** {e}"


def push_model(repo: str, private: bool, session: Session | None):
    """Upload this session's unlearned model to the Hub with the operator's token."""
    if session is None or session.output is None:
        return "Run an unlearning first."
    repo = (repo or "").strip()
    if PUSH_OWNER and repo.split("/")[0] != PUSH_OWNER:
        return f"**Error:** this app pushes only to repositories of {PUSH_OWNER} ({PUSH_OWNER}/name)."
    try:
        return f"Pushed: {hub.push_run(Path(session.tmp) / 'run', repo, private=bool(private))}"
    except UserInputError as e:
        return f"**Error:** {e}"


def unlearn_api(
    forget: str = "builtin:cat",
    retain: str = "builtin:dog",
    model: str = "mae",
    checkpoint: str = "",
    mask: str = studio.DEFAULT_MASK,
    method: str = "ours",
    alpha: float | None = None,
    steps: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    sampling_steps: int | None = None,
    train_mask: str | None = None,
    fid: bool = False,
) -> dict:
    """Run one unlearning and return its metrics JSON. Sets are built-in names (`builtin:cat`) or
    folders the operator allowed; `checkpoint` empty means the embedded model; `alpha` None means
    the method's default on the model's family; `steps` and `lr` None the model's (as the app shows them);
    `sampling_steps` None the model's sampler default; `train_mask` None the model's (`same`: the
    mask itself, `random`, or a preset); `fid` True adds FID and embed_cos (slower)."""
    try:
        if steps is None or lr is None:
            family = studio.ui_defaults(model, studio.server_checkpoint(checkpoint))
            steps = family.steps if steps is None else steps
            lr = family.lr if lr is None else lr
        spec = studio.make_spec(
            studio.server_source(forget),
            studio.server_source(retain),
            model,
            studio.server_checkpoint(checkpoint),
            studio.server_mask(mask),
            method,
            alpha,
            steps,
            lr,
            seed,
            sampling_steps,
            train_mask,
            fid,
            EVAL_MASKS,
        )
        return _gpu_metrics(spec)
    except (UserInputError, RunFailed) as e:
        raise gr.Error(str(e)) from None


# ------------------------------------------------------------------------------ page


def _set_picker(label: str, default: str, key: str):
    with gr.Group():
        choice = gr.Dropdown([*studio.builtin_sets(), UPLOAD], value=default, label=label, elem_id=f"{key}-choice")
        files = gr.File(
            file_count="multiple", file_types=["image", ".zip"], label="Images or a zip", visible=False, height=120, elem_id=f"{key}-files"
        )
    picture = gr.Image(show_label=False, buttons=[], format="png", interactive=False, height=150, elem_id=f"{key}-preview")
    info = gr.Markdown(elem_id=f"{key}-info")
    return choice, files, picture, info


def _follow(triggers, fn, inputs, outputs):
    """One listener for all of a view's triggers, run one at a time and always on the latest
    values: separate listeners ran concurrently and a stale one could finish last (a drawn mask's
    preview was overwritten by the blank canvas's "paint the region" message)."""
    gr.on(triggers, fn, inputs, outputs, trigger_mode="always_last", concurrency_limit=1, api_visibility="private")


def build_demo() -> gr.Blocks:
    defaults = studio.defaults()
    with gr.Blocks(title="I2I Unlearning Studio", delete_cache=(1800, 3600)) as demo:
        session = gr.State(None, delete_callback=_delete_session, time_to_live=6 * 3600)
        gr.Markdown(
            "# I2I Unlearning Studio\nMake an image-to-image model **forget** a set of images (e.g. cats) while keeping "
            "another (e.g. dogs), with the method of Li et al., *Machine Unlearning for Image-to-Image Generative Models* "
            f"(ICLR 2024). Running on **{studio.device_name()}**."
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                model = gr.Dropdown(studio.model_choices(), value=defaults["model"], label="Model family", elem_id="model")
                checkpoint = gr.Textbox(
                    label="Model source (optional)",
                    placeholder="a checkpoint folder on the server, or a Hugging Face Hub id",
                    info="Empty: the embedded model. Folders: the embedded checkpoints and those named in UNLEARN_ALLOWED_DIRS; "
                    "Hub ids (owner/name): those named in UNLEARN_HUB_MODELS. Press Enter to load.",
                    elem_id="checkpoint",
                )
                method = gr.Dropdown(studio.method_choices(), value=defaults["method"], label="Method", elem_id="method")
                mask = gr.Dropdown(
                    studio.mask_choices() + [(DRAW, DRAW)],
                    value=defaults["mask"],
                    label="Mask (what the model must fill in)",
                    elem_id="mask",
                )
                editor = gr.ImageEditor(
                    value=studio.editor_background(),
                    label="Paint the hidden region in white",
                    visible=False,
                    sources=(),
                    transforms=(),
                    layers=False,
                    brush=gr.Brush(colors=["#ffffff"], color_mode="fixed", default_size=24),
                    canvas_size=(256, 256),
                    format="png",
                    elem_id="mask-editor",
                )
                mask_view = gr.Image(show_label=False, format="png", height=200, interactive=False, buttons=[], elem_id="mask-preview")
                mask_info = gr.Markdown(elem_id="mask-info")
                with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                    alpha = gr.Number(
                        value=defaults["alpha"],
                        minimum=0,
                        label="alpha: weight of the forget term (follows the method and the model family)",
                        elem_id="alpha",
                    )
                    train_mask = gr.Dropdown(
                        studio.train_mask_choices(),
                        value=defaults["train_mask"],
                        label="Training mask (what unlearning trains with; follows the model family)",
                        elem_id="train-mask",
                    )
                    steps = gr.Slider(10, 3000, value=defaults["steps"], step=10, label="Steps", elem_id="steps")
                    lr = gr.Number(value=defaults["lr"], minimum=0, label="Learning rate", elem_id="lr")
                    seed = gr.Number(value=defaults["seed"], precision=0, label="Seed (masks, noise, sampling)", elem_id="seed")
                    sampling = gr.Number(
                        value=defaults["sampling_steps"],
                        precision=0,
                        minimum=1,
                        label="Sampling steps (MaskGIT rounds, DDIM steps; live previews use at most 8)",
                        visible=defaults["sampling_steps"] is not None,
                        elem_id="sampling-steps",
                    )
                    image_metrics = gr.Checkbox(
                        value=defaults["image_metrics"],
                        label="FID and embedding cosine in the results (Inception features; about a minute more on a CPU)",
                        elem_id="image-metrics",
                    )
            with gr.Column(scale=2):
                forget_picker = _set_picker("Forget set", defaults["forget"], "forget")
                retain_picker = _set_picker("Retain set", defaults["retain"], "retain")
        forget_c, forget_f = forget_picker[:2]
        retain_c, retain_f = retain_picker[:2]
        with gr.Row():
            run_btn = gr.Button("Unlearn", variant="primary")
            stop_btn = gr.Button("Stop", variant="stop")
            example_btn = gr.Button("Example: forget cats, keep dogs")
        status = gr.Markdown("Pick the sets, then press **Unlearn**.", elem_id="status")
        with gr.Row(visible=False, elem_id="live") as live_row:
            plot = gr.LinePlot(
                x="step",
                y="loss",
                color="term",
                color_map=studio.LOSS_COLOURS,
                color_title="",
                label="Losses (retain, forget, total)",
                show_label=True,
                elem_id="loss-plot",
                x_title="step",
                y_title="loss",
            )
            preview = gr.Image(
                label="Live outputs: forget (top) and retain (bottom)", format="png", height=320, buttons=[], elem_id="live-preview"
            )
        with gr.Column(visible=False, elem_id="results") as results:
            gr.Markdown("## Results on held-out images\nSame images, mask and seed for both models.")
            compare = gr.Image(show_label=False, format="png", buttons=["download", "fullscreen"], elem_id="compare")
            table = gr.Dataframe(headers=METRIC_HEADERS, label="Metrics", interactive=False, elem_id="metrics-table")
            mask_table = gr.Dataframe(
                headers=studio.MASK_HEADERS,
                label="Probe accuracy under every mask (* the run's mask): forgetting should hold for all",
                interactive=False,
                elem_id="mask-table",
            )
            with gr.Row():
                embedding = gr.Image(
                    label="Encoder embeddings before and after (PCA)",
                    format="png",
                    buttons=["download", "fullscreen"],
                    scale=3,
                    elem_id="embedding",
                )
                gr.Markdown(HOW_IT_WORKS, elem_id="how-it-works")
            with gr.Accordion("metrics.json", open=False):
                metrics_json = gr.JSON(show_label=False)
            with gr.Row():
                model_file = gr.File(label="Unlearned model (zip)", height=80, elem_id="model-file")
                report_file = gr.File(label="Report (HTML)", height=80, elem_id="report-file")
            # Only where the operator configured a Hugging Face token (the uploads use it).
            with gr.Accordion("Share on the Hugging Face Hub", open=False, visible=hub.token() is not None, elem_id="push"):
                with gr.Row():
                    push_repo = gr.Textbox(label="Repository", placeholder=f"{PUSH_OWNER or 'owner'}/my-unlearned-model", scale=3)
                    push_private = gr.Checkbox(label="private", value=True, scale=1)
                push_btn = gr.Button("Push the unlearned model with a model card")
                push_info = gr.Markdown()
            with gr.Accordion("Try your own image", open=False, elem_id="try-own"):
                with gr.Row():
                    own = gr.Image(type="pil", label="Your image", sources=["upload", "clipboard"], image_mode=None, elem_id="own-image")
                    own_out = gr.Image(show_label=False, format="png", buttons=["download"], elem_id="own-result")
                own_info = gr.Markdown()
                own_btn = gr.Button("Run both models on it")

        run_inputs = [forget_c, forget_f, retain_c, retain_f, model, checkpoint, mask, editor]
        run_inputs += [method, alpha, steps, lr, seed, sampling, train_mask, image_metrics, session]
        named = {
            "status": status,
            "plot": plot,
            "preview": preview,
            "live": live_row,
            "results": results,
            "compare": compare,
            "embedding": embedding,
            "table": table,
            "mask_table": mask_table,
            "metrics": metrics_json,
            "model_file": model_file,
            "report_file": report_file,
            "session": session,
        }
        run_outputs = [named[n] for n in RUN_OUTPUTS]
        run_kwargs = dict(concurrency_limit=1, concurrency_id="run", show_progress="hidden", api_visibility="private")
        announce = dict(
            fn=announce_run, inputs=[session], outputs=[status, session], queue=False, show_progress="hidden", api_visibility="private"
        )
        run_btn.click(**announce).then(run_unlearning, run_inputs, run_outputs, **run_kwargs)
        stop_btn.click(stop_run, [session], [status], queue=False, api_visibility="private")
        example_btn.click(
            lambda: (
                ("builtin:cat", "builtin:dog", defaults["model"], "", defaults["mask"], defaults["method"], defaults["alpha"])
                + (defaults["steps"], defaults["lr"], defaults["seed"], defaults["sampling_steps"], defaults["train_mask"])
                + (defaults["image_metrics"],)
            ),
            None,
            [forget_c, retain_c, model, checkpoint, mask, method, alpha, steps, lr, seed, sampling, train_mask, image_metrics],
            queue=False,
            api_visibility="private",
        ).then(**announce).then(run_unlearning, run_inputs, run_outputs, **run_kwargs)
        method.change(method_default_alpha, [method, model, checkpoint, session], [alpha], queue=False, api_visibility="private")
        # On the user's own choice only (`input`, not `change`): a change event at page load could
        # land after the user edited the steps and overwrite them; the example sets every field.
        for trigger in (model.input, checkpoint.submit):
            trigger(
                model_defaults,
                [model, checkpoint, method, session],
                [train_mask, steps, lr, sampling, alpha],
                queue=False,
                api_visibility="private",
            )
        mask_triggers = [demo.load, mask.change, editor.change, editor.input, editor.apply, model.change, checkpoint.submit, seed.change]
        _follow(mask_triggers, show_mask, [mask, editor, model, checkpoint, seed, session], [editor, mask_view, mask_info])
        push_btn.click(push_model, [push_repo, push_private, session], [push_info], api_visibility="private")
        own_btn.click(try_own, [own, mask, editor, session], [own_out, own_info], api_name="try_image", api_visibility="private")
        for choice, files, picture, info in (forget_picker, retain_picker):
            set_triggers = [demo.load, choice.change, files.change, model.change, checkpoint.submit]
            _follow(set_triggers, show_set, [choice, files, model, checkpoint, session], [files, picture, info])
        gr.api(unlearn_api, api_name="unlearn", concurrency_limit=1, concurrency_id="run")
    return demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=4)


demo = build_demo()


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # gradio closes the server on it; atexit then removes the workspace


if __name__ == "__main__":
    sessions.remove_stale_workspaces()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    threading.Thread(target=_sweep_forever, name="sweep-sessions", daemon=True).start()
    if not zerogpu.available() and os.environ.get("UNLEARN_WARM_UP", "1") != "0":  # on ZeroGPU runs measure on the GPU
        threading.Thread(target=lambda: print(studio.warm_up(EVAL_MASKS), flush=True), name="warm-up", daemon=True).start()
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_UPLOAD,
        share=False,
    )
