"""I2I Unlearning Studio: the web app. Layout and wiring only: runs, audits, session state,
folders and reports live in `unlearn_core.serving`. `python app.py` serves 127.0.0.1:7860 (or
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT); one run or audit at a time goes through the queue, and
every visitor's files live in one temporary folder per process, removed when the app stops."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import signal  # noqa: E402
from contextlib import closing  # noqa: E402

from unlearn_core.serving import session as sessions  # noqa: E402
from unlearn_core.serving.session import Session, workspace  # noqa: E402

# Gradio's own cache (uploads, images and files sent to browsers) goes inside the workspace too,
# so that stopping the app leaves nothing behind, unless the operator chose a folder for it.
os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(workspace(), "gradio"))

import gradio as gr  # noqa: E402

from unlearn_core.compute.device import serve_threads  # noqa: E402
from unlearn_core.errors import RunFailed, UserInputError  # noqa: E402
from unlearn_core.models import get_family  # noqa: E402
from unlearn_core.serving import auditing, history, hub, runs, studio, zerogpu  # noqa: E402

if __name__ == "__main__":  # serving: runs take all CPU threads in their own thread, the rest one each
    serve_threads()

MAX_UPLOAD = "20mb"
QUEUE_SIZE = 16
RUN_OUTPUTS = runs.RUN_OUTPUTS  # what `run_unlearning` yields, one value per output component
# The operator's settings (docs/app.md, 'Environment variables'), passed to the library with each call:
EVAL_MASKS = os.environ.get("UNLEARN_EVAL_MASKS")  # the per-mask table's masks; unset: every preset
PUSH_OWNER = os.environ.get("UNLEARN_HUB_PUSH_OWNER", "").strip()  # the only owner visitors may push to
# Idle session folders go after SESSION_MAX_AGE seconds; over OUTPUTS_MAX_MB in all, the oldest go first.
SESSION_MAX_AGE = int(os.environ.get("UNLEARN_SESSION_MAX_AGE", "3600"))
OUTPUTS_MAX_MB = int(os.environ.get("UNLEARN_OUTPUTS_MAX_MB", "2048"))
RUNS_DIR = os.environ.get("UNLEARN_RUNS_DIR") or None  # every visitor's run history there survives a restart
# ------------------------------------------------------------------------------ handlers


def sweep_sessions(now: float | None = None) -> list[str]:
    """Remove idle session folders and, over the size cap, the oldest; returns what was removed."""
    return sessions.sweep_sessions(SESSION_MAX_AGE, OUTPUTS_MAX_MB, now)


def show_set(choice: str, files: list[str] | None, model: str, checkpoint: str, session: Session | None = None):
    """Preview picture and count for a forget/retain choice; the file box shows for uploads."""
    return gr.update(visible=choice == runs.UPLOAD), *runs.set_view(choice, files, model, checkpoint, session)


def show_mask(choice: str, drawn, model: str, checkpoint: str, seed=0, session: Session | None = None):
    """The mask on a sample image; the editor shows for a drawn mask."""
    return gr.update(visible=choice == runs.DRAW), *runs.mask_view(choice, drawn, model, checkpoint, seed, session)


def family_notes(model: str):
    """The model family's known limit (before a run) and its 'how it works' text."""
    try:
        return runs.family_warning(model), runs.how_it_works(model)
    except UserInputError:
        return gr.skip(), gr.skip()


def model_defaults(model: str, checkpoint: str, method: str = "ours", session: Session | None = None, recipe: str = "demo"):
    """Training mask, steps, learning rate, sampling steps and alpha follow the model family and the
    settings (`recipe`, the demo's or the official code's): they show what a run with them uses."""
    d = runs.field_defaults(model, checkpoint, method, session, recipe)
    if d is None:
        return (gr.skip(),) * 5
    sampling = gr.update(value=d.sampling_steps, visible=d.sampling_steps is not None, maximum=d.max_sampling_steps)
    return d.train_mask, d.steps, d.lr, sampling, d.alpha


def method_fields(method: str, model: str, checkpoint: str = "", session: Session | None = None, recipe: str = "demo"):
    """Alpha and the training mask follow the method as well (FT trains with random masks)."""
    train_mask, *_, alpha = model_defaults(model, checkpoint, method, session, recipe)
    return alpha, train_mask


