"""The `lane` command. Every command imports its heavy machinery inside its body, so `lane --help`
stays fast (no torch, NeMo or papermill at start-up: check with `python -X importtime -m lane --help`)."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from .core.reasons import LaneError

app = typer.Typer(
    name="lane",
    help="voice-lane: verify -> train -> export -> validate, gated, ledgered and reported.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
ledger_app = typer.Typer(help="Show or verify the hash-chained, signed ledger (reports/ledger.jsonl).", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
keys_app = typer.Typer(help="The signing key of the ledger and the bundle provenance.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
consent_app = typer.Typer(help="Spoken consent: a one-time statement the speaker reads, checked by ASR and speaker "
                          "verification, signed into the ledger (README: Speaker consent).", no_args_is_help=True)
app.add_typer(consent_app, name="consent")

RootOpt = Annotated[Path, typer.Option("--root", help="Workspace root (artifacts/, runs/, reports/, bundles/).")]


def _fail(err: LaneError) -> None:
    typer.echo(f"error: {err.code}: {err.detail}", err=True)
    raise typer.Exit(err.exit_code)


def _setting_options(command: Callable[..., None]) -> Callable[..., None]:
    """One option per setting that has a flag, each from its declaration in lane.core.config.Settings
    (flag, type, help, environment variable); the command receives them together as `flags`
    (None: not given), ahead of its own options."""
    from .core.config import SETTINGS

    kinds: dict[str, type] = {"str": str, "optional": str, "list": str, "int": int, "bool": bool}
    params = [inspect.Parameter(spec.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=Annotated[kinds[spec.kind] | None, typer.Option(
                                    spec.flag, help=spec.meta.help + (f" (env {spec.env})" if spec.env else ""))])
              for spec in SETTINGS if spec.flag]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "flags"]

    @functools.wraps(command)
    def with_settings(**kwargs: Any) -> None:
        command({p.name: kwargs.pop(p.name) for p in params}, **kwargs)

    setattr(with_settings, "__signature__", inspect.Signature([*params, *own]))  # noqa: B010
    with_settings.__annotations__ = {p.name: p.annotation for p in (*params, *own)}
    return with_settings


@app.command()
@_setting_options
def run(
    flags: dict[str, Any],
    resume: Annotated[str | None, typer.Option(help="Resume RUN_ID from its first stage that did not pass")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="managed_job: return once the job is submitted (then lane status / lane cancel RUN_ID)")] = False,
    config: Annotated[Path | None, typer.Option(help="Config file (default configs/lane.yaml) (env LANE_CONFIG)")] = None,
    root: RootOpt = Path("."),
) -> None:
    """Run the lane end to end (or resume a run) and print the \\[tts-prod] status line."""
    from .orchestrator import run_from_cli

    raise typer.Exit(run_from_cli(flags, config_path=config, root=root, resume=resume, detach=detach))


@app.command("verify-weights")
def verify_weights(
    manifest: Annotated[Path, typer.Argument(help="Weights manifest JSON")],
    root: RootOpt = Path("."),
) -> None:
    """Check a weights manifest: schema, files, sha256, code and weights licences. Prints status=ok or status=blocked."""
    from .core.weights import verify_cli

    raise typer.Exit(verify_cli(manifest, root=root))


@app.command()
def status(
    run_id: Annotated[str | None, typer.Argument(help="Run id (default: the lane's latest train_status)")] = None,
    lane: Annotated[str | None, typer.Option("--lane")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON")] = False,
    lines: Annotated[int, typer.Option("--lines", help="Last lines of a scheduler job's output to show")] = 10,
    root: RootOpt = Path("."),
) -> None:
    """Show a run's status from artifacts/train_status.<lane>.json or runs/<run_id>/; for a scheduler job
    also its state (asked of the scheduler now; a job that ended is settled) and its last lines."""
    from .backends.slurm_job import refresh
    from .core.status import load_status, show_status

    try:
        target = run_id or str(load_status(root, None, lane).get("run_id") or "")
        job = refresh(root.resolve(), target) if target else None
        if as_json:
            import json

            typer.echo(json.dumps({**load_status(root, run_id, lane), **({"job": job} if job else {})}, indent=2,
                                  ensure_ascii=False))
            raise typer.Exit(0)
        show_status(root, run_id=run_id, lane=lane)
        if job:
            _show_job(root.resolve(), job, lines)
    except LaneError as err:
        _fail(err)


def _show_job(root: Path, job: Mapping[str, Any], lines: int) -> None:
    from .backends.slurm_job import describe, last_lines

    typer.echo(describe(job))
    tail = last_lines(root, job, lines)
    if tail:
        typer.echo(f"last {len(tail)} line(s) of {job.get('output')}:")
        for line in tail:
            typer.echo(f"  {line}")


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="A run queued by the job API or submitted to the scheduler")],
    wait_s: Annotated[float, typer.Option("--wait-s", help="How long to wait for the run to end")] = 30.0,
    root: RootOpt = Path("."),
) -> None:
    """Cancel a queued or running job (scancel for a Slurm job): train_status, a ledger entry, the \\[tts-prod] line."""
    from .core import protocol
    from .jobs import FINAL, Jobs

    try:
        with Jobs(root, start=False) as jobs:
            out = jobs.cancel(run_id, wait_s=wait_s)
    except LaneError as err:
        _fail(err)
    st = out.get("train_status") or {}
    if out.get("state") not in FINAL:
        typer.echo(f"cancel requested: run {run_id} is still {out.get('state')} ({out.get('job_state') or ''})")
        raise typer.Exit(1)
    typer.echo(f"run {run_id}: {out.get('state')}" + (f" (slurm job {out['job_id']})" if out.get("job_id") else ""))
    if st.get("status") and st.get("reason"):
        protocol.status(str(st["status"]), str(st["reason"]), run_id, str(st.get("lane") or "") or None)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id under runs/")],
    root: RootOpt = Path("."),
) -> None:
    """Re-render reports/readiness-<run_id>.md and .html from the run directory alone."""
    from .report import render_report

    try:
        paths = render_report(root, run_id)
    except LaneError as err:
        _fail(err)
    for p in paths:
        typer.echo(str(p))


@ledger_app.command("show")
def ledger_show(
    last: Annotated[int, typer.Option(help="Show the last N entries")] = 20,
    root: RootOpt = Path("."),
) -> None:
    """Print the ledger as a table."""
    from .core.ledger import show

    show(root, last=last)


@ledger_app.command("verify")
def ledger_verify(root: RootOpt = Path(".")) -> None:
    """Recompute the hash chain, signatures, certificates, head, artifact and evidence hashes, check the head
    against the rollback witness and the live voices against the ledger; exit non-zero on any problem."""
    from .bundle.live import verify_cli

    raise typer.Exit(verify_cli(root))


@app.command()
def promote(
    run_id: Annotated[str, typer.Argument(help="A run whose verdict is GO")],
    root: RootOpt = Path("."),
) -> None:
    """Make a GO run's candidate bundle the live voice (atomic switch, ledger entry). NO-GO is refused."""
    from .promotion import promote as _promote

    try:
        live = _promote(root, run_id)
    except LaneError as err:
        _fail(err)
    typer.echo(f"promoted: {live} -> run {run_id}")


