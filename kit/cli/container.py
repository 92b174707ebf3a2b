"""`repro-kit container build` and `container evaluate`: the pinned images (needs dockerd)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kit.cli.options import echo_err


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
    from kit.evaluate.container import BuildRequest, build_image

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
@click.pass_context
def container_evaluate(
    ctx: click.Context,
    image: str,
    network: str,
    hf_home: Path | None,
    output: Path,
    gpus: bool | None,
) -> None:
    """Run `repro-kit evaluate` in IMAGE; other options are passed to evaluate."""
    from kit.evaluate.container import CONTAINER_MODEL, RunRequest, run_evaluate
    from kit.evaluate.model_source import check_folder, looks_like_path

    if gpus is None:
        gpus = image.endswith(":cuda") or "cuda" in image.rsplit(":", 1)[-1]
    args, model_dir = list(ctx.args), None
    if args and not args[0].startswith("-") and looks_like_path(args[0]):
        model_dir = Path(args[0]).expanduser()  # a local model folder: mounted read-only
        check_folder(model_dir)
        args[0] = CONTAINER_MODEL
    code = run_evaluate(
        RunRequest(image, network, hf_home, output, args, gpus, model_dir=model_dir),
        log=echo_err,
    )
    if code != 0:
        sys.exit(code)
    click.echo(f"run folder: {output}")
