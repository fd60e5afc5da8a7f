"""I2I Unlearning Studio: the web app.

Thin by design: this file builds the page and wires events to `unlearn_core`; all tensor work
happens in the library. Run with `python app.py` (127.0.0.1:7860, or GRADIO_SERVER_NAME /
GRADIO_SERVER_PORT). Per-visitor state lives in `gr.State`; one unlearning run at a time goes
through the queue while other visitors keep browsing and generating.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import shutil  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from unlearn_core import studio  # noqa: E402
from unlearn_core.errors import RunFailed, UserInputError  # noqa: E402

UPLOAD = "my images (upload)"
DRAW = "draw my own"
MAX_UPLOAD = "20mb"
QUEUE_SIZE = 16
UPDATE_SECONDS = 1.0  # live plot and preview refresh; more often slows a CPU run down
LOSS_COLUMNS = ["step", "loss", "term"]
METRIC_HEADERS = ["set", "metric", "original", "unlearned", "change"]


@dataclass
class Session:
    """One visitor's run: the live run (for Stop), the finished output, and its temp folder."""

    live: object | None = None
    output: object | None = None
    tmp: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="unlearn-studio-"))

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _delete_session(session: Session | None) -> None:
    if session is not None:
        if session.live is not None:
            session.live.stop()
        session.cleanup()


# ------------------------------------------------------------------------------ handlers


def _source(choice: str, files: list[str] | None):
    if choice == UPLOAD:
        if not files:
            raise UserInputError("upload some images (or a zip) first, or pick a built-in set")
        return list(files)
    return choice


def show_set(choice: str, files: list[str] | None, model: str, checkpoint: str):
    """Gallery and count for a forget/retain choice."""
    if choice == UPLOAD and not files:
        return gr.update(visible=True), [], "Upload images or a zip (PNG, JPEG, WebP, BMP, GIF, TIFF)."
    try:
        images, text = studio.set_preview(_source(choice, files), model, checkpoint or None)
    except UserInputError as e:
        return gr.update(visible=choice == UPLOAD), [], f"**Error:** {e}"
    return gr.update(visible=choice == UPLOAD), images, text


def _mask(choice: str, drawn):
    if choice != DRAW:
        return choice
    return studio.mask_from_editor(drawn)


def show_mask(choice: str, drawn, model: str, checkpoint: str):
    editor = gr.update(visible=choice == DRAW)
    if choice == DRAW and not studio.editor_has_strokes(drawn):
        return editor, None, "Paint the region to generate in white over the sample, then it is used as the mask."
    try:
        return editor, studio.mask_preview(_mask(choice, drawn), model, checkpoint or None), studio.mask_description(choice)
    except UserInputError as e:
        return editor, None, f"**Error:** {e}"


def _loss_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(studio.loss_long_rows(rows), columns=LOSS_COLUMNS)
    return frame.astype({"step": "int64", "loss": "float64", "term": "string"})


def run_unlearning(fc, ff, rc, rf, model, checkpoint, mask_choice, drawn, method, alpha, steps, lr, seed, session, progress=gr.Progress()):
    """Generator: streams status, loss plot, previews, then results and downloads."""
    session = session or Session()
    blank = (gr.skip(),) * 5
    try:
        spec = studio.make_spec(
            _source(fc, ff), _source(rc, rf), model, checkpoint or None, _mask(mask_choice, drawn), method, alpha, steps, lr, seed
        )
        live = studio.start(spec)
    except UserInputError as e:
        yield f"**Error:** {e}", gr.skip(), gr.skip(), *blank, session
        return
    session.live, session.output = live, None
    # No empty frame for the plot: gradio's LinePlot draws no lines after an empty first value.
    yield "Starting...", gr.skip(), live.original_preview(), None, None, None, None, None, session
    for update in live.updates(interval=UPDATE_SECONDS):
        progress((update.step, update.total_steps), desc="unlearning")
        if update.error:
            yield f"**Run failed:** {update.error}. The original model is unchanged.", gr.skip(), gr.skip(), *blank, session
            break
        if update.output is None:
            status = f"Step {update.step} / {update.total_steps}" + (" (stopping...)" if live.stopping else "")
            yield status, _loss_frame(update.rows), update.preview or gr.skip(), *blank, session
            continue
        out = update.output
        session.output = out
        files = studio.export(out, session.tmp)
        yield (
            studio.summary(out),
            _loss_frame(update.rows),
            update.preview or gr.skip(),
            out.compare,
            pd.DataFrame(studio.metrics_rows(out.metrics), columns=METRIC_HEADERS),
            out.metrics,
            str(files["model"]),
            str(files["report"]),
            session,
        )
    session.live = None


def stop_run(session: Session | None):
    if session is None or session.live is None:
        return "Nothing is running."
    session.live.stop()
    return "Stopping after the current step..."


def try_own(image, mask_choice, drawn, session: Session | None):
    if image is None:
        return None, "Upload or paste an image first."
    if session is None or session.output is None:
        return None, "Run an unlearning first; then any image goes through both models here."
    try:
        return studio.try_image(session.output, image, _mask(mask_choice, drawn)), ""
    except UserInputError as e:
        return None, f"**Error:** {e}"


def unlearn_api(
    forget: str = "builtin:cat",
    retain: str = "builtin:dog",
    model: str = "mae",
    mask: str = studio.DEFAULT_MASK,
    method: str = "ours",
    alpha: float | None = None,
    steps: int = studio.DEFAULT_STEPS,
    lr: float = studio.DEFAULT_LR,
    seed: int = 0,
) -> dict:
    """Run one unlearning on built-in sets or server-side folders and return its metrics JSON."""
    try:
        spec = studio.make_spec(forget, retain, model, None, mask, method, alpha, steps, lr, seed)
        return studio.run_to_end(spec).metrics
    except (UserInputError, RunFailed) as e:
        raise gr.Error(str(e)) from None


