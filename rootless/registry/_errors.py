"""Registry failures turned into ImageError messages (pure)."""

from __future__ import annotations

import json

from rootless.errors import ImageError


def error_details(body: bytes) -> str:
    """``CODE: message`` pairs from a distribution-spec error body, or a trimmed text body."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list):
        parts = []
        for err in doc["errors"]:
            if isinstance(err, dict):
                code, msg = str(err.get("code", "")), str(err.get("message", ""))
                parts.append(f"{code}: {msg}" if code and msg else code or msg)
        return "; ".join(p for p in parts if p)
    text = body.decode("utf-8", "replace").strip()
    return " ".join(text.split())[:200]


def status_error(
    action: str, host: str, status: int, body: bytes, *, user: str | None = None
) -> ImageError:
    """The error for a registry answer with an unexpected status.

    *action* says what failed (``cannot pull manifest docker.io/library/busybox:latest``),
    *user* is the user whose credentials were sent, if any.
    """
    details = error_details(body)
    why = f" ({details})" if details else ""
    if status == 401:
        if user is not None:
            return ImageError(
                f'{action}: unauthorized: {host} rejected the credentials of user "{user}"{why}',
                hint=f"check the password and run: rootless login {host}",
            )
        return ImageError(
            f"{action}: unauthorized: {host} requires authentication{why}",
            hint=f"run: rootless login {host}",
        )
    if status == 403:
        return ImageError(f"{action}: access denied by {host}{why}")
    if status == 404:
        return ImageError(f"{action}: not found on {host}{why}", hint="check the name and tag")
    if status == 429:
        return ImageError(f"{action}: {host} says too many requests{why}", hint="retry later")
    return ImageError(f"{action}: {host} answered HTTP {status}{why}")


def connect_error(host: str, exc: BaseException, *, tls_verify: bool) -> ImageError:
    """The error for a registry that cannot be reached at all."""
    # httpx wraps httpcore wraps trio, whose connect error is caused by a group of OSErrors.
    chain: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(chain) < 20:
        cur = todo.pop()
        chain.append(cur)
        if isinstance(cur, BaseExceptionGroup):
            todo.extend(cur.exceptions)
        nxt = cur.__cause__ or cur.__context__
        if nxt is not None:
            todo.append(nxt)
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in text:
        return ImageError(
            f"cannot connect to registry {host}: connection refused",
            hint="check that the registry is running and the host and port are right",
        )
    # The outer exceptions often have no text; the innermost that has one says what happened.
    detail = next((str(e) for e in reversed(chain) if str(e)), type(exc).__name__)
    if "ssl" in text or "certificate" in text:
        hint = (
            "for a registry without TLS pass --tls-verify=false, "
            "or set insecure = true for it in registries.conf"
            if tls_verify
            else None
        )
        return ImageError(f"cannot connect to registry {host}: TLS failed: {detail}", hint=hint)
    if "name or service not known" in text or "name resolution" in text:
        return ImageError(f"cannot connect to registry {host}: unknown host")
    return ImageError(f"cannot connect to registry {host}: {detail}")
