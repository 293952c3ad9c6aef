"""Render carbongate's install manifests with kubectl's kustomize: ``make deploy-dev`` and ``make manifests``.

::

    python scripts/manifests.py dev  --out build/deploy-dev
    python scripts/manifests.py prod --out dist/install.yaml [--image REGISTRY/carbongate@sha256:...]

``dev`` makes what a development install needs and no repository holds: a
serving certificate for the webhook Service (``certs generate``; the CA
certificate becomes the webhook configuration's ``caBundle``) and one random
bearer token per OPA caller. Both go into the output directory with a
kustomization that adds them, as Secrets, to ``deploy/overlays/dev``; the
whole install is rendered into ``install.yaml`` there, ready for
``kubectl apply -f``. Existing inputs are kept (re-running renders the
current tree with the same certificate and tokens); ``--renew`` replaces
them.

``prod`` renders ``deploy/overlays/prod`` into one file, as Gatekeeper ships
its release manifest. ``--image`` names the image you built and pushed; a
release passes it by digest so the file pins exactly what was tested.

Needs kubectl with kustomize 5.0 or newer (kubectl 1.27+): older kustomize
cannot patch a list of targets the way ``deploy/base`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MINIMUM_KUSTOMIZE = (5, 0)
OPA_CALLERS = ("webhook", "feed", "governance")
TOKEN_BYTES = 32


class ManifestError(RuntimeError):
    """What stops a render, said so a person can act on it."""


def kubectl() -> str:
    """The kubectl to render with, checked for a kustomize this tree can use."""
    binary = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not binary:
        raise ManifestError("kubectl is not installed: it renders the manifests (kustomize is built in)")
    done = subprocess.run([binary, "version", "--client"], capture_output=True, text=True,
                          timeout=60, check=False)
    found = re.search(r"Kustomize Version: v?(\d+)\.(\d+)", done.stdout)
    if found is None:
        raise ManifestError(f"{binary} does not report a kustomize version: {done.stdout or done.stderr}")
    version = (int(found.group(1)), int(found.group(2)))
    if version < MINIMUM_KUSTOMIZE:
        raise ManifestError(f"{binary} has kustomize {version[0]}.{version[1]}; "
                            f"{MINIMUM_KUSTOMIZE[0]}.{MINIMUM_KUSTOMIZE[1]} or newer is needed (kubectl 1.27+)")
    return binary


def render(directory: Path) -> str:
    """``kubectl kustomize DIRECTORY``, or its error."""
    done = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode != 0:
        raise ManifestError(f"kubectl kustomize {directory} failed: {done.stderr.strip()}")
    return done.stdout


def _relative(target: Path, start: Path) -> str:
    """kustomize takes resource directories only as relative paths."""
    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def _write_private(path: Path, text: str) -> None:
    """Owner-only from the first byte: a token file must never be world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_atomically(path: Path, text: str, *, mode: int = 0o600) -> None:
    """A reader (kubectl apply) never sees half a file; owner-only unless ``mode`` says otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                     prefix=f".{path.name}.") as handle:
        handle.write(text)
    os.chmod(handle.name, mode)
    os.replace(handle.name, path)


def tokens_text() -> str:
    """One random token per OPA caller, as the env file the Secret generator reads."""
    return "".join(f"{caller}={secrets.token_hex(TOKEN_BYTES)}\n" for caller in OPA_CALLERS)


def dev_kustomization(out: Path) -> dict[str, object]:
    """The dev overlay plus this install's certificate, tokens and caBundle."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [_relative(REPO / "deploy" / "overlays" / "dev", out)],
        # The tokens Secret is renamed by content: old ones are pruned by this label.
        "generatorOptions": {"labels": {"carbongate.io/generated": "true"}},
        "secretGenerator": [
            # A fixed name, the one cert-manager uses in prod, so the monitoring
            # kustomization works with either overlay. Never ca.key.
            {"name": "carbongate-webhook-tls", "namespace": "carbongate", "type": "kubernetes.io/tls",
             "files": ["certs/tls.crt", "certs/tls.key", "certs/ca.crt"],
             "options": {"disableNameSuffixHash": True}},
            {"name": "carbongate-opa-tokens", "namespace": "carbongate", "envs": ["opa-tokens.env"]},
        ],
        # The Secret's ca.crt is already base64 of the PEM, which is what caBundle holds.
        "replacements": [{
            "source": {"kind": "Secret", "name": "carbongate-webhook-tls", "fieldPath": "data.[ca.crt]"},
            "targets": [{"select": {"kind": "MutatingWebhookConfiguration", "name": "carbongate"},
                         "fieldPaths": ["webhooks.*.clientConfig.caBundle"],
                         "options": {"create": True}}],
        }],
    }


