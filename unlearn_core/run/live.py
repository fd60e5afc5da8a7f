"""A run that reports while it works: for the web app's live plot, previews and stop button.

`LiveRun` prepares the run at once (so bad input fails before anything starts), trains in a
worker thread, and hands out `LiveUpdate`s: every step's losses, a preview grid of current forget
and retain outputs `previews` times in the run, measuring's progress after the last step, the
headline results (`pipeline.headline`), the progress of the per-mask table and embedding view
that follow them, then the finished `RunOutput`, or an error.
`stop()` takes effect before the next step; the original model is never touched. A run can also
be stopped from another process (a ZeroGPU worker runs it away from the page's process): by
creating its `stop_file`, or by removing the folder that holds it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from unlearn_core.errors import RunFailed, UserInputError
from unlearn_core.measure.viz import preview_grid
from unlearn_core.run.engine import StepEvent
from unlearn_core.run.pipeline import MeasureEvent, RunOutput, RunSpec, measure_extras, prepare, run

PREVIEW_SAMPLING_STEPS = 8  # at most this many sampler steps per live preview (DDIM, MaskGIT)


@dataclass
class LiveUpdate:
    step: int = 0
    total_steps: int = 0
    rows: list[dict] = field(default_factory=list)  # every step so far: step, retain, forget, total
    preview: Image.Image | None = None  # newest preview, when one was made since the last update
    output: RunOutput | None = None  # the headline results (`headline` set), then the finished run's on the last update
    headline: bool = False  # with `output`: the per-mask table and embedding view are still being measured
    error: str | None = None  # set once, on the last update of a failed run
    refused: bool = False  # with `error`: the input was refused before the run started
    seconds: float = 0.0  # since the run started, for the time left (`studio.progress_text`)
    measuring: MeasureEvent | None = None  # after the last step: how far measuring got


class LiveRun:
    def __init__(self, spec: RunSpec, previews: int = 24, preview_count: int = 4, stop_file: str | Path | None = None):
        self.spec = spec
        self.stop_file = None if stop_file is None else Path(stop_file)
        self.prepared = prepare(spec)  # raises UserInputError before any thread starts
        self.preview_every = max(1, self.total_steps // previews)
        k = preview_count
        self._preview_sets = (self.prepared.forget.test[:k], self.prepared.retain.test[:k])
        self._stop = threading.Event()
        self._events: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="unlearn-run", daemon=True)

    @property
    def preview_steps(self) -> int | None:
        """Few sampling steps for the previews, so that they stay quick on a CPU."""
        steps = self.prepared.sampling_steps
        return None if steps is None else min(steps, PREVIEW_SAMPLING_STEPS)

    @property
    def total_steps(self) -> int:
        return self.prepared.config.steps

    def original_preview(self) -> Image.Image:
        """The preview grid of the original model: what step 0 looks like."""
        return self._preview(self.prepared.original)

    def _preview(self, model) -> Image.Image:
        with self.prepared.computing():
            return preview_grid(model, *self._preview_sets, self.prepared.mask, self.spec.config.seed, steps=self.preview_steps)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        if not self._stop.is_set() and self.stop_file is not None:
            if self.stop_file.exists() or not self.stop_file.parent.is_dir():
                self._stop.set()
        return self._stop.is_set()

    def _on_step(self, e: StepEvent) -> None:
        row = {"step": e.step, "retain": e.retain, "forget": e.forget, "total": e.total}
        preview = None
        if e.step % self.preview_every == 0 or e.step == e.total_steps:
            preview = self._preview(e.model)
        self._events.put(("step", row, preview))

    def _work(self) -> None:
        try:
            heard = lambda e: self._events.put(("measure", e, None))  # noqa: E731
            out = run(self.spec, self._on_step, lambda: self.stopping, self.prepared, heard, extras=False)
            self._events.put(("headline", out, None))
            self._events.put(("done", self._extras(out, heard), None))
        except (UserInputError, RunFailed) as e:
            self._events.put(("error", str(e), None))
        except Exception as e:  # report, never hang the page
            self._events.put(("error", f"the run failed: {type(e).__name__}: {e}", None))

    def _extras(self, out: RunOutput, heard) -> RunOutput:
        """`out` with the per-mask table and embedding view; where they fail, the headline results
        stand, with a note saying so."""
        try:
            return measure_extras(out, heard, lambda: self.stopping)
        except Exception as e:  # noqa: BLE001 - the headline results are shown already: keep them
            note = f"the per-mask table and embedding view failed: {type(e).__name__}: {e}"
            return replace(out, metrics=out.metrics | {"notes": [*out.metrics["notes"], note]})

    def updates(self, interval: float = 0.4) -> Iterator[LiveUpdate]:
        """Starts the run; yields at most one update per `interval` seconds, the last step's at
        once, then one as each part of measuring ends, one with the headline results, one as each
        part of what follows them ends, and a last one with the output or the error."""
        self._thread.start()
        rows: list[dict] = []
        update = LiveUpdate(total_steps=self.total_steps)
        start = last = time.monotonic()
        finished = False
        try:
            while True:
                kind, payload, preview = self._events.get()
                if kind == "step":
                    rows.append(payload)
                    update.step, update.rows = payload["step"], rows
                    update.preview = preview or update.preview
                    now = time.monotonic()
                    if now - last >= interval or update.step == self.total_steps:
                        update.seconds = now - start
                        yield update
                        update, last = LiveUpdate(step=update.step, total_steps=self.total_steps, rows=rows), time.monotonic()
                    continue
                if kind == "measure":
                    yield LiveUpdate(update.step, self.total_steps, rows, seconds=time.monotonic() - start, measuring=payload)
                    continue
                if kind == "headline":
                    seconds = time.monotonic() - start
                    yield LiveUpdate(update.step, self.total_steps, rows, update.preview, payload, seconds=seconds, headline=True)
                    continue
                finished = True
                result = {"output": payload} if kind == "done" else {"error": payload}
                yield LiveUpdate(update.step, self.total_steps, rows, update.preview, seconds=time.monotonic() - start, **result)
                return
        finally:
            if not finished:  # the consumer went away (page closed, request cancelled)
                self.stop()
