"""Signing: OpenSSH signatures (SSHSIG) over a bundle's manifest, and who may have made them.

``wire`` is the SSH wire format, ``keys`` loads and makes private keys, ``allowed_signers``
reads trust anchors (allowed_signers files, ``.pub`` keys), ``sshsig`` signs (with any
``Signer``: a key file's, or ssh-agent's from ``agent``) and verifies, and ``policy`` holds the
signature policies that ``kit.verify`` applies. This package imports only ``kit.errors`` and
``kit.fsio`` from the kit (and ``cryptography``/``bcrypt``).
"""