def prepare_dev(out: Path, *, renew: bool = False) -> None:
    """Certificate, tokens and kustomization in ``out``; existing ones kept unless ``renew``."""
    import datetime

    from certs import authority, files

    out.mkdir(parents=True, exist_ok=True)
    if renew or not (out / "certs" / "tls.crt").exists():
        files.generate(
            out_dir=out / "certs",
            identity=authority.ServiceIdentity(service="carbongate-webhook", namespace="carbongate"),
            days=365, force=True, now=datetime.datetime.now(datetime.UTC))
    if renew or not (out / "opa-tokens.env").exists():
        _write_private(out / "opa-tokens.env", tokens_text())
    # JSON is YAML: no dependency beyond the standard library for this file.
    _write_atomically(out / "kustomization.yaml", json.dumps(dev_kustomization(out), indent=2) + "\n")


def render_prod(image: str | None) -> str:
    """The prod overlay, with the carbongate image set when one is named."""
    overlay = REPO / "deploy" / "overlays" / "prod"
    if image is None:
        return render(overlay)
    with tempfile.TemporaryDirectory(prefix="carbongate-manifests-") as wrapper:
        path = Path(wrapper)
        _write_atomically(path / "kustomization.yaml", json.dumps({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [_relative(overlay, path)], "images": [image_entry(image)]}, indent=2) + "\n")
        return render(path)


def image_entry(image: str) -> dict[str, str]:
    """A kustomize ``images`` entry renaming ``carbongate`` to ``image`` (by digest or tag)."""
    name, separator, digest = image.partition("@")
    entry: dict[str, str] = {"name": "carbongate"}
    if separator:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ManifestError(f"--image {image}: the digest must be sha256: and 64 hex digits")
        entry.update(newName=name, digest=digest)
    else:
        repository, tag = _split_tag(name)
        entry.update(newName=repository, **({"newTag": tag} if tag else {}))
    return entry


def _split_tag(reference: str) -> tuple[str, str | None]:
    """``registry:5000/carbongate:1.2`` -> (``registry:5000/carbongate``, ``1.2``)."""
    head, _, last = reference.rpartition("/")
    if ":" in last:
        repository, tag = last.split(":", 1)
        return (f"{head}/{repository}" if head else repository), tag
    return reference, None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/manifests.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="certificate, OPA tokens and the dev install in one directory")
    dev.add_argument("--out", type=Path, default=REPO / "build" / "deploy-dev")
    dev.add_argument("--renew", action="store_true", help="new certificate and tokens")
    prod = commands.add_parser("prod", help="the prod overlay as one install.yaml")
    prod.add_argument("--out", type=Path, default=REPO / "dist" / "install.yaml")
    prod.add_argument("--image", help="the carbongate image, REPOSITORY@sha256:DIGEST for a release")
    args = parser.parse_args(argv)
    try:
        if args.command == "dev":
            prepare_dev(args.out, renew=args.renew)
            target = args.out / "install.yaml"
            _write_atomically(target, render(args.out))
        else:
            target = args.out
            # No secret in it (prod takes them from your secret store): a shareable file.
            _write_atomically(target, render_prod(args.image), mode=0o644)
    except (ManifestError, OSError) as error:
        print(f"manifests: {error}", file=sys.stderr)
        return 1
    print(f"wrote {target}; apply it with: kubectl apply -f {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