@app.command()
def rollback(
    voice_profile_id: Annotated[str, typer.Argument(help="The voice (bundles/<id>/)")],
    root: RootOpt = Path("."),
) -> None:
    """Make the previously promoted run of a voice live again (ledger entry)."""
    from .promotion import rollback as _rollback

    try:
        live = _rollback(root, voice_profile_id)
    except LaneError as err:
        _fail(err)
    typer.echo(f"rolled back: {live}")


@app.command("verify-bundle")
def verify_bundle(
    bundle: Annotated[Path, typer.Argument(help="A bundle directory (live or candidate)")],
    root: RootOpt = Path("."),
) -> None:
    """Check a bundle offline: manifest, file hashes, and its signed provenance (trusted key, subjects)."""
    from .bundle import provenance
    from .bundle.check import validate_voice_bundle
    from .core.signing import trusted_keys

    problems = validate_voice_bundle(bundle, root).problems
    prov = provenance.verify(bundle, trusted_keys(root))
    problems += [f"provenance: {p}" for p in prov.problems]
    if problems:
        for p in problems:
            typer.echo(f"bundle broken: {p}")
        raise typer.Exit(LaneError("provenance_invalid").exit_code)
    pred = prov.predicate
    typer.echo(f"bundle ok: {bundle}: run {pred.get('run_id')}, verdict {prov.verdict}, commit "
               f"{str(pred.get('commit'))[:12]}, {len(prov.statement.get('subject') or [])} files signed")