def _output(name: str, value):
    if value is None or value is runs.CLEAR:  # None: leave the component as it is; CLEAR: empty it
        return gr.skip() if value is None else None
    if name in ("live", "results"):
        return gr.update(visible=value)
    if name == "compare_mask":
        return gr.update(choices=value, value=value[0])
    return value


def _outputs(view, names=RUN_OUTPUTS) -> tuple:
    """One value per component of `names` (a run's or an audit's outputs): None leaves it, CLEAR empties it."""
    return tuple(_output(name, getattr(view, name)) for name in names)


def run_unlearning(session: Session | None = None, key: str | None = None, **form):
    """Generator: the run the page's fields ask for (`runs.RunForm`, by name), streaming status (our
    progress bar: gradio's own took CPU in the browser, docs/BENCHMARKS.md), loss plot, previews,
    then results and downloads."""
    limits = dict(eval_masks=EVAL_MASKS, max_age=SESSION_MAX_AGE, max_mb=OUTPUTS_MAX_MB, runs_dir=RUNS_DIR, key=key)
    with closing(runs.run_session(runs.RunForm(**form), session, **limits)) as views:  # closed with this one: the run stops
        for view in views:
            yield _outputs(view)


def audit_run(chosen: list[str], session: Session | None = None):
    """Generator: the Audit's attacks on the session's last run, streaming progress, then the
    verdicts and plots (and the run's metrics.json, zip and report with the audit added)."""
    with closing(auditing.audit_session(session, chosen)) as views:  # closed with this one: the audit stops
        for view in views:
            yield _outputs(view, auditing.AUDIT_OUTPUTS)


def list_runs(session: Session | None = None, key: str | None = None):
    """The Runs tab: the visitor's runs, newest first, with the two latest picked as B and A."""
    frame, choices = history.listing(session, RUNS_DIR, key)
    return frame, *(gr.update(choices=choices, value=choices[i][1] if len(choices) > i else None) for i in (1, 0))


def compare_runs(a: str | None, b: str | None, session: Session | None = None, key: str | None = None):
    """Two of the visitor's runs side by side: what the picture shows, the picture, the differences."""
    return history.compare_view(session, RUNS_DIR, key, a, b)


def push_model(repo: str, private: bool, session: Session | None):
    """Upload this session's unlearned model to the Hub with the operator's token."""
    return runs.push_model(repo, private, session, owner=PUSH_OWNER)


def unlearn_api(forget: str = "builtin:cat", retain: str = "builtin:dog", model: str = runs.DEFAULT_MODEL, checkpoint: str = "",
                mask: str = get_family(runs.DEFAULT_MODEL).defaults.mask, method: str = "ours", alpha: float | None = None,
                steps: int | None = None, lr: float | None = None, seed: int = 0, sampling_steps: int | None = None,
                train_mask: str | None = None, fid: bool = False, per_mask: bool = False) -> dict:  # fmt: skip
    """Run one unlearning and return its metrics JSON. Sets: built-in names or folders the operator
    allowed; None or empty fields take the defaults the app shows (`checkpoint`: the embedded model;
    `train_mask`: the model's, `same`, `random` or a preset); `fid` adds FID and embed_cos, `per_mask`
    the figures under every mask of the page's per-mask table ("masks"; both slower)."""
    try:
        spec = runs.api_spec(
            forget=forget, retain=retain, model=model, checkpoint=checkpoint, mask=mask, method=method, alpha=alpha, steps=steps,
            lr=lr, seed=seed, sampling_steps=sampling_steps, train_mask=train_mask, fid=fid, eval_masks=EVAL_MASKS if per_mask else "",
        )  # fmt: skip
        return runs.gpu_metrics(spec, per_mask)
    except (UserInputError, RunFailed) as e:
        raise gr.Error(str(e)) from None


# ------------------------------------------------------------------------------ page


def _set_picker(label: str, default: str, key: str) -> dict:
    with gr.Group():
        choice = gr.Dropdown([*studio.builtin_sets(), runs.UPLOAD], value=default, label=label, elem_id=f"{key}-choice")
        upload = dict(file_count="multiple", file_types=["image", ".zip"], label="Images or a zip", visible=False, height=120)
        files = gr.File(**upload, elem_id=f"{key}-files")
    picture = gr.Image(show_label=False, buttons=[], format="png", interactive=False, height=150, elem_id=f"{key}-preview")
    return {"choice": choice, "files": files, "picture": picture, "info": gr.Markdown(elem_id=f"{key}-info")}


