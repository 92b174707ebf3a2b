"""Options shared by several commands, declared once, and the objects they build.

Each decorator adds a group of click options and hands the command one ready value instead of
the raw flags: ``trust_options`` a signature policy, ``signing_options`` a signer (or None),
``tolerance_options`` the two tolerances. Flag names live here, never in the core.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kit.errors import ExitCode, KitError
from kit.verify.reference import DEFAULT_MEAN_TOLERANCE, DEFAULT_TOLERANCE

F = TypeVar("F", bound=Callable[..., Any])

#: A function that signs bytes and returns an armored SSH signature.
Signer = Callable[[bytes], str]


def split_tasks(value: str | None) -> tuple[str, ...]:
    """``"A, B,,C"`` -> ``("A", "B", "C")``."""
    return tuple(t.strip() for t in (value or "").split(",") if t.strip())


def console() -> Any:
    """A rich console sized to the terminal (100-160 columns), without auto-highlighting."""
    from rich.console import Console

    width = shutil.get_terminal_size((120, 24)).columns
    return Console(highlight=False, soft_wrap=False, width=max(100, min(160, width)))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shown(text: object) -> str:
    """``text`` as one terminal-safe line: control characters written as escapes (``\\x1b``).

    Bundle contents (task types, member names, reasons quoting them) reach the terminal only
    through this, so an escape sequence or a newline in a bundle cannot drive the terminal.
    """
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], str(text))


_CLASS = r"(?:[A-Za-z_]\w*\.)*[A-Z][a-zA-Z]*(?:Error|Exception)"
_CLASS_IN_PARENS = re.compile(rf"\s*\({_CLASS}\)")
_CLASS_PREFIX = re.compile(rf"\b{_CLASS}: ")


def plain(text: str) -> str:
    """``text`` without Python exception class names (``KeyError: 'x'`` -> ``'x'``): a user's
    message names the problem, not the class a library raised it with."""
    return _CLASS_PREFIX.sub("", _CLASS_IN_PARENS.sub("", text))


def echo_err(line: str) -> None:
    """Print one line on stderr (the core's log callback), control characters escaped."""
    click.echo(shown(line), err=True)


def env_offline() -> bool:
    """Whether the environment already asks for offline Hugging Face access."""
    return os.environ.get("HF_HUB_OFFLINE", "") in {"1", "true", "True"}


def go_offline() -> None:
    """Make the HF libraries use only the local cache (set before they are imported)."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"


# -- signature policy ---------------------------------------------------------------------------


def build_policy(
    allowed_signers: Path | None,
    identity: str | None,
    public_key: Path | None,
    allow_unsigned: bool,
    any_signer: bool = False,
) -> Any:
    """The signature policy the trust flags ask for; contradictory or missing ones are refused.

    ``any_signer`` (review's --any-signer, for a repository without allowed signers): a
    signature good under the key it carries, shown as untrusted (``CarriedKey``).
    """
    from kit.signing.policy import AcceptUnsigned, CarriedKey, policy_for

    if allowed_signers and public_key:
        raise KitError("give --allowed-signers or --public-key, not both", ExitCode.USAGE)
    if identity and not allowed_signers:
        raise KitError("--identity needs --allowed-signers", ExitCode.USAGE)
    if any_signer and (allowed_signers or public_key):
        raise KitError(
            "--any-signer is for a repository without allowed signers: give it or "
            "--allowed-signers/--public-key, not both",
            ExitCode.USAGE,
        )
    if any_signer:
        return AcceptUnsigned(CarriedKey()) if allow_unsigned else CarriedKey()
    for p in (allowed_signers, public_key):
        if p is not None and not p.is_file():
            raise KitError(f"{p} not found", ExitCode.NOT_FOUND)
    return policy_for(
        allowed_signers=allowed_signers,
        identity=identity,
        public_key=public_key,
        accept_unsigned=allow_unsigned,
    )


def trust_options(
    *, always_accept_unsigned: bool = False, any_signer: bool = False
) -> Callable[[F], F]:
    """Add --allowed-signers/--identity/--public-key/--allow-unsigned; pass ``policy``.

    ``always_accept_unsigned`` leaves --allow-unsigned out and always accepts unsigned (or
    unchecked) bundles: for report, whose page shows the bundle as unsigned. ``any_signer``
    adds --any-signer (review: a good signature under its own key, shown untrusted).
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            kw["policy"] = build_policy(
                kw.pop("allowed_signers"),
                kw.pop("identity"),
                kw.pop("public_key"),
                always_accept_unsigned or kw.pop("allow_unsigned"),
                any_signer and kw.pop("any_signer"),
            )
            return fn(*args, **kw)

        opts = [
            click.option(
                "--allowed-signers",
                type=click.Path(path_type=Path),
                help="OpenSSH allowed_signers file (the format git uses) to check signatures.",
            ),
            click.option(
                "--identity", help="Principal that must have signed (with --allowed-signers)."
            ),
            click.option(
                "--public-key", type=click.Path(path_type=Path), help="The signer's .pub key."
            ),
        ]
        if not always_accept_unsigned:
            opts.append(
                click.option(
                    "--allow-unsigned",
                    is_flag=True,
                    help="Accept an unsigned bundle, or a signed one with no key to check it.",
                )
            )
        if any_signer:
            opts.append(
                click.option(
                    "--any-signer",
                    is_flag=True,
                    help="No allowed-signers file: accept a signature good under the key it "
                    "carries, shown as untrusted with its fingerprint.",
                )
            )
        out: Any = wrapper
        for opt in reversed(opts):
            out = opt(out)
        return out

    return decorate


def partial_option(*, help_text: str) -> Callable[[F], F]:
    """Add --allow-partial (accept a bundle whose run or a task is not complete); pass
    ``allow_partial``. Commands that must never take a partial bundle leave it out."""
    return click.option("--allow-partial", "allow_partial", is_flag=True, help=help_text)


# -- signing ------------------------------------------------------------------------------------


SIGNING_KEY_ENV = "REPRO_KIT_SIGNING_KEY"


def default_signing_key() -> Path | None:
    """The key $REPRO_KIT_SIGNING_KEY names (``~`` expanded); None when unset or empty."""
    value = os.environ.get(SIGNING_KEY_ENV, "").strip()
    return Path(value).expanduser() if value else None


def make_signer(key: Path | None, passphrase_env: str | None = None) -> Signer | None:
    """A function that signs bytes with ``key`` (default: $REPRO_KIT_SIGNING_KEY); None if neither.

    A public key (``*.pub``, or a file holding one OpenSSH public key line) signs through the
    running ssh-agent, which must hold it; any other file is a private key, whose passphrase
    comes from the variable ``passphrase_env`` names or a prompt on a terminal.
    """
    from kit.signing.allowed_signers import is_public_key_file
    from kit.signing.sshsig import FileKeySigner, sign_with

    key = key if key is not None else default_signing_key()
    if key is None:
        return None
    if is_public_key_file(key):
        if passphrase_env:
            raise KitError(
                f"--passphrase-env is for a private key; {key} is a public key, whose "
                "private half ssh-agent holds",
                ExitCode.USAGE,
            )
        from kit.signing.agent import agent_signer

        agent = agent_signer(key)
        return lambda data: sign_with(agent, data)
    signer = FileKeySigner(_load_private(key, passphrase_env))
    return lambda data: sign_with(signer, data)


def _load_private(key: Path, passphrase_env: str | None) -> Any:
    from kit.signing.keys import PassphraseNeeded, load_private_key

    passphrase = None
    if passphrase_env:
        if passphrase_env not in os.environ:
            raise KitError(f"environment variable {passphrase_env} is not set", ExitCode.USAGE)
        passphrase = os.environ[passphrase_env].encode()
    try:
        return load_private_key(key, passphrase)
    except PassphraseNeeded:
        if passphrase is not None or not sys.stdin.isatty():
            raise
        passphrase = click.prompt(f"Passphrase for {key}", hide_input=True).encode()
        return load_private_key(key, passphrase)


SIGN_HELP = (
    " KEY is a private key file, or a .pub file whose key ssh-agent holds"
    f" (default: ${SIGNING_KEY_ENV})."
)


def signing_options(
    *, help_sign: str, required: bool = False, pass_key: bool = False
) -> Callable[[F], F]:
    """Add --sign KEY, --passphrase-env VAR (and --no-sign); pass ``signer``.

    ``pass_key`` also passes ``signing_key``: the key file that signs (None when none does).

    --sign defaults to $REPRO_KIT_SIGNING_KEY; ``signer`` is None when neither gives a key or
    --no-sign is given. ``required`` (for ``sign``): no --no-sign, and a missing key is a
    usage error. ``--key`` is an alias of --sign there (its older name).
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            key, env = kw.pop("key"), kw.pop("passphrase_env")
            if kw.pop("no_sign", False):
                if key is not None:
                    raise KitError("give --sign KEY or --no-sign, not both", ExitCode.USAGE)
                kw["signer"] = None
                if pass_key:
                    kw["signing_key"] = None
                return fn(*args, **kw)
            kw["signer"] = make_signer(key, env)
            if pass_key:
                kw["signing_key"] = (key or default_signing_key()) if kw["signer"] else None
            if required and kw["signer"] is None:
                raise KitError(f"give --sign KEY or set {SIGNING_KEY_ENV}", ExitCode.USAGE)
            return fn(*args, **kw)

        out: Any = click.option(
            "--passphrase-env", metavar="VAR", help="Read the key's passphrase from VAR."
        )(wrapper)
        if not required:
            out = click.option(
                "--no-sign",
                "no_sign",
                is_flag=True,
                help=f"Do not sign, even if {SIGNING_KEY_ENV} is set.",
            )(out)
        names = ("--sign", "--key") if required else ("--sign",)
        out = click.option(
            *names,
            "key",
            metavar="KEY",
            type=click.Path(path_type=Path),
            help=help_sign + SIGN_HELP,
        )(out)
        return out

    return decorate


def print_next_step(bundle: Path, public_key: str | None, key: Path | None) -> None:
    """``next: repro-kit export ...`` for a written bundle (runnable as printed), and its notes."""
    from kit.publish.nextstep import export_step

    step = export_step(bundle, public_key=public_key, key=key, environ=os.environ, cwd=Path.cwd())
    click.echo(f"next: {step.line}")
    for note in step.notes:
        click.echo(f"      ({note})")


# -- tolerances ---------------------------------------------------------------------------------


def tolerance_options(fn: F) -> F:
    """Add --tolerance and --mean-tolerance (absolute, on the 0-1 scale, not negative)."""
    out: Any = click.option(
        "--mean-tolerance",
        type=click.FloatRange(min=0),
        default=DEFAULT_MEAN_TOLERANCE,
        show_default=True,
        help="Tolerance of the benchmark means.",
    )(fn)
    out = click.option(
        "--tolerance",
        type=click.FloatRange(min=0),
        default=DEFAULT_TOLERANCE,
        show_default=True,
        help="Per-task tolerance, absolute on the 0-1 scale.",
    )(out)
    return out