@app.command("verify-consent")
def verify_consent(
    record: Annotated[Path, typer.Argument(help="A consent record (voice_consent/2 spoken, or the old voice_consent/1)")],
    audio: Annotated[list[str] | None, typer.Argument(help="Recordings it must cover")] = None,
    voice_profile_id: Annotated[str | None, typer.Option(help="The voice it must be the consent for")] = None,
    root: RootOpt = Path("."),
) -> None:
    """Check a consent record: schema, signature and ledger entry, and that it covers the given recordings."""
    from .consent.commands import verify_cli

    raise typer.Exit(verify_cli(record, list(audio or []), root.resolve(), voice_profile_id))


@consent_app.command("challenge")
def consent_challenge(
    voice_profile_id: Annotated[str, typer.Option(help="The voice the consent is for (bundles/<id>/)")],
    speaker: Annotated[str, typer.Option(help="The speaker's name, as they will say it")],
    use: Annotated[str, typer.Option(help="commercial | non-commercial")] = "commercial",
    valid_hours: Annotated[float | None, typer.Option(help="How long the statement may be recorded (default 24, at most 168)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the challenge as JSON")] = False,
    root: RootOpt = Path("."),
) -> None:
    """Issue a one-time statement for the speaker to read (a signed ledger entry) and print it."""
    from .consent.commands import challenge_cli

    raise typer.Exit(challenge_cli(root.resolve(), voice_profile_id, speaker, use, valid_hours, as_json))


@consent_app.command("record")
def consent_record(
    audio_file: Annotated[str, typer.Argument(metavar="AUDIO", help="The speaker reading the statement (WAV, FLAC ...)")],
    challenge: Annotated[str, typer.Option(help="The challenge id `lane consent challenge` printed")],
    audio: Annotated[str, typer.Option("--audio", help="The recordings the consent covers (as `lane run --audio`)")],
    weights_manifest: Annotated[str | None, typer.Option(help="Weights manifest naming the ASR and speaker encoder")] = None,
    root: RootOpt = Path("."),
) -> None:
    """Check the spoken consent (statement, voice, freshness) and, when it passes, sign it into the ledger."""
    from .consent.commands import record_cli
    from .core.config import resolve_settings

    try:
        manifest = resolve_settings({"weights_manifest": weights_manifest}, root=root).weights_manifest
    except LaneError as err:
        _fail(err)
    raise typer.Exit(record_cli(root.resolve(), challenge, audio_file, audio, manifest))


@consent_app.command("show")
def consent_show(
    voice_profile_id: Annotated[str | None, typer.Option(help="Only this voice")] = None,
    root: RootOpt = Path("."),
) -> None:
    """List the consent challenges and records in the ledger, and the thresholds they are judged by."""
    from .consent.commands import show_cli

    raise typer.Exit(show_cli(root.resolve(), voice_profile_id))


@keys_app.command("show")
def keys_show(root: RootOpt = Path(".")) -> None:
    """Print where the trust anchors are (all outside the workspace): the signing key and its fingerprint,
    the trusted keys, and the rollback witness of this workspace."""
    from .core.anchors import read_trusted, trusted_file, workspace_problem
    from .core.signing import load_signer
    from .core.witness import witness_path

    try:
        signer = load_signer(root)
        typer.echo(f"signing key: {signer.path}\nfingerprint: {signer.keyid}")
        trusted = sorted(read_trusted(root) | {signer.keyid})  # the file's errors are shown, not skipped
        typer.echo(f"trusted keys file: {trusted_file(root)}\ntrusted: " + ", ".join(trusted))
        typer.echo(f"witness: {witness_path(root)}")
    except LaneError as err:
        _fail(err)
    problem = workspace_problem(root)
    if problem:
        typer.echo(f"refused: trust_anchor_in_workspace: {problem}")


