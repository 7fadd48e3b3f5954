"""Record behaves like typing.NamedTuple where the code relies on it."""

from __future__ import annotations

import copy
import pickle

import pytest

from rootless._record import Record


class Point(Record):
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


def test_fields_positions_and_defaults() -> None:
    p = Point(3)
    assert (p.x, p.y, p.tags) == (3, 0, ())
    assert p == (3, 0, ()) and p[0] == 3
    assert Point(1, y=2) == Point(x=1, y=2) == Point(1, 2, ())
    assert Point._fields == ("x", "y", "tags")
    assert Point._field_defaults == {"y": 0, "tags": ()}
    assert p.norm1() == 3


def test_replace_asdict_make_repr() -> None:
    p = Point(1, 2)
    assert p._replace(y=5) == Point(1, 5)
    assert type(p._replace(y=5)) is Point
    assert p._asdict() == {"x": 1, "y": 2, "tags": ()}
    assert Point._make([4, 5, ("a",)]) == Point(4, 5, ("a",))
    assert repr(p) == "Point(x=1, y=2, tags=())"


def test_immutable_hashable_and_copyable() -> None:
    p = Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.other = 3  # type: ignore[attr-defined]
    assert hash(p) == hash((1, 2, ()))
    assert pickle.loads(pickle.dumps(p)) == p
    assert copy.deepcopy(p) == p and type(copy.copy(p)) is Point


def test_pattern_matching() -> None:
    match Point(1, 2):
        case Point(x, y):
            assert (x, y) == (1, 2)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing required argument 'x'"),
        ((1, 2, (), 4), {}, "takes 3 fields"),
        ((1,), {"z": 1}, "unexpected or repeated"),
        ((1,), {"x": 1}, "unexpected or repeated"),
    ],
)
def test_bad_construction(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="has no fields"):
        Point(1)._replace(z=1)  # type: ignore[call-arg]


def test_default_before_required_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default"):

        class Bad(Record):
            a: int = 0
            b: int
