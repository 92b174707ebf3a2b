"""`repro-kit container build` and `container evaluate`: the pinned images (needs dockerd)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kit.cli.options import echo_err
from kit.errors import ExitCode, KitError


@click.group()
def container() -> None:
    """Build the pinned images and run evaluations in them (needs a Docker daemon)."""


@container.command("build")
@click.option("--flavor", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--base-image", help="Base image (default: the official python 3.11 slim image).")
@click.option("--tag", help="Image tag (default: repro-kit:FLAVOR).")
@click.option(
    "--ca-cert",
    type=click.Path(path_type=Path),
    help="CA bundle pip needs during the build (builder stage only).",
)
@click.option(
    "--wheels",
    type=click.Path(path_type=Path),
    help="Folder of local wheels pip may use (hashes still checked).",
)
@click.option("--network", help="Network for the build's RUN steps (e.g. host).")
@click.option("--source", type=click.Path(path_type=Path), help="repro-kit checkout to build.")
@click.option("--no-cache", is_flag=True, help="Rebuild every layer (a cold build).")
def container_build(
    flavor: str,
    base_image: str | None,
    tag: str | None,
    ca_cert: Path | None,
    wheels: Path | None,
    network: str | None,
    source: Path | None,
    no_cache: bool,
) -> None:
    """Build Dockerfile.cpu or Dockerfile.cuda with the docker SDK."""
    from kit.container.image import BuildRequest, build_image

    info = build_image(
        BuildRequest(flavor, base_image, tag, ca_cert, wheels, network, source, no_cache),
        log=echo_err,
    )
    click.echo(f"built {info.tag} {info.image_id} ({(info.size or 0) / 1e9:.2f} GB)")


@container.command(
    "evaluate", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.option("--image", default="repro-kit:cpu", show_default=True)
@click.option(
    "--network",
    type=click.Choice(["none", "host", "bridge"]),
    default="bridge",
    show_default=True,
    help="none: hermetic run from a prefilled cache (--hf-home).",
)
@click.option(
    "--hf-home",
    type=click.Path(path_type=Path),
    help="HF cache to mount read-only as the container's HF_HOME.",
)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), required=True, help="Run folder on the host."
)
@click.option("--gpus/--no-gpus", default=None, help="Request GPUs (default: for cuda images).")
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(path_type=Path),
    help="Where the bundle lands on the host (default: <output>.tar.gz).",
)
@click.option("--no-bundle", is_flag=True, help="Stop at the run folder.")
@click.option(
    "--sign",
    "key",
    metavar="KEY.pub",
    type=click.Path(path_type=Path),
    help="Sign in the container through your ssh-agent: a public key whose private half the "
    "agent holds (only the agent socket is forwarded; default: $REPRO_KIT_SIGNING_KEY).",
)
@click.option("--no-sign", is_flag=True, help="Do not sign.")
@click.pass_context
def container_evaluate(
    ctx: click.Context,
    image: str,
    network: str,
    hf_home: Path | None,
    output: Path,
    gpus: bool | None,
    bundle_path: Path | None,
    no_bundle: bool,
    key: Path | None,
    no_sign: bool,
) -> None:
    """Run `repro-kit evaluate` in IMAGE; other options are passed to evaluate.

    Ends with the verified bundle on the host; with --sign KEY.pub it is signed inside the
    container by your ssh-agent, and no private key enters the container.
    """
    from kit.container.launch import CONTAINER_MODEL, RunRequest, run_evaluate
    from kit.evaluate.model.source import check_folder, looks_like_path

    if gpus is None:
        gpus = image.endswith(":cuda") or "cuda" in image.rsplit(":", 1)[-1]
    args, model_dir = list(ctx.args), None
    if args and not args[0].startswith("-") and looks_like_path(args[0]):
        model_dir = Path(args[0]).expanduser()  # a local model folder: mounted read-only
        check_folder(model_dir)
        args[0] = CONTAINER_MODEL
    from kit.cli.options import default_signing_key
    from kit.publish.submission import default_bundle_path
    from kit.signing.allowed_signers import is_public_key_file

    sign_pub = None if no_sign else (key or default_signing_key())
    if sign_pub is not None and not is_public_key_file(sign_pub):
        raise KitError(
            f"{sign_pub} is a private key: in a container, sign through ssh-agent with the "
            "public key (--sign KEY.pub); no private key enters the container",
            ExitCode.USAGE,
        )
    bundle = None if no_bundle else (bundle_path or default_bundle_path(output))
    from kit.publish.resultsrepo import suggested_checkout

    agent = os.environ.get("SSH_AUTH_SOCK")
    results = os.path.abspath(suggested_checkout(Path.cwd()))  # for the printed next step
    req = RunRequest(
        image, network, hf_home, output, args, gpus, model_dir=model_dir, bundle=bundle,
        sign_pub=sign_pub, agent_socket=Path(agent) if agent else None, host_results=results,
    )  # fmt: skip
    code = run_evaluate(req, log=echo_err)
    if code != 0:
        sys.exit(code)
    click.echo(f"run folder: {output}")
    if bundle is not None and bundle.is_file():
        click.echo(f"bundle: {bundle}")
