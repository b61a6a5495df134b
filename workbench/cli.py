"""The research workbench for multimedia 112 intake: one sub-command per task (`workbench COMMAND --help`).

Every sub-command explains itself with ``--help``. Exit codes: 0 success, 1 a check failed (verify) or the work
failed, 2 bad usage or bad input (argparse's convention).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path

from workbench import __version__
from workbench.cli_checks import iso_time, port_number, ports_problem, positive_seconds

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_SCENARIO = REPO_ROOT / "experiments" / "demo" / "scenario.toml"


def default_media_cache() -> Path:
    """Where generated demo media are cached: ``$XDG_CACHE_HOME/workbench112/media`` (``~/.cache`` by default)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "workbench112" / "media"


def _add_ingest_options(p: argparse.ArgumentParser, *, default_port: int = 8080) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address the ingest listens on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=default_port, help=f"ingest port (default {default_port})")
    p.add_argument("--console-port", type=port_number, default=8501, help="dispatcher console port (default 8501)")
    p.add_argument("--recordings", type=Path, default=Path("recordings"), help="recordings folder (default recordings/)")
    p.add_argument(
        "--ice",
        choices=("lan", "stun", "loopback"),
        default="loopback",
        help="ICE mode: loopback (one machine), lan (host candidates, phones on the lab network), stun (--stun/--turn)",
    )
    p.add_argument("--no-console", action="store_true", help="start the ingest alone")
    p.add_argument("--public-url", default="", help="base URL phones use to reach the ingest, e.g. https://10.0.0.5:8080")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS with --cert/--key, or without them with a self-signed lab certificate made in "
                   "~/.cache/workbench112/tls (its SAN covers --host, --public-url's host, localhost, 127.0.0.1); "
                   "prints how to trust it on phones")
    p.add_argument("--cert", type=Path, help="TLS certificate (PEM)")
    p.add_argument("--key", type=Path, help="TLS private key (PEM)")
    p.add_argument("--stun", action="append", default=[], metavar="URL", help="STUN server for --ice stun (repeatable)")
    p.add_argument("--turn", default="", metavar="URL", help="TURN server for --ice stun")
    p.add_argument("--turn-user", default="", metavar="U")
    p.add_argument("--turn-password", default="", metavar="P")
    p.add_argument("--drt", choices=("off", "visual", "tone"), default="off",
                   help="run the Detection Response Task (ISO 17488) in the dispatcher console (default off)")
    p.add_argument("--tlx-weights", action="store_true",
                   help="ask the 15 NASA-TLX pairwise comparisons after each block (weighted TLX)")
    p.add_argument("--upload-limit-mb", type=float, default=25.0, help="largest photo upload, MB (default 25)")
    p.add_argument("--access-codes", type=Path, metavar="FILE",
                   help="roles: participant / trainer / researcher access codes in FILE (created with new codes when "
                   "missing; keep it outside the recordings); without it every page and endpoint is open")
    p.add_argument("--trainer-port", type=port_number, default=8503, help="trainer's page port (default 8503)")
    p.add_argument("--library", type=Path, default=REPO_ROOT / "experiments",
                   help="the trainer's scenario library folder (default experiments/)")
    p.add_argument("--record-video", choices=("h264", "copy"), default="h264",
                   help="how recordings store the caller's video by default: h264 (decode + x264, any codec) or copy "
                   "(the received VP8 frames as they are, no encoding; H.264 callers are re-encoded)")
    p.add_argument("--talkback", action="store_true",
                   help="let dispatchers talk to live callers by default (sessions may set \"talkback\" themselves); "
                   "the live view (?mode=webrtc) then sends the microphone, recorded as a second audio track")


def _settings(args: argparse.Namespace):
    from workbench.ingest.settings import IngestSettings

    cert, key = (args.cert, args.key) if args.tls else (None, None)
    if args.tls and not (args.cert and args.key):
        if args.cert or args.key:
            raise SystemExit("workbench: --tls takes both --cert FILE and --key FILE (PEM), or neither for a "
                             "self-signed lab certificate")
        cert, key = _lab_certificate(args)
    for path in (cert, key):
        if path is not None and not Path(path).is_file():
            raise SystemExit(f"workbench: --cert/--key file not found: {path}")
    try:
        return IngestSettings(
            host=args.host,
            port=args.port,
            recordings=args.recordings,
            public_url=args.public_url,
            ice_mode=args.ice,
            stun_urls=tuple(args.stun),
            turn_url=args.turn,
            turn_user=args.turn_user,
            turn_password=args.turn_password,
            upload_limit_bytes=int(args.upload_limit_mb * 1024 * 1024),
            talkback=getattr(args, "talkback", False),
            record_video=getattr(args, "record_video", "h264"),
            tls_cert=cert,
            tls_key=key,
        )
    except ValueError as exc:  # e.g. --ice stun without --stun/--turn
        raise SystemExit(f"workbench: {exc}") from None