def _model_fields(form: runs.RunForm) -> dict:
    """Model family, model source, method and mask (a preset, or painted in the editor)."""
    ui = {"model": gr.Dropdown(studio.model_choices(), value=form.model, label="Model family", elem_id="model")}
    ui["family_warning"] = gr.Markdown(runs.family_warning(form.model), elem_id="family-warning")
    info = "Empty: the embedded model. Otherwise a checkpoint folder or Hugging Face Hub id (owner/name) this server offers. Press Enter to load."
    ui["checkpoint"] = gr.Textbox(label="Model source (optional)", placeholder="a checkpoint folder on the server, or a Hugging Face Hub id",
                                  info=info, elem_id="checkpoint")  # fmt: skip
    ui["method"] = gr.Dropdown(studio.method_choices(), value=form.method, label="Method", elem_id="method")
    masks = studio.mask_choices() + [(runs.DRAW, runs.DRAW)]
    ui["mask_choice"] = gr.Dropdown(masks, value=form.mask_choice, label="Mask (what the model must fill in)", elem_id="mask")
    brush = gr.Brush(colors=[studio.BRUSH_COLOUR], color_mode="fixed", default_size=24)
    ui["drawn"] = gr.ImageEditor(value=studio.editor_background(), label="Paint the region the model must fill in", visible=False,
                                 sources=(), transforms=(), layers=False, brush=brush, canvas_size=(256, 256), format="png",
                                 elem_id="mask-editor")  # fmt: skip
    ui["mask_view"] = gr.Image(show_label=False, format="png", height=200, interactive=False, buttons=[], elem_id="mask-preview")
    ui["mask_info"] = gr.Markdown(elem_id="mask-info")
    return ui


def _advanced_fields(form: runs.RunForm) -> dict:
    """The settings under Advanced; those that follow the model family say so."""
    alpha_label = "alpha: weight of the forget term (follows the method and the model family)"
    train_label = "Training mask (what unlearning trains with; follows the model family)"
    sampling_label = "Sampling steps (MaskGIT rounds, DDIM steps; live previews use at most 8)"
    metrics_label = "FID and embedding cosine in the results (Inception features; about a minute more on a CPU)"
    sampling = dict(value=form.sampling, precision=0, minimum=1)
    with gr.Accordion("Advanced", open=False, elem_id="advanced"):
        return {
            "recipe": gr.Radio(studio.RECIPE_CHOICES, value="demo", label=studio.RECIPE_LABEL, elem_id="recipe"),
            "alpha": gr.Number(value=form.alpha, minimum=0, label=alpha_label, elem_id="alpha"),
            "train_mask": gr.Dropdown(studio.train_mask_choices(), value=form.train_mask, label=train_label, elem_id="train-mask"),
            "steps": gr.Slider(10, 3000, value=form.steps, step=10, label="Steps", elem_id="steps"),
            "lr": gr.Number(value=form.lr, minimum=0, label="Learning rate", elem_id="lr"),
            "seed": gr.Number(value=form.seed, precision=0, label="Seed (masks, noise, sampling)", elem_id="seed"),
            "sampling": gr.Number(**sampling, label=sampling_label, visible=form.sampling is not None, elem_id="sampling-steps"),
            "image_metrics": gr.Checkbox(value=form.image_metrics, label=metrics_label, elem_id="image-metrics"),
        }


def _live_row(form: runs.RunForm) -> dict:
    with gr.Row(visible=False, elem_id="live") as live:
        plot = gr.LinePlot(x="step", y="loss", color="term", color_map=studio.LOSS_COLOURS, color_title="", show_label=True,
                           label=runs.loss_legend(form.method, form.alpha), elem_id="loss-plot", x_title="step", y_title="loss")  # fmt: skip
        preview_label = "Live outputs: forget (top) and retain (bottom)"
        preview = gr.Image(label=preview_label, format="png", height=320, buttons=[], elem_id="live-preview")
    return {"live": live, "plot": plot, "preview": preview}


