"""`repro-kit review`: a results pull request against the bundles attached to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kit.cli.options import trust_options
from kit.errors import ExitCode, KitError


@click.command("review")
@click.argument("results_repo", type=click.Path(path_type=Path))
@click.option(
    "--base",
    "base_ref",
    metavar="REF",
    required=True,
    help="The pull request's target: the files that differ between the merge-base of REF and "
    "HEAD are reviewed, as HEAD holds them.",
)
@click.option(
    "--bundle",
    "bundles",
    metavar="B",
    multiple=True,
    required=True,
    help="A bundle: a path, or https://...#sha256=HEX (fetched, its sha256 checked before it "
    "is read). Repeat for several.",
)
@trust_options(any_signer=True)
@click.option(
    "--markdown",
    "markdown_file",
    type=click.Path(path_type=Path),
    help="Also write the review as Markdown (a pull-request comment) to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the review as JSON, not Markdown.")
def review(
    results_repo: Path,
    base_ref: str,
    bundles: tuple[str, ...],
    policy: Any,
    markdown_file: Path | None,
    as_json: bool,
) -> None:
    """Check that the files a results pull request changes are what its bundles yield.

    RESULTS_REPO is a checkout of the results repository at the pull request's HEAD. Each
    bundle is verified once and exported, as `repro-kit export` would, into the base; every
    file changed under results/ is then backed, differs, removed or unbacked. Exit 0 only
    when every changed file is backed and the repository's rules pass.
    """
    from kit.publish.review.markdown import review_markdown
    from kit.publish.review.reviewer import review_pull_request

    result = review_pull_request(results_repo, base_ref, list(bundles), policy)
    text = review_markdown(result)
    if markdown_file is not None:
        from kit.fsio import atomic_write_text

        try:
            atomic_write_text(markdown_file, text)
        except OSError as e:
            where = f"cannot write {markdown_file}: {e.strerror or e}"
            raise KitError(where, ExitCode.OUTPUT) from None
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2, default=str))
    else:
        click.echo(text, nl=False)
    code = result.exit_code()
    if code != ExitCode.OK:
        raise KitError(result.verdict(), code)