def _lab_certificate(args: argparse.Namespace) -> tuple[Path, Path]:
    """Make or reuse the self-signed lab certificate for ``--tls`` without ``--cert``/``--key`` and print how to
    trust it on phones (:mod:`workbench.ingest.tls`)."""
    from urllib.parse import urlsplit

    from workbench.ingest.tls import default_tls_dir, ensure_lab_certificate, lab_names, trust_instructions

    public_host = urlsplit(args.public_url).hostname or ""
    lab = ensure_lab_certificate(default_tls_dir(), lab_names(args.host, *([public_host] if public_host else [])))
    base_url = args.public_url.rstrip("/") or f"https://{args.host}:{args.port}"
    print(trust_instructions(lab, base_url), flush=True)
    return lab.cert, lab.key


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _serve(args: argparse.Namespace, scenario_path: Path | None, duration_s: float | None) -> int:
    """Start the ingest (and the console), optionally play a scenario, until a signal or ``duration_s``."""
    import aiohttp

    from workbench.ingest.server import start_ingest
    from workbench.store.recordings import verify_session
    from workbench.store.scenarios import load_scenario

    scenario = load_scenario(scenario_path) if scenario_path else None
    settings = _settings(args)
    from workbench.console import trainer_launch  # issue 7: roles and the trainer's page

    codes, access_text = trainer_launch.setup_access(args.access_codes, settings.recordings)
    settings = dataclasses.replace(settings, access=codes)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        handle = await start_ingest(settings)
    except OSError as exc:  # taken between the port check and now
        raise SystemExit(f"workbench: the ingest cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
                         "choose another --port") from None
    console = trainer = None
    report = None
    exit_code = 0
    try:
        print(f"Ingest:  {handle.url}  (recordings in {settings.recordings.resolve()})", flush=True)
        if not args.no_console:
            from workbench.console.launch import start_console, wait_until_ready

            console = start_console(
                handle.url,
                port=args.console_port,
                host=args.host,
                public_ingest_url=settings.base_url,
                recordings=settings.recordings,
                drt=args.drt != "off",
                drt_kind=args.drt if args.drt != "off" else "visual",
                tlx_weights=args.tlx_weights,
                participant_flow=getattr(args, "participant_flow", False),
                consent_file=getattr(args, "consent", None),
                access_file=args.access_codes,
            )
            console_url = f"http://{args.host}:{args.console_port}"
            await asyncio.get_running_loop().run_in_executor(None, wait_until_ready, console_url, 60.0)
            print(f"Console: {console_url}   <- open this in a browser to work as the dispatcher", flush=True)
            trainer = trainer_launch.start_trainer(args.trainer_port, args.host, trainer_launch.trainer_env(
                ingest_url=handle.url, console_url=console_url, recordings=settings.recordings,
                library=args.library, access_file=args.access_codes, ice=args.ice))
            trainer_url = f"http://{args.host}:{args.trainer_port}"
            await asyncio.get_running_loop().run_in_executor(None, wait_until_ready, trainer_url, 60.0)
            print(f"Trainer: {trainer_url}   <- start, watch and steer sessions; the scenario library", flush=True)
        print(access_text, flush=True)
        if scenario is None:
            if duration_s is not None:
                asyncio.get_running_loop().call_later(duration_s, stop.set)
            await stop.wait()
            return 0
        from workbench.runner.demo_media import ensure_demo_media
        from workbench.runner.player import IngestApi, ScenarioPlayer, planned_block_order

        cache = default_media_cache()
        await asyncio.get_running_loop().run_in_executor(None, ensure_demo_media, cache)
        if duration_s is not None:  # counted from the start of playback, not of the servers
            asyncio.get_running_loop().call_later(duration_s, stop.set)
        headers = {"X-Workbench-Access": codes.trainer} if codes else None  # the runner acts for the trainer
        async with aiohttp.ClientSession(headers=headers) as http:
            player = ScenarioPlayer(
                IngestApi(handle.url, http),
                scenario,
                scenario_path.read_bytes(),  # type: ignore[union-attr]
                participant=args.participant,
                seed=args.seed,
                media_cache=cache,
                ice_mode=args.ice,
                on_session=lambda sid: print(f"Session: {sid}  scenario {scenario.id!r}"
                                             + (f"  station link: {console_url}/?session={sid}&ticket="
                                                f"{codes.session_ticket(sid)}" if codes and console else ""),
                                             flush=True),
                block_order=planned_block_order(scenario, args.participant, args.seed,
                                                getattr(args, "participant_index", None)),
                # The participant's consent and instructions come before the first call.
                wait_for_start=getattr(args, "wait_start", False) or getattr(args, "participant_flow", False),
                wait_for_nasa_tlx=not args.no_nasa_tlx,
                wait_for_questionnaire=getattr(args, "participant_flow", False),
                session_id=getattr(args, "resume", None) or getattr(args, "session_id", None),
                resume=bool(getattr(args, "resume", None)),
            )
            report = await player.run(stop)
        print(f"Session {report.session_id} {'completed' if report.completed else 'stopped'}", flush=True)
        for sc_id, call_id in report.call_ids.items():
            print(f"  call {sc_id}: {call_id}  {caller_outcome(report.caller_exit_codes.get(call_id))}")
        if getattr(args, "participant_flow", False) and console is not None and not stop.is_set():
            # The participant still reads the thank-you (or refusal) screen: stopping the console now would put a
            # connection error over it.
            print("The console stays up for the participant's last screen; Ctrl-C to stop.", flush=True)
            await stop.wait()
    finally:
        from workbench.console.launch import stop_process

        for page in (trainer, console):  # a stuck page must not keep the demo alive
            if page is not None:
                stop_process(page, 10)
        await handle.stop()
    if report is not None:
        # Checked once the ingest has stopped: the session's last events (calls and recordings closing) are
        # written by then, so the count printed is the log's final one.
        verdict = verify_session(settings.recordings / report.session_id)
        print(f"verify: {'OK' if verdict.ok else 'PROBLEMS'} ({verdict.events} events, {verdict.files_checked} files)")
        for problem in verdict.problems:
            print(f"  {problem}")
        exit_code = 0 if verdict.ok else 1
    return exit_code