@keys_app.command("rotate")
def keys_rotate(root: RootOpt = Path(".")) -> None:
    """Retire the signing key (kept beside it), create a new one, and trust both in the trusted-keys file
    outside the workspace, so every older ledger entry keeps verifying on this machine."""
    from .core.signing import rotate

    try:
        old, new, trusted = rotate(root)
    except LaneError as err:
        _fail(err)
    typer.echo(f"retired {old.keyid} ({old.path}); new key {new.keyid} at {new.path}")
    typer.echo(f"trusted both in {trusted}; copy its lines to every machine that verifies this workspace "
               "(their LANE_TRUSTED_KEYS or ~/.config/voice-lane/trusted-keys)")


@app.command()
def reasons(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown table the README embeds")] = False,
) -> None:
    """Print the reason-code table (code, exit code, meaning, unblock action)."""
    from .core import reasons as r

    if markdown:
        typer.echo(r.table_markdown(), nl=False)
        return
    if as_json:
        import json

        typer.echo(json.dumps([vars(x) for x in r.REASONS.values()], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="voice-lane reason codes")
    for col in ("code", "scope", "exit", "meaning", "unblock action"):
        table.add_column(col, overflow="fold")
    for x in r.REASONS.values():
        table.add_row(x.code, x.scope, str(x.exit_code), x.meaning, x.action)
    Console(width=max(160, Console().width)).print(table)


@app.command()
def lanes(root: RootOpt = Path(".")) -> None:
    """List the lanes in configs/lanes/ with their status and promotability."""
    from .core.lanes import print_lanes

    print_lanes(root)


@app.command()
def serve(
    bundles: Annotated[Path | None, typer.Argument(help="bundles/ (every live voice; default <root>/bundles), or one bundle dir")] = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8080,
    allow_unpromoted: Annotated[bool, typer.Option("--allow-unpromoted", help="Development only: serve bundles that are not live, GO voices (hashes still checked; labelled in every response)")] = False,
    wyoming: Annotated[str | None, typer.Option("--wyoming", help="Also serve Wyoming for Home Assistant, e.g. tcp://127.0.0.1:10200")] = None,
    zeroconf: Annotated[bool | None, typer.Option("--zeroconf/--no-zeroconf", help="Advertise the Wyoming server on the local network (mDNS), for Home Assistant's discovery")] = None,
    max_inflight: Annotated[int | None, typer.Option("--max-inflight", help="Synthesis requests admitted at once (more wait in a short queue, then 503 + Retry-After)")] = None,
    max_connections: Annotated[int | None, typer.Option("--max-connections", help="Open HTTP connections (a new one closes the oldest idle one)")] = None,
    workers: Annotated[int | None, typer.Option(help="Synthesis threads")] = None,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads per synthesis")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Per-request time limit, seconds")] = None,
    root: RootOpt = Path("."),
) -> None:
    """Serve voices over HTTP (OpenAI-compatible /v1/audio/speech, /api/voice/speak, a try-a-voice page) and
    optionally Wyoming, with onnxruntime only. Settings: flags > LANE_SERVE_TOKEN > the `serve` section of
    configs/lane.yaml."""
    from .serve.server import serve as _serve
    from .serve.settings import load_settings, workspace_of

    try:
        ws = root if bundles is None or root != Path(".") else (workspace_of(bundles) or root)
        settings = load_settings(ws, source=bundles.resolve() if bundles else None, host=host, port=port,
                                 allow_unpromoted=allow_unpromoted, wyoming=wyoming, zeroconf=zeroconf,
                                 max_inflight=max_inflight, max_connections=max_connections, workers=workers,
                                 threads=threads, request_timeout_s=timeout)
        _serve(settings)
    except LaneError as err:
        _fail(err)


def main() -> None:
    try:
        app()
    except LaneError as err:  # anything a command did not turn into an exit code itself
        typer.echo(f"error: {err.code}: {err.detail}", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