def _results(form: runs.RunForm) -> dict:
    """The results of a run, then sharing it on the Hub and trying one's own image."""
    ui = {}
    with gr.Column(visible=False, elem_id="results") as ui["results"]:
        gr.Markdown(f"## Results on held-out images\nSame images, mask and seed for both models. {runs.CHANGE_NOTE}")
        mask = form.mask_choice
        ui["compare_mask"] = gr.Radio([mask], value=mask, label="Show the pictures under the mask", elem_id="compare-mask")
        ui["compare"] = gr.Image(show_label=False, format="png", buttons=["download", "fullscreen"], elem_id="compare")
        ui["table"] = gr.Dataframe(headers=runs.METRIC_HEADERS, label="Metrics", interactive=False, elem_id="metrics-table")
        mask_label = "Probe score and change under every mask: " + runs.MASK_TABLE_NOTE
        ui["mask_table"] = gr.Dataframe(headers=runs.MASK_HEADERS, label=mask_label, interactive=False, wrap=True, elem_id="mask-table")
        with gr.Row():
            embedding = dict(label="Encoder embeddings before and after (PCA)", buttons=["download", "fullscreen"], scale=3)
            ui["embedding"] = gr.Image(**embedding, format="png", elem_id="embedding")
            ui["how_it_works"] = gr.Markdown(runs.how_it_works(form.model), elem_id="how-it-works")
        with gr.Accordion("metrics.json", open=False):
            ui["metrics"] = gr.JSON(show_label=False)
        with gr.Row():
            ui["model_file"] = gr.File(label="Unlearned model (zip)", height=80, elem_id="model-file")
            ui["report_file"] = gr.File(label="Report (HTML)", height=80, elem_id="report-file")
        # Only where the operator configured a Hugging Face token (the uploads use it).
        with gr.Accordion("Share on the Hugging Face Hub", open=False, visible=hub.token() is not None, elem_id="push"):
            with gr.Row():
                ui["repo"] = gr.Textbox(label="Repository", placeholder=f"{PUSH_OWNER or 'owner'}/my-unlearned-model", scale=3)
                ui["private"] = gr.Checkbox(label="private", value=True, scale=1)
            ui["push_btn"] = gr.Button("Push the unlearned model with a model card")
            ui["push_info"] = gr.Markdown()
        with gr.Accordion("Try your own image", open=False, elem_id="try-own"):
            with gr.Row():
                own = dict(type="pil", label="Your image", sources=["upload", "clipboard"], image_mode=None)
                ui["image"] = gr.Image(**own, elem_id="own-image")
                ui["own_out"] = gr.Image(show_label=False, format="png", buttons=["download"], elem_id="own-result")
            ui["own_info"] = gr.Markdown()
            ui["own_btn"] = gr.Button("Run both models on it")
    return ui


def _audit_tab() -> dict:
    """Attacks on the last run (`auditing`): which ones, start and stop, progress, verdicts, plots."""
    gr.Markdown(auditing.AUDIT_NOTE)
    ui = {"attacks": gr.CheckboxGroup(auditing.ATTACK_CHOICES, value=[v for _, v in auditing.ATTACK_CHOICES], label="Attacks")}
    with gr.Row():
        ui["audit_btn"], ui["audit_stop"] = gr.Button("Audit the last run", variant="primary"), gr.Button("Stop", variant="stop")
    ui["audit_status"] = gr.Markdown("Run an unlearning, then audit it here.", elem_id="audit-status")
    ui["audit_verdicts"] = gr.Markdown(elem_id="audit-verdicts")
    ui["audit_plots"] = gr.Gallery(columns=2, height="auto", show_label=False, object_fit="contain", elem_id="audit-plots")
    return ui


def _runs_tab() -> dict:
    """The visitor's run history and a comparison of any two runs."""
    gr.Markdown(history.RUNS_NOTE)
    ui = {"runs_table": gr.Dataframe(headers=history.HEADERS, interactive=False, wrap=True, elem_id="runs-table")}
    with gr.Row():
        ui["run_a"], ui["run_b"] = gr.Dropdown([], label="Run A", elem_id="run-a"), gr.Dropdown([], label="Run B", elem_id="run-b")
        ui["compare_btn"] = gr.Button("Compare", variant="primary", elem_id="compare-btn")
    ui["runs_note"] = gr.Markdown(elem_id="runs-note")
    ui["runs_picture"] = gr.Image(show_label=False, format="png", buttons=["download", "fullscreen"], elem_id="runs-picture")
    ui["runs_figures"] = gr.Dataframe(headers=history.FIGURE_HEADERS, interactive=False, elem_id="runs-figures")
    return ui