def caller_outcome(exit_code: int | None) -> str:
    """How the simulated caller of one call ended, for ``run``/``demo``'s summary: ``exit_code`` is the caller
    process's return code as :class:`~workbench.runner.player.PlayReport` keeps it (None: no caller was started,
    e.g. a call without live media or one the session stopped before it arrived)."""
    if exit_code is None:
        return "no simulated caller started"
    if exit_code == 0:
        return "caller hung up (exit 0)"
    if exit_code == -signal.SIGTERM:
        return "caller stopped by the runner at the end of the call"
    return f"caller FAILED (exit {exit_code}; its output is in the warning above)"


def _busy_ports(args: argparse.Namespace, command: str) -> bool:
    """Print why the servers of ``command`` cannot start on their ports (busy, duplicate) and return True; False
    when every port is free (:mod:`workbench.cli_checks`)."""
    ports = {"--port": args.port}
    if not getattr(args, "no_console", False):
        ports |= {"--console-port": args.console_port, "--trainer-port": args.trainer_port}
    problem = ports_problem(args.host, ports)
    if problem:
        print(f"workbench {command}: {problem}; nothing was started", file=sys.stderr)
    return bool(problem)


def cmd_demo(args: argparse.Namespace) -> int:
    if _busy_ports(args, "demo"):
        return 2
    return asyncio.run(_serve(args, DEMO_SCENARIO, args.duration))


def cmd_serve(args: argparse.Namespace) -> int:
    if _busy_ports(args, "serve"):
        return 2
    return asyncio.run(_serve(args, None, None))


def cmd_run(args: argparse.Namespace) -> int:
    from workbench.domain.design import DesignError
    from workbench.runner.player import planned_block_order
    from workbench.store.scenarios import ScenarioError, load_scenario

    if args.consent is not None:
        from workbench.console.participant_viewmodel import ConsentTextError, read_consent_text

        try:
            read_consent_text(args.consent)
        except ConsentTextError as exc:
            print(f"workbench run: --consent: {exc}", file=sys.stderr)
            return 2
        args.consent = args.consent.resolve()
    try:
        scenario = load_scenario(args.scenario)
        planned_block_order(scenario, args.participant, args.seed, args.participant_index)
    except (ScenarioError, DesignError) as exc:
        print(f"workbench run: invalid scenario or design:\n{exc}", file=sys.stderr)
        return 2
    if args.ingest:
        return asyncio.run(_run_on_ingest(args, scenario))
    if args.access_code:
        print("workbench run: --access-code is for --ingest URL (a running ingest); without --ingest, "
              "--access-codes FILE gives the ingest this run starts its codes", file=sys.stderr)
        return 2
    if _busy_ports(args, "run"):
        return 2
    return asyncio.run(_serve(args, args.scenario, args.duration))


async def _run_on_ingest(args: argparse.Namespace, scenario) -> int:  # noqa: ANN001 - Scenario
    """``workbench run --ingest URL``: play on a running ingest (restart-safe; ``--resume`` continues a session)."""
    from workbench.runner.demo_media import ensure_demo_media
    from workbench.runner.player import IngestApiError, planned_block_order, play_on_ingest

    token = _trainer_token(args)
    if token is None:
        return 2
    stop = asyncio.Event()
    _stop_on_signals(stop)
    if args.duration is not None:
        asyncio.get_running_loop().call_later(args.duration, stop.set)
    cache = default_media_cache()
    await asyncio.get_running_loop().run_in_executor(None, ensure_demo_media, cache)
    try:
        report = await play_on_ingest(
            args.ingest, scenario, args.scenario.read_bytes(), stop=stop, participant=args.participant,
            seed=args.seed, media_cache=cache, ice_mode=args.ice,
            block_order=planned_block_order(scenario, args.participant, args.seed, args.participant_index),
            wait_for_start=args.wait_start or args.participant_flow, session_id=args.resume or args.session_id,
            resume=bool(args.resume), wait_for_nasa_tlx=not args.no_nasa_tlx,
            wait_for_questionnaire=args.participant_flow,
            on_session=lambda sid: print(f"Session: {sid}  scenario {scenario.id!r}", flush=True),
            access_token=token,
        )
    except IngestApiError as exc:
        print(f"workbench run: {exc}", file=sys.stderr)
        if exc.status in (401, 403):
            print("workbench run: the ingest runs with access codes: give the trainer's code with --access-codes "
                  "FILE (the file `serve --access-codes` uses), --access-code CODE or WORKBENCH_ACCESS_TOKEN",
                  file=sys.stderr)
        return 1
    how = "completed" if report.completed else f"stopped (aborted at {report.aborted_at or 'stop'})"
    print(f"Session {report.session_id} {how}", flush=True)
    return 0