# ------------------------------------------------------------------------------ page


def _set_picker(label: str, default: str, model, checkpoint):
    with gr.Group():
        choice = gr.Dropdown([*studio.builtin_sets(), UPLOAD], value=default, label=label)
        files = gr.File(file_count="multiple", file_types=["image", ".zip"], label="Images or a zip", visible=False, height=120)
    gallery = gr.Gallery(columns=8, rows=2, height=150, label=f"{label}: preview", format="png", allow_preview=False)
    info = gr.Markdown()
    for trigger in (choice.change, files.change):
        trigger(show_set, [choice, files, model, checkpoint], [files, gallery, info], api_visibility="private")
    return choice, files, gallery, info


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
            with gr.Column(scale=1):
                model = gr.Dropdown(studio.model_choices(), value=defaults["model"], label="Model family")
                checkpoint = gr.Textbox(label="Or a checkpoint folder on the server", placeholder="e.g. runs/cat/model (optional)")
                method = gr.Dropdown(studio.method_choices(), value=defaults["method"], label="Method")
                mask = gr.Dropdown(
                    studio.mask_choices() + [(DRAW, DRAW)], value=defaults["mask"], label="Mask (what the model must fill in)"
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
                )
                mask_view = gr.Image(label="Mask on a sample (blue = generated)", format="png", height=200, interactive=False)
                mask_info = gr.Markdown()
                with gr.Accordion("Advanced", open=False):
                    alpha = gr.Number(value=None, label="alpha (forget weight; empty = method default)")
                    steps = gr.Slider(10, 3000, value=defaults["steps"], step=10, label="Steps")
                    lr = gr.Number(value=defaults["lr"], label="Learning rate")
                    seed = gr.Number(value=0, precision=0, label="Seed")
            with gr.Column(scale=2):
                forget_picker = _set_picker("Forget set", defaults["forget"], model, checkpoint)
                retain_picker = _set_picker("Retain set", defaults["retain"], model, checkpoint)
        forget_c, forget_f = forget_picker[:2]
        retain_c, retain_f = retain_picker[:2]
        with gr.Row():
            run_btn = gr.Button("Unlearn", variant="primary")
            stop_btn = gr.Button("Stop", variant="stop")
            example_btn = gr.Button("Example: forget cats, keep dogs")
        status = gr.Markdown("Pick the sets, then press **Unlearn**.", elem_id="status")
        with gr.Row():
            plot = gr.LinePlot(
                x="step", y="loss", color="term", label="Losses", height=260, elem_id="loss-plot", x_title="step", y_title="loss"
            )
            preview = gr.Image(label="Live outputs: forget (top) and retain (bottom)", format="png", height=320, elem_id="live-preview")
        gr.Markdown("## Results on held-out images")
        compare = gr.Image(label="masked input | original | unlearned | ground truth", format="png", elem_id="compare")
        table = gr.Dataframe(headers=METRIC_HEADERS, label="Metrics", interactive=False)
        metrics_json = gr.JSON(label="metrics.json", open=False)
        with gr.Row():
            model_file = gr.File(label="Unlearned model (zip)")
            report_file = gr.File(label="Report (HTML)")
        with gr.Accordion("Try your own image", open=False):
            with gr.Row():
                own = gr.Image(type="pil", label="Your image", sources=["upload", "clipboard"], image_mode=None)
                own_out = gr.Image(label="masked | original | unlearned | yours", format="png")
            own_info = gr.Markdown()
            own_btn = gr.Button("Run both models")

        run_inputs = [forget_c, forget_f, retain_c, retain_f, model, checkpoint, mask, editor, method, alpha, steps, lr, seed, session]
        run_outputs = [status, plot, preview, compare, table, metrics_json, model_file, report_file, session]
        run_kwargs = dict(concurrency_limit=1, concurrency_id="run", show_progress_on=[status], api_visibility="private")
        run_btn.click(run_unlearning, run_inputs, run_outputs, **run_kwargs)
        stop_btn.click(stop_run, [session], [status], queue=False, api_visibility="private")
        example_btn.click(
            lambda: (
                "builtin:cat",
                "builtin:dog",
                defaults["model"],
                "",
                defaults["mask"],
                defaults["method"],
                None,
                defaults["steps"],
                defaults["lr"],
                0,
            ),
            None,
            [forget_c, retain_c, model, checkpoint, mask, method, alpha, steps, lr, seed],
            queue=False,
            api_visibility="private",
        ).then(run_unlearning, run_inputs, run_outputs, **run_kwargs)
        for trigger in (mask.change, editor.change, editor.input, editor.apply, model.change):
            trigger(show_mask, [mask, editor, model, checkpoint], [editor, mask_view, mask_info], api_visibility="private")
        own_btn.click(try_own, [own, mask, editor, session], [own_out, own_info], api_name="try_image", api_visibility="private")
        demo.load(show_mask, [mask, editor, model, checkpoint], [editor, mask_view, mask_info], api_visibility="private")
        for choice, files, gallery, info in (forget_picker, retain_picker):
            demo.load(show_set, [choice, files, model, checkpoint], [files, gallery, info], api_visibility="private")
        gr.api(unlearn_api, api_name="unlearn", concurrency_limit=1, concurrency_id="run")
    return demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=4)


demo = build_demo()

if __name__ == "__main__":
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_UPLOAD,
        share=False,
    )