def _wire_run(ui: dict, form: runs.RunForm) -> None:
    """Unlearn, Stop and the Example (which sets the forget and retain sets to cats and dogs,
    saying so, and runs with everything else as the page shows it)."""
    session, quick = {"session": ui["session"]}, dict(queue=False, api_visibility="private")
    run = dict(
        fn=run_unlearning,
        inputs_kwargs={name: ui[name] for name in (*runs.FORM_FIELDS, "session", "key")},
        outputs=[ui[name] for name in RUN_OUTPUTS],
        concurrency_limit=1,
        concurrency_id="run",
        show_progress="hidden",
        api_visibility="private",
    )
    announce = dict(fn=sessions.announce_run, inputs_kwargs=session, outputs=[ui["status"], ui["session"]], **quick, show_progress="hidden")
    listing = dict(fn=list_runs, inputs_kwargs=dict(key=ui["key"], **session), outputs=[ui[n] for n in ("runs_table", "run_a", "run_b")])
    ui["run_btn"].click(**announce).then(**run).then(**listing, **quick)
    ui["runs_tab"].select(**listing, **quick)
    pair = dict(a=ui["run_a"], b=ui["run_b"], key=ui["key"], **session)
    shown = [ui[n] for n in ("runs_note", "runs_picture", "runs_figures")]
    ui["compare_btn"].click(compare_runs, inputs_kwargs=pair, outputs=shown, concurrency_id="run", api_visibility="private")
    ui["stop_btn"].click(sessions.stop_run, inputs_kwargs=session, outputs=[ui["status"]], **quick)
    sets = {"fc": ui["fc"], "rc": ui["rc"]}
    example = dict(fn=runs.example_sets, inputs_kwargs=sets, outputs=[ui["fc"], ui["rc"], ui["example_info"]], **quick)
    ui["example_btn"].click(**example).then(**announce).then(**run).then(**listing, **quick)
    audit = dict(fn=audit_run, inputs_kwargs=dict(chosen=ui["attacks"], **session), outputs=[ui[n] for n in auditing.AUDIT_OUTPUTS])
    ui["audit_btn"].click(**audit, concurrency_limit=1, concurrency_id="run", show_progress="hidden", api_visibility="private")
    ui["audit_stop"].click(sessions.stop_run, inputs_kwargs=session, outputs=[ui["audit_status"]], **quick)


def _follow(triggers, fn, outputs, **inputs) -> None:
    """One listener for all of a view's triggers, run one at a time and always on the latest
    values: separate listeners ran concurrently and a stale one could finish last (a drawn mask's
    preview was overwritten by the blank canvas's "paint the region" message)."""
    gr.on(triggers, fn, inputs_kwargs=inputs, outputs=outputs, trigger_mode="always_last", concurrency_limit=1, api_visibility="private")


def _wire_fields(demo: gr.Blocks, ui: dict, pickers: tuple[dict, dict]) -> None:
    """Fields that follow others (alpha the method; the family's settings the model), the mask and
    set previews, pushing to the Hub and trying one's own image."""
    model, checkpoint, method, session = ui["model"], ui["checkpoint"], ui["method"], ui["session"]
    common = dict(queue=False, api_visibility="private")
    names = dict(model=model, checkpoint=checkpoint, session=session)
    recipe = ui["recipe"]
    method.change(
        method_fields, inputs_kwargs=dict(method=method, recipe=recipe, **names), outputs=[ui["alpha"], ui["train_mask"]], **common
    )
    legend = dict(inputs_kwargs=dict(method=method, alpha=ui["alpha"]), outputs=[ui["plot"]], **common)
    gr.on([method.change, ui["alpha"].change], lambda method, alpha: gr.update(label=runs.loss_legend(method, alpha)), **legend)
    model.change(family_notes, inputs_kwargs=dict(model=model), outputs=[ui["family_warning"], ui["how_it_works"]], **common)
    example_label = dict(inputs_kwargs=dict(model=model, mask_choice=ui["mask_choice"]), outputs=[ui["example_btn"]], **common)
    gr.on([model.change, ui["mask_choice"].change], runs.example_label, **example_label)
    compare = dict(inputs_kwargs=dict(mask=ui["compare_mask"], session=session), outputs=[ui["compare"]], **common)
    ui["compare_mask"].input(runs.compare_under, **compare)
    # On the user's own choice only (`input`, not `change`): a change event at page load could
    # land after the user edited the steps and overwrite them.
    family_fields = [ui[name] for name in ("train_mask", "steps", "lr", "sampling", "alpha")]
    for trigger in (model.input, checkpoint.submit, recipe.input):
        trigger(model_defaults, inputs_kwargs=dict(method=method, recipe=recipe, **names), outputs=family_fields, **common)
    mask, editor, seed = ui["mask_choice"], ui["drawn"], ui["seed"]
    mask_triggers = [demo.load, mask.change, editor.change, editor.input, editor.apply, model.change, checkpoint.submit, seed.change]
    _follow(mask_triggers, show_mask, [editor, ui["mask_view"], ui["mask_info"]], choice=mask, drawn=editor, seed=seed, **names)
    push = dict(repo=ui["repo"], private=ui["private"], session=session)
    ui["push_btn"].click(push_model, inputs_kwargs=push, outputs=[ui["push_info"]], api_visibility="private")
    own = dict(image=ui["image"], mask_choice=mask, drawn=editor, session=session)
    ui["own_btn"].click(
        runs.try_own, inputs_kwargs=own, outputs=[ui["own_out"], ui["own_info"]], api_name="try_image", api_visibility="private"
    )
    for p in pickers:
        set_triggers = [demo.load, p["choice"].change, p["files"].change, model.change, checkpoint.submit]
        _follow(set_triggers, show_set, [p["files"], p["picture"], p["info"]], choice=p["choice"], files=p["files"], **names)