def _trainer_token(args: argparse.Namespace) -> str | None:
    """The trainer's access code ``run --ingest`` sends: ``--access-code``, else the trainer's code of
    ``--access-codes FILE`` (read, never created: the running ``serve`` owns that file), else
    ``$WORKBENCH_ACCESS_TOKEN``, else ``""`` (roles off). None after printing why the file cannot be used."""
    if args.access_code:
        return args.access_code
    if args.access_codes is not None:
        from workbench.store.access_codes import AccessError, load

        try:
            return load(args.access_codes).trainer
        except AccessError as exc:
            print(f"workbench run: --access-codes: {exc}", file=sys.stderr)
            return None
    return os.environ.get("WORKBENCH_ACCESS_TOKEN", "")


def _parse_photo(value: str):
    from workbench.runner.caller import PhotoUpload

    path, _, at = value.rpartition("@") if "@" in value else (value, "", "0")
    try:
        at_s = float(at)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--photo {value!r}: expected PATH or PATH@SECONDS") from None
    if not path.startswith("builtin:") and not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"--photo {value!r}: file {path!r} not found; give a photo file or "
                                         "builtin:NAME (the demo media scenarios use)")
    return PhotoUpload(Path(path), at_s)  # builtin:NAME is made into a file by cmd_caller


def cmd_caller(args: argparse.Namespace) -> int:
    from workbench.runner.caller import CallerError, stream_call

    from workbench.runner.demo_media import resolve_media

    for name in ("video", "audio"):
        ref = getattr(args, name)
        if ref is None:
            continue
        if not ref.startswith("builtin:") and not Path(ref).is_file():
            print(f"workbench caller: --{name} {ref}: file not found; give a media file or builtin:NAME "
                  "(the demo media scenarios use)", file=sys.stderr)
            return 2
        try:  # builtin:NAME is generated into the media cache the first time (as `run` does for scenarios)
            setattr(args, name, resolve_media(ref, default_media_cache()))
        except (ValueError, FileNotFoundError) as exc:
            print(f"workbench caller: --{name}: {exc}", file=sys.stderr)
            return 2

    for i, photo in enumerate(args.photo):
        if str(photo.path).startswith("builtin:"):
            try:
                args.photo[i] = dataclasses.replace(photo, path=resolve_media(str(photo.path),
                                                                              default_media_cache()))
            except (ValueError, FileNotFoundError) as exc:
                print(f"workbench caller: --photo: {exc}", file=sys.stderr)
                return 2

    async def main() -> int:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        try:
            report = await stream_call(
                args.url,
                video=args.video,
                audio=args.audio,
                photos=args.photo,
                video_at_s=args.video_at,
                duration_s=args.duration,
                ice_mode=args.ice,
                stop=stop,
            )
        except (CallerError, OSError) as exc:  # aiohttp's connection errors are OSErrors
            print(f"workbench caller: {exc}", file=sys.stderr)
            return 1
        print(
            f"caller done: state {report.connection_state}, connected after {report.connected_after_s} s, "
            f"video {report.video_sent}, audio {report.audio_sent}, photos {len(report.photos)}"
        )
        return 0

    return asyncio.run(main())


def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.progress import ProgressPrinter
    from analysis.run import AnalysisError, analyze

    progress = None if args.quiet else ProgressPrinter(sys.stderr)
    try:
        result = analyze(args.recordings, args.out, ratings=args.ratings, progress=progress)
    except AnalysisError as exc:
        print(f"workbench analyze: {exc}", file=sys.stderr)
        return 2
    print(f"{result.sessions_loaded} session(s), {len(result.trials)} trial row(s) -> {args.out} "
          f"(report: {args.out / 'report.html'})")
    for session_id, problems in result.sessions_with_problems.items():
        for problem in problems:
            print(f"  {session_id}: {problem}", file=sys.stderr)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from workbench.simulate import EffectsError, load_effects, simulate
    from workbench.store.recordings import RecordingsError
    from workbench.store.scenarios import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
        effects = load_effects(args.effects)
    except (ScenarioError, EffectsError) as exc:
        print(f"workbench simulate: invalid input:\n{exc}", file=sys.stderr)
        return 2
    try:
        paths = simulate(
            scenario,
            args.scenario.read_bytes(),
            effects,
            participants=args.participants,
            seed=args.seed,
            out=args.out,
            calls_per_block=args.calls_per_block,
            participant_prefix=args.participant_prefix,
        )
    except (ValueError, RecordingsError) as exc:
        print(f"workbench simulate: {exc}", file=sys.stderr)
        return 2
    print(f"{len(paths)} simulated session(s) of scenario {scenario.id!r} -> {args.out}")
    return 0


def cmd_research(args: argparse.Namespace) -> int:
    from workbench.console.launch import RESEARCH_PATH

    problem = "" if args.recordings.is_dir() else f"{args.recordings}: no such folder; pass --recordings DIR"
    extra = {"WORKBENCH_RESULTS": str(args.out.resolve())} if args.out else {}
    return _serve_recordings_page("research", "Researcher page", RESEARCH_PATH, args, problem, extra)


def cmd_debrief(args: argparse.Namespace) -> int:
    from workbench.console.launch import DEBRIEF_PATH

    # The debrief shows ground truth, so --access-codes gates it with the trainer's code.
    extra = {"WORKBENCH_DEBRIEF_SESSION": args.session} if args.session else {}
    return _serve_recordings_page("debrief", "Debrief page", DEBRIEF_PATH, args,
                                  debrief_problem(args.recordings, args.session), extra)


