import pytest

from rootless.errors import ImageError
from rootless.image.reference import Reference, candidates, is_qualified, parse_reference

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
        ("user/app", "docker.io/user/app:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/ns/app:v2", "localhost:5000/ns/app:v2"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ("quay.io/a/b/c:x-y.z_1", "quay.io/a/b/c:x-y.z_1"),
        (f"busybox@{D}", f"docker.io/library/busybox@{D}"),
        (f"busybox:1@{D}", f"docker.io/library/busybox:1@{D}"),
        ("my-app__x.y", "docker.io/library/my-app__x.y:latest"),
    ],
)
def test_normalises(text: str, full: str) -> None:
    assert str(parse_reference(text)) == full


def test_fields() -> None:
    ref = parse_reference("localhost:5000/ns/app:v2")
    assert ref == Reference("localhost:5000", "ns/app", "v2", None)
    assert ref.name == "localhost:5000/ns/app"
    assert parse_reference(f"app@{D}").tag is None


def test_search_registries_order() -> None:
    refs = candidates("app", search_registries=("quay.io", "docker.io"))
    assert [str(r) for r in refs] == ["quay.io/app:latest", "docker.io/library/app:latest"]
    assert parse_reference("app", search_registries=("quay.io",)).registry == "quay.io"
    # A qualified name ignores the search list.
    assert len(candidates("quay.io/x/y", search_registries=("a.io", "b.io"))) == 1


def test_is_qualified() -> None:
    assert is_qualified("localhost/x")
    assert is_qualified("host:1/x")
    assert not is_qualified("user/x")
    assert not is_qualified("busybox")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid image reference '': the name is empty"),
        (
            "Busybox",
            "invalid image reference 'Busybox': repository component 'Busybox' must be "
            "lower-case (letters a-z, digits, and '.', '_', '__' or '-' between them)",
        ),
        ("a//b", "invalid image reference 'a//b': repository component '' bad characters"),
        ("busybox:-x", "invalid image reference 'busybox:-x': bad tag '-x'"),
        ("busybox@sha256:abc", "invalid image reference 'busybox@sha256:abc': bad digest"),
        (
            "busybox@md5:" + "a" * 32,
            "invalid image reference 'busybox@md5:" + "a" * 32 + "': invalid digest",
        ),
        ("a" * 64, "a 64-hex-digit name is an image id, not a name"),
        ("bad_host!/x", "repository component 'bad_host!' bad characters"),
        ("x" * 300, "longer than 255 characters"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(ImageError) as info:
        parse_reference(text)
    assert message in str(info.value)


def test_no_search_registries() -> None:
    with pytest.raises(ImageError, match="no unqualified-search-registries configured"):
        parse_reference("busybox", search_registries=())