def build_demo() -> gr.Blocks:
    form = runs.default_form()
    with gr.Blocks(title="I2I Unlearning Studio", delete_cache=(1800, 3600)) as demo:
        ui = {"session": gr.State(None, delete_callback=sessions.delete_session, time_to_live=6 * 3600)}
        ui["key"] = gr.BrowserState("", storage_key="unlearn-runs-key", secret=history.browser_secret(RUNS_DIR))  # its run history's
        demo.load(history.new_key, inputs=ui["key"], outputs=ui["key"], queue=False, api_visibility="private")
        gr.Markdown(
            "# I2I Unlearning Studio\nMake an image-to-image model **forget** a set of images (e.g. cats) while keeping "
            "another (e.g. dogs), with the method of Li et al., *Machine Unlearning for Image-to-Image Generative Models* "
            f"(ICLR 2024). Running on **{studio.device_name()}**."
        )
        with gr.Tab("Unlearn", elem_id="tab-unlearn"):
            with gr.Row():
                with gr.Column(scale=1, min_width=320):
                    ui |= _model_fields(form) | _advanced_fields(form)
                with gr.Column(scale=2):
                    forget = _set_picker("Forget set", form.fc, "forget")
                    retain = _set_picker("Retain set", form.rc, "retain")
            ui |= {"fc": forget["choice"], "ff": forget["files"], "rc": retain["choice"], "rf": retain["files"]}
            with gr.Row():
                ui["run_btn"] = gr.Button("Unlearn", variant="primary")
                ui["stop_btn"] = gr.Button("Stop", variant="stop")
                ui["example_btn"] = gr.Button(runs.example_label(form.model, form.mask_choice), elem_id="example")
            ui["example_info"] = gr.Markdown(elem_id="example-info")
            ui["status"] = gr.Markdown("Pick the sets, then press **Unlearn**.", elem_id="status")
            ui |= _live_row(form) | _results(form)
        with gr.Tab("Audit", elem_id="tab-audit"):
            ui |= _audit_tab()
        with gr.Tab("Runs", elem_id="tab-runs") as ui["runs_tab"]:
            ui |= _runs_tab()
        _wire_run(ui, form)
        _wire_fields(demo, ui, (forget, retain))
        gr.api(unlearn_api, api_name="unlearn", concurrency_limit=1, concurrency_id="run")
    return demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=4)


demo = build_demo()


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # gradio closes the server on it; atexit then removes the workspace


if __name__ == "__main__":
    sessions.remove_stale_workspaces()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    sessions.start_sweeping(SESSION_MAX_AGE, OUTPUTS_MAX_MB)
    if not zerogpu.available() and os.environ.get("UNLEARN_WARM_UP", "1") != "0":  # on ZeroGPU runs measure on the GPU
        runs.start_warm_up(EVAL_MASKS)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_UPLOAD,
        share=False,
    )