def _serve_recordings_page(command: str, title: str, page: Path, args: argparse.Namespace, problem: str,
                           extra_env: dict[str, str]) -> int:
    """Serve the Streamlit ``page`` over ``args.recordings`` on ``args.host:args.port`` until Ctrl-C (the research
    and debrief pages). Refuses (exit 2, the reason on stderr) a busy or bad port and any argument ``problem``; with
    ``args.access_codes`` the page asks for its role's code (issue 7)."""
    import subprocess

    from workbench.console.launch import streamlit_command

    problem = ports_problem(args.host, {"--port": args.port}) or problem
    if problem:
        print(f"workbench {command}: {problem}", file=sys.stderr)
        return 2
    env = dict(os.environ, WORKBENCH_RECORDINGS=str(args.recordings.resolve()), **extra_env)
    if args.access_codes:
        from workbench.console import trainer_launch

        trainer_launch.setup_access(args.access_codes, args.recordings)
        env["WORKBENCH_ACCESS_FILE"] = str(args.access_codes.resolve())
    print(f"{title}: http://{args.host}:{args.port}", flush=True)
    return _wait_for_page(subprocess.Popen(streamlit_command(args.port, args.host, page), env=env))


def _wait_for_page(proc: "subprocess.Popen[bytes]") -> int:
    """Wait for a page's Streamlit process and return its exit status; Ctrl-C or SIGTERM to this process stops the
    page too (0), so no page is left running on its port after its command was stopped."""
    from workbench.console.launch import stop_process

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop_process(proc, 10)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def debrief_problem(recordings: Path, session: str | None) -> str:
    """What is wrong with ``workbench debrief``'s arguments (empty when nothing): a missing folder or session."""
    if not recordings.is_dir():
        return f"{recordings}: no such folder; pass --recordings DIR (the folder holding the session folders)"
    if (recordings / "events.jsonl").is_file():
        return (f"{recordings} is a session folder; pass the folder holding the sessions: --recordings "
                f"{recordings.parent} --session {recordings.name}")
    if session and not (recordings / session / "events.jsonl").is_file():
        known = sorted(p.name for p in recordings.iterdir() if (p / "events.jsonl").is_file())
        return f"no session {session!r} in {recordings}; sessions there: {', '.join(known) or 'none'}"
    return ""


def cmd_trainer(args: argparse.Namespace) -> int:
    from workbench.console import trainer_launch

    if problem := ports_problem(args.host, {"--port": args.port}):
        print(f"workbench trainer: {problem}", file=sys.stderr)
        return 2
    trainer_launch.setup_access(args.access_codes, args.recordings)  # refuses a file inside the recordings
    env = trainer_launch.trainer_env(ingest_url=args.ingest.rstrip("/"), console_url=args.console_url.rstrip("/"),
                                     recordings=args.recordings, library=args.library,
                                     access_file=args.access_codes, ice=args.ice)
    print(f"Trainer: http://{args.host}:{args.port}", flush=True)
    return _wait_for_page(trainer_launch.start_trainer(args.port, args.host, env))


def cmd_verify(args: argparse.Namespace) -> int:
    from workbench.store.recordings import verify_session

    report = verify_session(args.session_dir)
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    for warning in report.warnings:
        print(f"warning {warning}")
    print(
        f"{args.session_dir}: {'OK' if report.ok else 'FAILED'} "
        f"({report.events} events, {report.files_checked} files checked, {len(report.problems)} problems)"
    )
    return 0 if report.ok else 1


