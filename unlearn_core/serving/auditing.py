"""The app's Audit (is it really gone?): the attacks of `unlearn_core.audit` on the session's last
run, in a worker thread with progress and a stop; their plots and one-sentence verdicts go into
the run's metrics.json, its zip and its HTML report."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

from PIL import Image

from unlearn_core.audit import AUDITS, TITLES
from unlearn_core.audit.common import AuditConfig, AuditStopped
from unlearn_core.audit.folder import from_output, write_metrics
from unlearn_core.audit.runner import parse_only, pictures, run_audit
from unlearn_core.compute.device import all_threads
from unlearn_core.errors import RunFailed, UserInputError
from unlearn_core.serving.session import Session
from unlearn_core.serving.studio import export

STOP_WAIT = 120  # seconds a closed page waits for its audit to reach a stop point (one sweep point, a few steps)
ATTACK_CHOICES = [(TITLES[a], a) for a in AUDITS]
AUDIT_NOTE = (
    "Outputs that look forgotten are not proof that the knowledge is gone. These attacks test the last run against the "
    "original and, for a built-in class, the model that never saw it: **relearning** (fine-tune on a few forget images: "
    "how fast does the forget score come back?), **membership inference** (can one tell the images unlearned on from "
    "held-out ones?), **decoder inversion** (can the untouched decoder still be steered to draw them?) and a **mask "
    "sweep** (where does forgetting hold as more of the image is hidden?). On a 2-core CPU the full audit of the default "
    "MAE run takes about as long as the run. What each measures: docs/audit.md."
)


@dataclass
class AuditView:
    """One update of the Audit's outputs, by name; None leaves an output as it is."""

    audit_status: str | None = None
    audit_verdicts: str | None = None
    audit_plots: list[tuple[Image.Image, str]] | None = None
    metrics: dict | None = None
    model_file: str | None = None
    report_file: str | None = None


AUDIT_OUTPUTS = tuple(f.name for f in fields(AuditView))


def verdict_lines(audit: dict) -> str:
    """Markdown: one line per attack in `audit`, its title then its verdict."""
    return "\n".join(f"- **{TITLES[a]}.** {audit[a]['verdict']}" for a in AUDITS if a in audit)


def progress_words(done: int, total: int, what: str, seconds: float) -> str:
    left = f", about {seconds * (total - done) / done:.0f} s left" if 0 < done < total else ""
    return f"Auditing: {round(100 * done / max(1, total))}% ({what}){left}. **Stop** ends it; nothing is added then."


def fit_to_forget_set(cfg: AuditConfig, n: int) -> tuple[AuditConfig, str]:
    """The page has no field for k: relearning from more images than the forget set's `n`
    training images becomes relearning from all of them, and the page says so."""
    if max(cfg.relearn_k) <= n:
        return cfg, ""
    ks = tuple(sorted({min(k, n) for k in cfg.relearn_k}))
    return replace(cfg, relearn_k=ks), f" The forget set has {n} training images, so relearning starts from {', '.join(map(str, ks))}."


def audit_session(session: Session | None, chosen: list[str] | None, cfg: AuditConfig = AuditConfig()) -> Iterator[AuditView]:
    """The attacks `chosen` on the session's last run, as the page's updates. Closing the
    generator (the page went away) stops the audit."""
    if session is None or session.output is None:
        yield AuditView("Run an unlearning first: the audit attacks its result.")
        return
    if session.running:
        yield AuditView("A run is going on: audit it when it has finished.")
        return
    if not chosen:
        yield AuditView("Pick at least one attack.")
        return
    try:
        only = parse_only(",".join(chosen))
    except UserInputError as e:
        yield AuditView(f"**Error:** {e}")
        return
    out = session.output
    try:
        subject = from_output(out, Path(session.tmp) / "run")
    except UserInputError as e:
        yield AuditView(f"**Error:** {e}")
        return
    cfg, fewer = fit_to_forget_set(cfg, len(subject.forget.train))
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            with all_threads():  # a server's worker thread computes on one otherwise (device.serve_threads)
                events.put(("done", run_audit(subject, only, cfg, lambda e: events.put(("progress", e)), session.stop_file.exists)))
        except AuditStopped:
            events.put(("stopped", None))
        except (UserInputError, RunFailed) as e:
            events.put(("error", str(e)))
        except Exception as e:  # noqa: BLE001 - said on the page; the run's results stay as they were
            events.put(("error", f"{type(e).__name__}: {e}"))

    session.stop_file.unlink(missing_ok=True)
    session.auditing, finished = True, False
    start = time.monotonic()
    worker = threading.Thread(target=work, name="audit", daemon=True)
    worker.start()
    yield AuditView(f"Auditing: {', '.join(TITLES[a].lower() for a in only)}...")
    try:
        while True:
            kind, value = events.get()
            if kind == "progress":
                yield AuditView(progress_words(value.done, value.total, value.what, value.seconds))
                continue
            break
        finished = True
    finally:
        if not finished:  # the page went away: stop the audit before another run may clear the stop
            session.request_stop()
            worker.join(timeout=STOP_WAIT)
        session.auditing = False
    if kind == "stopped":
        yield AuditView("Audit stopped: nothing was added to the run.")
        return
    if kind == "error":
        yield AuditView(f"**Audit failed:** {value}. The run's results are as they were.")
        return
    out.metrics["audit"] = {**out.metrics.get("audit", {}), **value}
    files = export(out, session.tmp)
    if session.kept is not None and Path(session.kept).is_dir():  # the history's copy of the run too
        write_metrics(session.kept, out.metrics)
    plots = pictures(value, subject.reference_label)
    yield AuditView(
        f"Audit done in {time.monotonic() - start:.0f} s; its figures are in metrics.json and the report.{fewer}",
        verdict_lines(out.metrics["audit"]),
        [(plots[a], f"{TITLES[a]}: {value[a]['verdict']}") for a in AUDITS if a in plots],
        out.metrics,
        str(files["model"]),
        str(files["report"]),
    )
