"""`Record`: typed immutable records that cost no more to define than a plain class.

`typing.NamedTuple` compiles a `__new__` for every class with `exec` (~0.25 ms each); the
~60 record types that `rootless run` imports cost ~15 ms of every start. A `Record`
subclass is written exactly like a NamedTuple, and mypy checks it as one (under
TYPE_CHECKING the name *is* `typing.NamedTuple`), but at run time one shared `__new__`
fills the fields, so defining a class is as cheap as defining any class.

Supported: fields by name and position, defaults, `_fields`, `_field_defaults`,
`_replace`, `_asdict`, `_make`, equality and hashing as tuples, a NamedTuple-style repr,
pickling and copying, pattern matching.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar

__all__ = ["Record"]

if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:

    class _RecordType(type):
        def __new__(mcls, name, bases, namespace):
            if "_fields" not in namespace and any(isinstance(b, _RecordType) for b in bases):
                namespace = _record_namespace(name, namespace)
            return super().__new__(mcls, name, bases, namespace)

    def _record_namespace(name: str, namespace: dict[str, Any]) -> dict[str, Any]:
        fields = tuple(namespace.get("__annotations__", {}))
        defaults: dict[str, Any] = {}
        for index, field in enumerate(fields):
            if field in namespace:
                defaults[field] = namespace[field]
            elif defaults:
                raise TypeError(f"{name}: field {field!r} without a default follows one with")
            namespace[field] = property(itemgetter(index), doc=f"Alias for field {index}")
        namespace.update(
            __slots__=(), _fields=fields, _field_defaults=defaults, __match_args__=fields
        )
        return namespace

    class Record(tuple, metaclass=_RecordType):
        __slots__ = ()
        _fields: ClassVar[tuple[str, ...]] = ()
        _field_defaults: ClassVar[dict[str, Any]] = {}

        def __new__(cls, *args, **kwargs):
            fields = cls._fields
            if len(args) == len(fields) and not kwargs:
                return tuple.__new__(cls, args)
            if len(args) > len(fields):
                raise TypeError(f"{cls.__name__}() takes {len(fields)} fields, got {len(args)}")
            values = list(args)
            defaults = cls._field_defaults
            for field in fields[len(args) :]:
                if field in kwargs:
                    values.append(kwargs.pop(field))
                elif field in defaults:
                    values.append(defaults[field])
                else:
                    raise TypeError(f"{cls.__name__}() missing required argument {field!r}")
            if kwargs:
                raise TypeError(f"{cls.__name__}() got unexpected or repeated {sorted(kwargs)}")
            return tuple.__new__(cls, values)

        @classmethod
        def _make(cls, iterable):
            values = tuple.__new__(cls, iterable)
            if len(values) != len(cls._fields):
                raise TypeError(f"{cls.__name__}: expected {len(cls._fields)} values")
            return values

        def _replace(self, **changes):
            values = [changes.pop(f, v) for f, v in zip(self._fields, self, strict=True)]
            if changes:
                raise TypeError(f"{type(self).__name__} has no fields {sorted(changes)}")
            return tuple.__new__(type(self), values)

        def _asdict(self):
            return dict(zip(self._fields, self, strict=True))

        def __repr__(self):
            inner = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self, strict=True))
            return f"{type(self).__name__}({inner})"

        def __getnewargs__(self):
            return tuple(self)