def cmd_scenario_from_records(args: argparse.Namespace) -> int:
    from workbench.records.montco import MontcoFormatError, load_montco
    from workbench.records.to_scenario import RecordsWindowError, records_to_scenario
    from workbench.store.scenarios import ScenarioError, parse_scenario

    try:
        start, end = args.start, args.end
        loaded = load_montco(args.csv)
        text = records_to_scenario(
            loaded.records, start, end, modality=args.modality, time_scale=args.time_scale, source_name=args.csv.name
        )
        scenario = parse_scenario(text.encode("utf-8"), str(args.out), args.out.resolve().parent)
    except (ValueError, MontcoFormatError, RecordsWindowError, ScenarioError, OSError) as exc:
        print(f"workbench scenario-from-records: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(text, encoding="utf-8")
    print(f"{len(scenario.calls)} call(s) from {args.csv} ({loaded.layout} layout) -> {args.out}")
    return 0


def cmd_export_eido(args: argparse.Namespace) -> int:
    import json

    from analysis.eido import EidoExportError, export_eido

    try:
        documents = export_eido(args.session_dir)
    except EidoExportError as exc:
        print(f"workbench export-eido: {exc}", file=sys.stderr)
        return 2
    try:  # like `archive --out`: the folder is made; written beside and renamed so no half file is left
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_name(f".{args.out.name}.partial")
        partial.write_text(json.dumps(documents, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        partial.replace(args.out)
    except OSError as exc:
        print(f"workbench export-eido: cannot write --out {args.out}: {exc.strerror or exc}; choose a writable "
              "file", file=sys.stderr)
        return 1
    print(f"{len(documents)} incident(s) from {args.session_dir} -> {args.out}")
    return 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    from workbench.store.privacy import PrivacyError, plan_withdrawal, withdraw

    try:
        plan = plan_withdrawal(args.recordings, args.participant)
    except PrivacyError as exc:
        print(f"workbench withdraw: {exc}", file=sys.stderr)
        return 2
    print(plan.describe())
    print(f"  in total {plan.files} files, {plan.bytes} bytes; an audit line goes to "
          f"{args.recordings / 'withdrawals.jsonl'}")
    if not args.yes:
        if not sys.stdin.isatty():
            print("workbench withdraw: not removing without confirmation; pass --yes", file=sys.stderr)
            return 2
        if input("Remove these sessions for good? Type yes: ").strip().lower() != "yes":
            print("nothing removed")
            return 1
    from workbench.console.debrief_media import forget_replays, replay_cache_dirs  # issue 7: no copy stays behind

    copies = [p for s in plan.sessions for p in forget_replays(args.recordings / s.session_id, replay_cache_dirs())]
    if copies:
        print(f"  removed {len(copies)} replay cop{'y' if len(copies) == 1 else 'ies'} made for the debrief")
    try:
        result = withdraw(args.recordings, args.participant, reason=args.reason)
    except (PrivacyError, OSError) as exc:
        print(f"workbench withdraw: {exc} (run it again to finish an interrupted withdrawal)", file=sys.stderr)
        return 1
    print(f"withdrew {len(result.sessions)} session(s) of {args.participant!r}"
          + (f", finished {len(result.plan.completed)} interrupted" if result.plan.completed else ""))
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    from workbench.store.privacy import archive, check_archive, import_archive
    from workbench.store.recordings import RecordingsError

    try:
        if args.check:
            problems = check_archive(args.check)
            for problem in problems:
                print(f"PROBLEM {problem}")
            print(f"{args.check}: {'OK' if not problems else 'FAILED'} ({len(problems)} problems)")
            return 0 if not problems else 1
        if args.recordings is None:
            print("workbench archive: --recordings DIR is needed with --out and --import", file=sys.stderr)
            return 2
        if args.import_file:
            imported = import_archive(args.import_file, args.recordings)
            print(f"imported {len(imported.sessions)} session(s), {imported.files} files, verified -> {args.recordings}")
            return 0
        result = archive(args.recordings, args.out, sessions=args.session or None)
    except RecordingsError as exc:
        print(f"workbench archive: {exc}", file=sys.stderr)
        return 2
    print(f"{len(result.sessions)} session(s), {result.files} files, {result.bytes} bytes -> {result.path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.run import main as bench_main

    return bench_main(args.names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="start ingest + console and play the built-in demo scenario with simulated callers",
                       description="Starts the ingest and the dispatcher console, prints the console URL, and plays "
                       "experiments/demo/scenario.toml: simulated callers stream generated video and audio and attach "
                       "photos. Ctrl-C stops it; --duration runs unattended and exits (then verifies the session).")
    _add_ingest_options(p)
    p.add_argument("--duration", type=positive_seconds,
                   help="stop after this many seconds (> 0), verify the session and exit")
    p.add_argument("--participant", default="demo", help="participant pseudonym recorded in session.json")
    p.add_argument("--no-nasa-tlx", action="store_true",
                   help="start the next block without waiting for the dispatcher's NASA-TLX of the block just ended")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="start the ingest (and the console) and wait",
                       description="Starts the ingest HTTP/WebRTC server and the dispatcher console until Ctrl-C. "
                       "Create calls with POST /api/calls or play scenarios with `workbench run`.")
    _add_ingest_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("run", help="play a scenario file with simulated callers (starts its own ingest + console)",
                       description="Validates SCENARIO, starts ingest and console, and plays the scenario: calls "
                       "arrive at their offsets, simulated callers stream the scenario's media as the block's modality "
                       "allows, and scripted lines appear once the dispatcher answers.")
    p.add_argument("scenario", type=Path, help="scenario TOML file")
    _add_ingest_options(p)
    p.add_argument("--participant", default="P01", help="participant pseudonym")
    p.add_argument("--seed", type=int, default=0, help="seed of the block order (Latin square) and other draws")
    p.add_argument("--participant-index", type=int, metavar="K",
                   help="row K (0-based) of the counterbalancing square (default: from [design] participants or "
                   "the number ending the pseudonym)")
    p.add_argument("--duration", type=positive_seconds, help="stop after this many seconds (> 0)")
    p.add_argument("--ingest", metavar="URL", help="play on a running ingest (workbench serve) instead of starting one; "
                   "the runner then survives ingest restarts. When that ingest has access codes, the runner acts as "
                   "the trainer: pass --access-codes FILE (the same file), --access-code CODE or set "
                   "WORKBENCH_ACCESS_TOKEN")
    p.add_argument("--access-code", metavar="CODE",
                   help="with --ingest: the trainer's access code of an ingest started with --access-codes (or give "
                   "that file with --access-codes FILE, or set WORKBENCH_ACCESS_TOKEN=CODE)")
    p.add_argument("--session-id", metavar="ID", help="id of the new session (default: generated)")
    p.add_argument("--resume", metavar="SESSION_ID",
                   help="continue this session after a runner crash: calls already created are not created again")
    p.add_argument("--no-nasa-tlx", action="store_true",
                   help="start the next block without waiting for the dispatcher's NASA-TLX of the block just ended")
    p.add_argument("--wait-start", action="store_true",
                   help="hold the first block until POST /api/sessions/{id}/control {\"action\": \"start\"}")
    p.add_argument("--participant-flow", action="store_true",
                   help="the console leads the participant through consent, instructions, the practice block, "
                   "breaks and an end questionnaire; the first block waits for the participant's start and the "
                   "session ends after the questionnaire")
    p.add_argument("--consent", type=Path, metavar="FILE",
                   help="the lab's consent text (Markdown, UTF-8) for --participant-flow (default: a built-in text)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("caller", help="one simulated caller (aiortc client) on a caller link",
                       description="Opens a one-time caller link like a browser, streams --video/--audio as live "
                       "WebRTC tracks and uploads --photo files, until --duration or Ctrl-C.")
    p.add_argument("url", help="caller_url from POST /api/calls")
    p.add_argument("--video", metavar="FILE", help="video file to stream (looped), or builtin:NAME (demo media: "
                   "builtin:demo_street_video, builtin:demo_fire_video, ...)")
    p.add_argument("--audio", metavar="FILE", help="audio file to stream (played once), or builtin:NAME")
    p.add_argument("--photo", action="append", default=[], type=_parse_photo, metavar="PATH[@S]",
                   help="photo to attach, optionally S seconds after opening the link (repeatable)")
    p.add_argument("--video-at", type=float, default=0.0, metavar="S", help="start live media S seconds after opening")
    p.add_argument("--duration", type=positive_seconds,
                   help="hang up after this many seconds (> 0; default: on Ctrl-C/SIGTERM)")
    p.add_argument("--ice", choices=("lan", "stun", "loopback"), default="loopback")
    p.set_defaults(func=cmd_caller)

    from analysis.rating_columns import accepted_columns_text

    p = sub.add_parser("analyze", help="tables, statistics, codebook and report from recorded sessions",
                       description="Reads every session under RECORDINGS (or one session folder) and writes to "
                       "--out: trials, sessions, events, summary (statistics), confusion, disagreement, "
                       "form_changes, blocks (NASA-TLX), drt, media_views, focus and data_quality tables (CSV and "
                       "Parquet), codebook.md, report.html and plots/ (PNG and SVG). Damaged sessions are reported, "
                       "never dropped. One progress line per step goes to stderr.")
    p.add_argument("recordings", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--ratings", type=Path, action="extend", nargs="+", default=[], metavar="FILE",
                   help="ratings sheets typed in outside the workbench (RSME per call or NASA-TLX per block; CSV, "
                   "';' with decimal commas or ','). RSME ratings fill calls the recording has none for; NASA-TLX sheets with the "
                   "weights (six tallies or the 15 pairwise choices) give the weighted TLX. " + accepted_columns_text())
    p.add_argument("--quiet", action="store_true", help="no progress on stderr (on a terminal a bar for the sessions "
                   "read, elsewhere one line per step)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("simulate", help="synthetic participants with known effects (complete session folders)",
                       description="Writes one session folder per synthetic participant under --out, as if N "
                       "dispatchers had worked SCENARIO, with the true effects, baselines and spread of the --effects "
                       "TOML file (example: experiments/effects/example.toml; the model is documented in "
                       "workbench/simulate/simulator.py). Block order is counterbalanced (Latin square from --seed); "
                       "the same arguments give the same folders. Analyse them with `workbench analyze`.")
    p.add_argument("--participants", type=int, required=True, metavar="N", help="number of synthetic participants")
    p.add_argument("--scenario", type=Path, required=True, metavar="S", help="scenario TOML file")
    p.add_argument("--effects", type=Path, required=True, metavar="FILE", help="effects TOML file")
    p.add_argument("--seed", type=int, default=0, metavar="K", help="seed of every random choice (default 0)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="recordings folder to write the sessions to")
    p.add_argument("--calls-per-block", type=int, metavar="M",
                   help="work M calls per block, repeating the block's scenario calls in turn (default: each once)")
    p.add_argument("--participant-prefix", default="P", metavar="X",
                   help="pseudonyms are X001, X002, ... (default P); simulating another --seed into a folder that "
                   "already holds P001... needs another prefix (or another --out): one pseudonym is one person")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("debrief", help="the trainer's debrief of recorded sessions in the browser",
                       description="Serves a page that shows, per call of a recorded session, what the caller said, "
                       "what the image showed, what the dispatcher entered against the ground truth (missed items "
                       "marked), RSME and handling time, a replay of the recording in step with the transcript and "
                       "the dispatcher's actions, and the call's time line. Reads the recordings only.")
    p.add_argument("--recordings", type=Path, default=Path("recordings"))
    p.add_argument("--session", metavar="ID", help="show this session only (default: pick one on the page)")
    p.add_argument("--access-codes", type=Path, metavar="FILE",
                   help="the access-codes file `serve` uses; the page then asks for the trainer's code")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8504, help="default 8504 (8503 is the trainer's page)")
    p.set_defaults(func=cmd_debrief)

    p = sub.add_parser("research", help="the researcher's page: analyse a recordings folder in the browser",
                       description="Serves a page that runs the same analysis as `workbench analyze` on --recordings "
                       "and shows the statistics, trials, data quality, the heat map of report locations and the "
                       "report for download.")
    p.add_argument("--recordings", type=Path, default=Path("recordings"))
    p.add_argument("--out", type=Path, help="where the analysis files go (default: results/ beside the recordings)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8502)
    p.add_argument("--access-codes", type=Path, metavar="FILE",
                   help="ask for the researcher's (or trainer's) access code from FILE (as `serve --access-codes`)")
    p.set_defaults(func=cmd_research)

    p = sub.add_parser("trainer", help="the trainer's page on a running ingest: start, watch and steer sessions",
                       description="Serves the trainer's page for an ingest started with `workbench serve`: start a "
                       "session for a participant with a scenario from the library, watch every station live, "
                       "inject calls, pause/resume; the scenario library with previews and new scenarios from "
                       "uploaded media. `serve` and `demo` start it themselves on --trainer-port.")
    p.add_argument("--ingest", default="http://127.0.0.1:8080", help="the running ingest (default %(default)s)")
    p.add_argument("--console-url", default="http://127.0.0.1:8501",
                   help="the dispatcher console as stations reach it, for station links (default %(default)s)")
    p.add_argument("--recordings", type=Path, default=Path("recordings"),
                   help="the ingest's recordings folder (ground truth of each session's scenario copy)")
    p.add_argument("--library", type=Path, default=REPO_ROOT / "experiments",
                   help="scenario library folder (default experiments/)")
    p.add_argument("--access-codes", type=Path, metavar="FILE", help="the access-codes file `serve` uses")
    p.add_argument("--ice", choices=("lan", "stun", "loopback"), default="loopback",
                   help="the ingest's ICE mode (the simulated callers use it)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port_number, default=8503)
    p.set_defaults(func=cmd_trainer)

    p = sub.add_parser("verify", help="check a session folder against its manifest and event schema",
                       description="Checks session.json, every line of events.jsonl (schema, gapless seq) and every "
                       "file in manifest.json (size and SHA-256). Exit 0 when all is sound, 1 otherwise.")
    p.add_argument("session_dir", type=Path)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("scenario-from-records", help="turn a time window of real 911 records into a scenario file",
                       description="Reads Montgomery County 911 records (CSV with the canonical header, or the "
                       "header-less 6-column variant) and writes a scenario with one call per record in "
                       "[--start, --end): real arrival spacing, locations with coordinates, incident types and "
                       "urgencies from the table in workbench/records/to_scenario.py. Times are the records' local "
                       "time (America/New_York) unless the ISO time has an offset. Busy windows hold hundreds of "
                       "calls: --modality audio plays them without simulated media.")
    p.add_argument("csv", type=Path, help="records file (CSV)")
    p.add_argument("--start", required=True, type=iso_time, metavar="ISO", help="window start, e.g. 2016-01-15T12:00")
    p.add_argument("--end", required=True, type=iso_time, metavar="ISO", help="window end (exclusive)")
    p.add_argument("--out", type=Path, required=True, help="scenario TOML file to write")
    p.add_argument("--modality", choices=("audio", "photo", "video"), default="video", help="block condition")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="F",
                   help="multiply arrival offsets by F (0.1 plays an hour in 6 minutes; default 1)")
    p.set_defaults(func=cmd_scenario_from_records)

    p = sub.add_parser("export-eido", help="export a session's incidents as NENA EIDO JSON",
                       description="Writes one NENA-STA-021 EIDO JSON document per incident (for now one per call) "
                       "of SESSION_DIR to --out (a JSON array), marked as exercise.")
    p.add_argument("session_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_export_eido)

    p = sub.add_parser("withdraw", help="remove a participant's sessions (withdrawal), keeping an audit line",
                       description="Removes every session folder whose session.json names PARTICIPANT (a pseudonym, "
                       "matched exactly) and appends one audit line to DIR/withdrawals.jsonl (when, pseudonym, "
                       "session ids, files and bytes removed, SHA-256 of each manifest.json, reason; never the "
                       "content). Prints what it will remove and asks for confirmation on a terminal unless --yes. "
                       "Each folder is first renamed to .withdrawing-<id>: running the command again finishes an "
                       "interrupted withdrawal. The debrief's browser copies of those sessions' recordings (kept "
                       "outside the recordings) are deleted too. The pseudonym-to-person link is not in the "
                       "recordings.")
    p.add_argument("participant", metavar="PARTICIPANT", help="participant pseudonym, e.g. P07")
    p.add_argument("--recordings", type=Path, required=True, metavar="DIR", help="recordings folder")
    p.add_argument("--reason", default="", metavar="TEXT", help="reason for the audit line (no personal data)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_withdraw)

    p = sub.add_parser("archive", help="export sessions with their manifests into one .tar(.gz); check or import one",
                       description="--out FILE: writes the sessions (all, or each --session) of --recordings into "
                       "FILE (.tar, .tar.gz or .tgz) with ARCHIVE-MANIFEST.json (SHA-256 and size of every file). "
                       "--check FILE: re-reads an archive and checks every file against ARCHIVE-MANIFEST.json and "
                       "its session's manifest.json; exit 1 on any problem. --import FILE: restores its sessions "
                       "into --recordings (never over an existing or withdrawn session) and verifies each.")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, metavar="FILE", help="archive to write (never overwritten)")
    mode.add_argument("--check", type=Path, metavar="FILE", help="archive to check")
    mode.add_argument("--import", dest="import_file", type=Path, metavar="FILE", help="archive to restore")
    p.add_argument("--recordings", type=Path, metavar="DIR", help="recordings folder (with --out and --import)")
    p.add_argument("--session", action="append", default=[], metavar="ID", help="session to archive (repeatable)")
    p.set_defaults(func=cmd_archive)

    p = sub.add_parser("bench", help="run the benchmarks and print their figures against a same-run baseline")
    p.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    p.set_defaults(func=cmd_bench)
    from workbench.simulate.automation import add_cli as add_simulate_automation  # issue 11

    add_simulate_automation(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
