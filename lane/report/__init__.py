"""The readiness report: `reports/readiness-<run_id>.md` and `.html`, rendered from `runs/<run_id>/`
alone (settings.json, the stage results, the train_status copy the runner keeps there, media).

GO only when the run completed and every promotion-checklist item is ticked from evidence:

    weights manifest ok                 verify stage check `weights_manifest_ok`
    weights licence commercial-OK       verify stage check `weights_license_commercial`
    PROGRESS/STATS/ARTIFACT present     line counts the runner parsed from the stage output
    train_status present                artifacts/train_status.<lane>.json (and its copy in the run dir)
    every gate PASS with integrity true each configured stage's gate, integrity re-checked now
    bundle validated                    export stage check `bundle_validated`
    lane promotable                     verify stage stats `promotable` (+ `not_promotable_reason`)

An item with no evidence is shown as missing and makes the report NO-GO. The HTML embeds plots and
audio inline (base64), so it is one self-contained file a reviewer can sign.
"""

from __future__ import annotations

from .collect import collect_report
from .render import render_report

__all__ = ["collect_report", "render_report"]
