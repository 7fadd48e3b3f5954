"""Build an image from a Containerfile: stages, steps, containers, layers, the cache.

Runs inside the user's namespace (``run_in_userns``), as root of it, so files keep
their container owners. Each stage starts from its base image (pulled when
missing, in a child process so no thread of the pull is left when containers are
forked), ``scratch`` or an earlier stage. Every step that changes files works on
an overlay the builder mounts itself in its private mount namespace: the lower
directories are the stage's layers, the upper a fresh directory that becomes the
step's layer (deletions are whiteouts). RUN starts a container on that overlay
(nested user namespace, IDs mapped by the runtime); COPY, ADD and WORKDIR write
into it directly. Metadata steps only change the config (``empty_layer``).

Stages the target needs run in one trio nursery: a stage waits for the stages it
needs, so independent stages build at the same time. Nothing runs in a thread,
so containers can be forked from the event loop.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import functools
import hashlib
import json
import os
import posixpath
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from rootless.build import dockerfile as df
from rootless.build.cache import BuildCache, FileSums, Layer, StepResult, base_key, step_key
from rootless.build.cachemounts import lease_caches
from rootless.build.context import (
    Item,
    Placement,
    SourceRoot,
    copy_items,
    digest_items,
    extract_archive,
    is_archive,
    make_dirs,
    resolve_sources,
)
from rootless.build.expand import Step, platform_args, walk_stage
from rootless.build.ignore import IgnoreMatcher, load_ignore
from rootless.build.mounts import BuildSecret, MountSources, run_mounts, target_of
from rootless.build.remote import (
    git_unsupported,
    is_git_url,
    is_url,
    parse_checksum,
    verify_checksum,
)
from rootless.build.run import RunSpec, hosts_mount, run_args, run_container
from rootless.build.sshagent import SshAgent, agent_env, plan_agents, serve_agents
from rootless.build.stages import BuildPlan, StagePlan, plan_build
from rootless.build.workfs import StepFs, open_workfs
from rootless.errors import BuildError, RootlessError
from rootless.image.commit import (
    ChangeState,
    History,
    ImageFormat,
    apply_instruction,
    plan_config,
    rfc3339,
    write_image,
)
from rootless.runtime.spec import Rlimit

if TYPE_CHECKING:
    from rootless.image.store import ImageRecord, Store

CONTAINERFILES = ("Containerfile", "Dockerfile")
NETWORKS = ("host", "none", "private")
# Mount points the runtime creates in a rootfs that lacks them; not part of a layer.
_MOUNT_POINTS = ("proc", "dev", "sys")
_LITERAL = re.compile(r"""([\\$"'])""")


@attrs.frozen
class BuildOptions:
    """What ``rootless build`` was asked. ``network``: ``host`` (default) or ``none``."""

    context: Path
    containerfile: Path
    tags: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    network: str = "host"
    fmt: ImageFormat = "oci"
    quiet: bool = False
    tls_verify: bool | None = None
    squash: bool = False  # the target stage's new layers as one
    squash_all: bool = False  # the whole image as one layer
    secrets: tuple[BuildSecret, ...] = ()
    driver: str = "overlay"  # or "copy" (rootless.engine.storage)
    # What RUN steps get; none of it is in a cache key (as in Podman).
    add_hosts: tuple[tuple[str, str], ...] = ()  # --add-host NAME:IP, in /etc/hosts
    shm_size: int | None = None  # bytes of /dev/shm
    ulimits: tuple[Rlimit, ...] = ()
    ssh: tuple[SshAgent, ...] = ()  # for RUN --mount=type=ssh


def find_containerfile(context: Path, given: str | None) -> Path:
    """``-f`` as given (relative to the working directory), else the context's
    Containerfile or Dockerfile."""
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise BuildError(f"cannot read the Containerfile {given}: no such file")
        return path
    for name in CONTAINERFILES:
        if (context / name).is_file():
            return context / name
    raise BuildError(
        f"no Containerfile or Dockerfile in {context}",
        hint="add one to the context, or name it with -f FILE",
    )


def _host_platform() -> str:
    from rootless.image.manifest import host_platform

    plat = host_platform()
    return "/".join(p for p in (plat.os, plat.architecture, plat.variant) if p)


def build(store: Store, opts: BuildOptions, out: TextIO = sys.stdout) -> ImageRecord:
    """Build ``opts.target`` (the last stage by default); the recorded image.

    Call inside the user namespace, before any thread exists.
    """
    text = _read_text(opts.containerfile)
    cf = df.parse(text, filename=opts.containerfile.name)
    plan = plan_build(
        cf,
        target=opts.target,
        build_args=dict(opts.build_args),
        predefined=platform_args(_host_platform()),
    )
    if plan.unused_build_args:
        print(
            "WARN: build args were not consumed: " + ", ".join(plan.unused_build_args),
            file=sys.stderr,
        )
    images = _resolve_images(store, plan, opts)
    matcher = load_ignore(opts.context, opts.containerfile)
    from rootless.image._fsops import remove_tree

    with store.session():
        work = Path(tempfile.mkdtemp(prefix="build-", dir=store.root / "tmp"))
        try:
            builder = _Builder(
                store, cf, plan, opts, images, SourceRoot(opts.context, matcher), work, out
            )
            result = builder.run()
            if opts.squash or opts.squash_all:
                result = builder.squash(result)
            return _commit(store, result, opts, out)
        finally:
            remove_tree(work)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise BuildError(f"cannot read the Containerfile {path}: {e.strerror}") from None


# -- base images ---------------------------------------------------------------------


def _image_names(plan: BuildPlan) -> list[str]:
    names: list[str] = []
    for sp in plan.stages:
        wanted = [] if sp.base_stage is not None or sp.is_scratch else [sp.base]
        for name in (*wanted, *sp.images):
            if name not in names:
                names.append(name)
    return names


def _resolve_images(store: Store, plan: BuildPlan, opts: BuildOptions) -> dict[str, ImageRecord]:
    """Every image the build reads, pulled first when missing (or always with --pull)."""
    from rootless.engine.images import find_local

    names = _image_names(plan)
    missing = [n for n in names if opts.pull or find_local(store, n) is None]
    if missing:
        _pull_in_child(store, missing, opts)
    found: dict[str, ImageRecord] = {}
    for name in names:
        record = find_local(store, name)
        if record is None:
            raise BuildError(f"cannot find the image {name} after pulling it")
        found[name] = record
    return found


def _pull_in_child(store: Store, names: Sequence[str], opts: BuildOptions) -> None:
    """Pull in a forked child: the pull's threads (DNS, progress) must not be in the
    process that forks containers."""
    from rootless.runtime.launch import exit_code, forward_signals_while_waiting

    store.close()  # no SQLite connection across fork
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's output is checked by the tests
        code = 0
        try:
            import trio

            from rootless.engine.images import pull

            for name in names:
                if not opts.quiet:
                    print(f"Trying to pull {name}...", file=sys.stderr)
                trio.run(functools.partial(pull, name, store, tls_verify=opts.tls_verify))
        except RootlessError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = e.exit_code
        except BaseException as e:
            print(f"Error: pulling failed: {e!r}", file=sys.stderr)
            code = 125
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    if exit_code(forward_signals_while_waiting(pid)) != 0:
        raise BuildError("cannot pull the base images: " + ", ".join(names))


# -- the result ----------------------------------------------------------------------


def _commit(store: Store, result: StepResult, opts: BuildOptions, out: TextIO) -> ImageRecord:
    from rootless.engine.image_ops import new_name

    names = [str(new_name(tag)) for tag in opts.tags]
    if not opts.quiet:
        print(f"COMMIT {' '.join(names)}".rstrip(), file=out, flush=True)
    layers = [(m, d, s) for m, d, s, _ in result.layers]
    record = write_image(store, result.config, layers, fmt=opts.fmt, names=names)
    if not opts.quiet:
        print(f"--> {record.short_id}", file=out)
        for name in names:
            print(f"Successfully tagged {name}", file=out)
    print(record.id.partition(":")[2], file=out, flush=True)
    return record


def _scratch_config() -> dict[str, Any]:
    from rootless.image.manifest import host_platform

    plat = host_platform()
    doc: dict[str, Any] = {"architecture": plat.architecture, "os": plat.os}
    if plat.variant:
        doc["variant"] = plat.variant
    doc.update(config={}, rootfs={"type": "layers", "diff_ids": []}, history=[])
    return doc


def _now() -> str:
    return rfc3339(_dt.datetime.now(_dt.UTC))


def _config_id(config: Mapping[str, Any]) -> str:
    from rootless.image.commit import dump_config

    return hashlib.sha256(dump_config(config)).hexdigest()


def _literal(text: str) -> str:
    """``text`` escaped so that substitution gives it back unchanged."""
    return _LITERAL.sub(r"\\\1", text)


def _as_literal(ins: df.Instruction) -> df.Instruction:
    """An instruction walk_stage already substituted, made immune to substituting again
    (``apply_instruction`` substitutes from the image's Env, for ``--change``)."""
    if isinstance(ins, df.Env | df.Label):
        return attrs.evolve(ins, pairs=tuple((_literal(k), _literal(v)) for k, v in ins.pairs))
    if isinstance(ins, df.Expose):
        return attrs.evolve(ins, ports=tuple(_literal(p) for p in ins.ports))
    if isinstance(ins, df.Volume):
        return attrs.evolve(ins, paths=tuple(_literal(p) for p in ins.paths))
    if isinstance(ins, df.User):
        return attrs.evolve(ins, user=_literal(ins.user))
    if isinstance(ins, df.Workdir):
        return attrs.evolve(ins, path=_literal(ins.path))
    if isinstance(ins, df.StopSignal):
        return attrs.evolve(ins, signal=_literal(ins.signal))
    return ins


def _track(state: ChangeState, ins: df.Instruction) -> None:
    """What apply_instruction remembers across a stage, also for steps from the cache."""
    if isinstance(ins, df.Cmd):
        state.cmd_set = True
    elif isinstance(ins, df.Shell):
        state.shell = ins.args


def _with_step(
    parent: StepResult,
    *,
    created_by: str,
    run_config: dict[str, Any] | None = None,
    layer: tuple[str, str, int, str] | None = None,
    author: str | None = None,
) -> StepResult:
    doc = dict(parent.config)
    if run_config is not None:
        doc["config"] = run_config
    config = plan_config(
        doc,
        diff_id=None if layer is None else layer[3],
        history=History(created_by=created_by, author=author),
        created=_now(),
    )
    layers = parent.layers if layer is None else (*parent.layers, layer)
    return StepResult(config, layers)


def _created_by(ins: df.Instruction) -> str:
    return f"/bin/sh -c #(nop) {ins.text}"


class _Miss(Exception):
    """A step the cache lacks, met while probing it."""


@attrs.frozen
class _Outcome:
    key: str
    result: StepResult
    label: str


class _Builder:
    def __init__(
        self,
        store: Store,
        cf: df.Containerfile,
        plan: BuildPlan,
        opts: BuildOptions,
        images: Mapping[str, ImageRecord],
        context: SourceRoot,
        work: Path,
        out: TextIO,
    ) -> None:
        self.store = store
        self.cf = cf
        self.plan = plan
        self.opts = opts
        self.images = images
        self.context = context
        self.work = work
        self.out = out
        self.cache = BuildCache(store.root / "build-cache")
        self.sums = FileSums(store.root / "build-cache" / "sums.json")
        self.outcomes: dict[int, _Outcome] = {}
        self.starts: dict[int, StepResult] = {}
        # Output held back while the cache is probed (see _from_cache); None otherwise.
        self.held: list[str] | None = None
        self.prepared: dict[tuple[str, df.Instruction], tuple[list[str], list[_Sources]]] = {}
        self.fs = open_workfs(opts.driver, store, work)
        self.mount_sources = MountSources(
            context=context.path,
            view=self._view_of,
            cache_root=store.root / "build-mounts",
            secrets={s.id: s for s in opts.secrets},
            scratch=work,
        )

    def run(self) -> StepResult:
        try:
            return self._build()
        finally:
            self.sums.save()

    def _build(self) -> StepResult:
        if not self.opts.no_cache:
            found = self._from_cache()
            if found is not None:
                return found
        import trio

        return trio.run(self._run)

    def _from_cache(self) -> StepResult | None:
        """The target when the cache has every step it needs, found with no event loop
        (trio's import alone is half of a cached rebuild); None at the first miss,
        having printed nothing."""
        self.held = []
        try:
            for index in self.plan.order:
                coro = self._stage(self.plan.stage(index))
                try:
                    coro.send(None)
                except StopIteration as done:
                    self.outcomes[index] = done.value
                    continue
                except _Miss:
                    pass
                else:
                    coro.close()  # it awaited: not a walk through the cache
                self.held = None  # nothing to show: the build shows it
                self.outcomes.clear()
                self.starts.clear()
                return None
        except BaseException:
            self._release()
            raise
        self._release()
        return self.outcomes[self.plan.target].result

    def _release(self) -> None:
        held, self.held = self.held, None
        for line in held or ():
            self.say(line)

    async def _run(self) -> StepResult:
        import trio

        done = {i: trio.Event() for i in self.plan.order}

        async def stage_task(sp: StagePlan) -> None:
            for dep in sp.deps:
                await done[dep].wait()
            self.outcomes[sp.index] = await self._stage(sp)
            done[sp.index].set()

        try:
            async with trio.open_nursery() as nursery:
                for index in self.plan.order:
                    nursery.start_soon(stage_task, self.plan.stage(index))
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        return self.outcomes[self.plan.target].result

    def say(self, text: str) -> None:
        if self.held is not None:
            self.held.append(text)
        elif not self.opts.quiet:
            print(text, file=self.out, flush=True)

    # -- a stage ---------------------------------------------------------------------

    def _start(self, sp: StagePlan) -> tuple[str, StepResult]:
        if sp.base_stage is not None:
            parent = self.outcomes[sp.base_stage]
            return parent.key, parent.result
        if sp.is_scratch:
            return base_key(None), StepResult(_scratch_config(), ())
        record = self.images[sp.base]
        config = json.loads(self.store.read_blob(record.id))
        layers = tuple((x.media_type, x.digest, x.size, x.diff_id) for x in record.layers)
        return base_key(record.id), StepResult(config, layers)

    async def _stage(self, sp: StagePlan) -> _Outcome:
        stage = self.cf.stages[sp.index]
        key, result = self._start(sp)
        self.starts[sp.index] = result
        run_config = dict(result.config.get("config") or {})
        triggers = [
            df.parse_instruction(t, filename="ONBUILD")
            for t in run_config.pop("OnBuild", None) or ()
        ]
        if triggers:
            result = StepResult({**result.config, "config": run_config}, result.layers)
        labels = self.opts.labels if sp.index == self.plan.target else ()
        total = 1 + len(triggers) + len(stage.instructions) + (1 if labels else 0)
        prefix = f"[{sp.index + 1}/{len(self.cf.stages)}] " if len(self.cf.stages) > 1 else ""
        self.say(f"{prefix}STEP 1/{total}: {stage.from_.text}")
        state = ChangeState(shell=tuple(run_config.get("Shell") or ("/bin/sh", "-c")))
        steps = walk_stage(
            stage, self.plan.scope, base_env=run_config.get("Env") or (), triggers=triggers
        )
        number = 1
        for step in steps:
            number += 1
            self.say(f"{prefix}STEP {number}/{total}: {step.instruction.text}")
            key, result = await self._step(step, key, result, state)
        if labels:
            number += 1
            text = "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in labels)
            self.say(f"{prefix}STEP {number}/{total}: {text}")
            label = df.Label(line=0, end_line=0, text=text, pairs=labels)
            key, result = await self._step(Step(label, (), ()), key, result, state)
        return _Outcome(key, result, stage.label)

    # -- a step ----------------------------------------------------------------------

    async def _step(
        self, step: Step, key: str, result: StepResult, state: ChangeState
    ) -> tuple[str, StepResult]:
        ins = step.instruction
        if isinstance(ins, df.Arg):
            return key, result  # ARG values reach the keys of the RUNs that see them
        try:
            prepared = self.prepared.get((key, ins))
            if prepared is None:  # kept: probing the cache and building both need it
                prepared = self.prepared[key, ins] = self._prepare(step, result)
            extra, sources = prepared
            new_key = step_key(key, ins, extra=extra)
            cached = None if self.opts.no_cache else self._cached(new_key)
            if cached is not None:
                self.say(f"--> Using cache {_config_id(cached.config)}")
                _track(state, ins)
                return new_key, cached
            if self.held is not None:
                raise _Miss
            new = await self._execute(step, result, state, sources)
        except BuildError as e:
            raise _at(self.cf, ins, e) from None
        except RootlessError as e:
            raise _at(self.cf, ins, BuildError(e.message, hint=e.hint)) from None
        except OSError as e:
            raise _at(self.cf, ins, BuildError(f"{e.strerror}: {e.filename}")) from None
        _track(state, ins)
        self.cache.put(new_key, new)
        self.say(f"--> {_config_id(new.config)[:12]}")
        return new_key, new

    def _cached(self, key: str) -> StepResult | None:
        found = self.cache.get(key)
        if found is None:
            return None
        for media_type, digest, _, diff_id in found.layers:
            if not self.store.has_layer(diff_id):
                if not self.store.has_blob(digest):
                    return None
                self.store.ensure_layer(digest, media_type, diff_id)
        return found

    def _prepare(self, step: Step, result: StepResult) -> tuple[list[str], list[_Sources]]:
        """What the key needs beyond the instruction, and a COPY's resolved sources."""
        ins = step.instruction
        if isinstance(ins, df.Run):
            binds = [self._bind_digest(m) for m in ins.mounts if m.type == "bind"]
            return [json.dumps(step.args), f"network={self._network(ins)}", *binds], []
        if isinstance(ins, df.FileTransfer):
            sources = self._sources(ins)
            return [s.digest() for s in sources], sources
        return [], []

    def _bind_digest(self, m: df.Mount) -> str:
        """What a RUN's bind mount shows, for the key: the source's content in the
        context, or the key or ID of the stage or image it comes from."""
        if m.from_ is not None:
            return f"{self._layers_of(m.from_)[2]}:{m.source or '/'}"
        items = resolve_sources(self.context, [m.source or "."])
        return digest_items(self.context, items, self.sums)

    async def _execute(
        self, step: Step, result: StepResult, state: ChangeState, sources: list[_Sources]
    ) -> StepResult:
        ins = step.instruction
        run_config = copy.deepcopy(dict(result.config.get("config") or {}))
        if isinstance(ins, df.Run):
            return await self._run_step(step, result, state)
        if isinstance(ins, df.FileTransfer):
            return self._copy_step(ins, result, sources)
        if isinstance(ins, df.Maintainer):
            return _with_step(result, created_by=_created_by(ins), author=ins.name)
        apply_instruction(run_config, _as_literal(ins), state)
        if isinstance(ins, df.Workdir):
            with self._mounted(result) as fs:
                make_dirs(fs.merged, run_config["WorkingDir"], Placement())
                return self._layer(result, fs, _created_by(ins), run_config)
        return _with_step(result, created_by=_created_by(ins), run_config=run_config)

    # -- file systems ----------------------------------------------------------------

    @contextlib.contextmanager
    def _mounted(self, result: StepResult) -> Iterator[StepFs]:
        """A writable rootfs holding the stage's layers, for one step."""
        with self.fs.step(result.layers) as fs:
            yield fs

    def _view(self, layers: Sequence[Layer]) -> contextlib.AbstractContextManager[Path]:
        """A read-only view of ``layers`` (for COPY --from)."""
        return self.fs.view(layers)

    def _view_of(self, ref: str) -> contextlib.AbstractContextManager[Path]:
        """A read-only view of the stage or image ``ref`` (for RUN --mount=from=)."""
        return self.fs.view(self._layers_of(ref)[0])

    def _layers_of(self, ref: str) -> tuple[tuple[Layer, ...], str, str]:
        """The layers of stage or image ``ref``, what it is, and what identifies its content."""
        index = int(ref) if ref.isdigit() else None
        stage = self.cf.stage_by_name(ref) if index is None else self.cf.stages[index]
        if stage is not None:
            outcome = self.outcomes[stage.index]
            return outcome.result.layers, f"stage {outcome.label}", outcome.key
        record = self.images[ref]
        layers = tuple((x.media_type, x.digest, x.size, x.diff_id) for x in record.layers)
        return layers, f"image {ref}", record.id

    def _layer(
        self, parent: StepResult, fs: StepFs, created_by: str, run_config: dict[str, Any] | None
    ) -> StepResult:
        """The step's changes as its layer (none when nothing changed)."""
        from rootless.image.layerdiff import store_layer

        layer = None
        blob = store_layer(self.store, fs.changes, compression="gzip")
        if blob.entries:
            self.store.ensure_layer(blob.digest, blob.media_type(), blob.diff_id)
            layer = (blob.media_type(), blob.digest, blob.size, blob.diff_id)
        new = _with_step(parent, created_by=created_by, run_config=run_config, layer=layer)
        self.fs.stored(fs, new.layers)
        return new

    # -- squash --------------------------------------------------------------------------

    def squash(self, result: StepResult) -> StepResult:
        """``result`` with the layers the target stage added (all with ``squash_all``) as
        one layer; their history entries become empty ones."""
        from rootless.image.layerdiff import DirDiff, store_layer

        keep = () if self.opts.squash_all else self.starts[self.plan.target].layers
        if result.layers[len(keep) :] == () and not self.opts.squash_all:
            return result
        with self.fs.view(keep) as before, self.fs.view(result.layers) as after:
            blob = store_layer(self.store, DirDiff(before, after), compression="gzip")
        doc = copy.deepcopy(result.config)
        doc["rootfs"] = {"type": "layers", "diff_ids": [x[3] for x in keep]}
        seen = 0
        for entry in doc.get("history") or ():
            if not entry.get("empty_layer"):
                seen += 1
                if seen > len(keep):
                    entry["empty_layer"] = True
        layers: tuple[Layer, ...] = keep
        diff_id = None
        if blob.entries:
            self.store.ensure_layer(blob.digest, blob.media_type(), blob.diff_id)
            layers = (*keep, (blob.media_type(), blob.digest, blob.size, blob.diff_id))
            diff_id = blob.diff_id
        what = "all" if self.opts.squash_all else f"{len(result.layers) - len(keep)}"
        config = plan_config(
            doc,
            diff_id=diff_id,
            history=History(created_by=f"/bin/sh -c #(nop) squashed {what} layers"),
            created=_now(),
        )
        return StepResult(config, layers)

    # -- RUN ---------------------------------------------------------------------------

    def _network(self, ins: df.Run) -> str:
        mode = ins.network if ins.network not in (None, "default") else self.opts.network
        return "private" if mode in ("none", "private") else "host"

    async def _run_step(self, step: Step, result: StepResult, state: ChangeState) -> StepResult:
        ins = step.instruction
        assert isinstance(ins, df.Run)
        args = run_args(ins, state.shell)
        config = result.config.get("config") or {}
        workdir = config.get("WorkingDir") or "/"
        targets = [target_of(m, workdir) for m in ins.mounts]
        src = self.mount_sources
        network = self._network(ins)
        agents = plan_agents(ins.mounts, workdir, {a.id: a for a in self.opts.ssh})
        with self._mounted(result) as fs:
            missing = [p for p in _MOUNT_POINTS if not os.path.lexists(f"{fs.merged}/{p}")]
            extra = []
            if self.opts.add_hosts:
                extra.append(hosts_mount(fs.merged, self.opts.add_hosts, network, self.work))
            async with (
                lease_caches(ins.mounts, targets, src.cache_root, src.view, self.say) as caches,
                serve_agents(agents, self.work) as sockets,
            ):
                extra += sockets
                with run_mounts(ins.mounts, fs.merged, workdir, src, caches, extra) as mounts:
                    code = await run_container(
                        RunSpec(
                            rootfs=fs.merged,
                            args=tuple(args),
                            env=agent_env(agents, step.run_env()),
                            workdir=workdir,
                            user=config.get("User") or None,
                            network=network,
                            mounts=mounts,
                            ulimits=self.opts.ulimits,
                            shm_size=self.opts.shm_size,
                        ),
                        stdout=2 if self.opts.quiet else 1,
                    )
            if code != 0:
                raise BuildError(f"the command exited with status {code}")
            for name in missing:
                with contextlib.suppress(OSError):
                    os.rmdir(f"{fs.merged}/{name}")
            return self._layer(result, fs, " ".join(args), None)

    # -- COPY and ADD ------------------------------------------------------------------

    def _sources(self, ins: df.FileTransfer) -> list[_Sources]:
        groups: list[_Sources] = []
        checksum = _checksum_of(ins)
        if ins.heredocs:
            docs = Path(tempfile.mkdtemp(prefix="heredoc-", dir=self.work))
            for doc in ins.heredocs:
                (docs / doc.name).write_text(doc.content)
            root = SourceRoot(docs, None, "the Containerfile")
            groups.append(_Sources(root, resolve_sources(root, [d.name for d in ins.heredocs])))
        local = [s for s in ins.sources if not is_url(s)]
        urls = [s for s in ins.sources if is_url(s)]
        if isinstance(ins, df.Add):
            for source in ins.sources:
                if is_git_url(source):
                    raise git_unsupported(source, what="an ADD source")
        if urls and not isinstance(ins, df.Add):
            raise BuildError("COPY cannot fetch URLs", hint="use ADD for a URL")
        for url in urls:
            groups.append(self._download(url, checksum))
        excludes = IgnoreMatcher.from_lines(ins.excludes) if ins.excludes else None
        if local:
            if ins.from_ is not None:
                groups.append(self._from_sources(ins.from_, local, excludes, ins.parents))
            else:
                context = attrs.evolve(self.context, excludes=excludes)
                items = resolve_sources(context, local, parents=ins.parents)
                if checksum is not None:
                    _verify_local(items, checksum, local[0])
                groups.append(_Sources(context, items, sums=self.sums))
        return groups

    def _from_sources(
        self,
        ref: str,
        patterns: Sequence[str],
        excludes: IgnoreMatcher | None,
        parents: bool,
    ) -> _Sources:
        layers, what, _ = self._layers_of(ref)
        return _Sources(
            None,
            [],
            layers=layers,
            patterns=tuple(patterns),
            what=what,
            view=self._view,
            excludes=excludes,
            parents=parents,
        )

    def _download(self, url: str, checksum: tuple[str, str] | None) -> _Sources:
        import httpx

        target_dir = Path(tempfile.mkdtemp(prefix="add-", dir=self.work))
        name = posixpath.basename(url.split("?", 1)[0].rstrip("/")) or "download"
        path = target_dir / name
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
                if response.status_code != 200:
                    raise BuildError(
                        f"cannot ADD {url}: the server answered {response.status_code}"
                    )
                with open(path, "wb") as f:
                    for chunk in response.iter_bytes():
                        f.write(chunk)
        except httpx.HTTPError as e:
            raise BuildError(f"cannot ADD {url}: {e}") from None
        if checksum is not None:
            verify_checksum(str(path), checksum, source=url)
        path.chmod(0o600)
        root = SourceRoot(target_dir, None, url)
        return _Sources(root, resolve_sources(root, [name]), fetched=True)

    def _copy_step(
        self, ins: df.FileTransfer, result: StepResult, sources: list[_Sources]
    ) -> StepResult:
        config = result.config.get("config") or {}
        dest = ins.dest
        if not dest.startswith("/"):
            dest = posixpath.join(config.get("WorkingDir") or "/", dest)
            if ins.dest in (".", "./") or ins.dest.endswith(("/.", "/")):
                dest = dest.rstrip("/.") + "/"
        several = sum(len(s.items) or len(s.patterns) for s in sources) > 1
        if (several or ins.parents) and not dest.endswith("/"):
            dest += "/"
        with self._mounted(result) as fs:
            placement = Placement(_owner(fs.merged, ins.chown), _mode(ins.chmod))
            for group in sources:
                with group.open() as (root, items):
                    unpack = (
                        isinstance(ins, df.Add) and not group.fetched and ins.unpack is not False
                    )
                    plain = [
                        i for i in items if not (unpack and not i.is_dir and is_archive(i.path))
                    ]
                    for item in items:
                        if item not in plain:
                            extract_archive(item.path, fs.merged, dest, placement)
                    if plain:
                        copy_items(root, plain, fs.merged, dest, placement, parents=ins.parents)
            return self._layer(result, fs, _created_by(ins), None)


@attrs.define
class _Sources:
    """Sources of one COPY from one root; ``view`` mounts a stage's or image's files."""

    root: SourceRoot | None
    items: list[Item]
    layers: tuple[tuple[str, str, int, str], ...] = ()
    patterns: tuple[str, ...] = ()
    what: str = ""
    view: Any = None
    fetched: bool = False
    sums: FileSums | None = None  # for the context's files
    excludes: IgnoreMatcher | None = None  # --exclude, for a stage's or image's files
    parents: bool = False
    _digest: str | None = None

    @contextlib.contextmanager
    def open(self) -> Iterator[tuple[SourceRoot, list[Item]]]:
        if self.root is not None:
            yield self.root, self.items
            return
        with self.view(self.layers) as path:
            root = SourceRoot(path, None, self.what, excludes=self.excludes)
            yield root, resolve_sources(root, self.patterns, parents=self.parents)

    def digest(self) -> str:
        if self._digest is None:
            with self.open() as (root, items):
                self._digest = digest_items(root, items, self.sums)
        return self._digest


def _checksum_of(ins: df.FileTransfer) -> tuple[str, str] | None:
    """ADD --checksum, parsed; it checks one URL or context file, as Docker allows."""
    if not isinstance(ins, df.Add) or ins.checksum is None:
        return None
    expected = parse_checksum(ins.checksum)
    if len(ins.sources) != 1 or ins.heredocs or ins.from_ is not None:
        raise BuildError(
            "ADD --checksum needs exactly one source, a URL or a file of the context",
            hint="split the ADD into one per source",
        )
    return expected


def _verify_local(items: Sequence[Item], checksum: tuple[str, str], source: str) -> None:
    for item in items:
        if item.is_dir:
            raise BuildError(
                f"cannot ADD {source} with --checksum: it is a directory",
                hint="--checksum checks one file or URL",
            )
        verify_checksum(item.path, checksum, source=source)


def _owner(rootfs: str, chown: str | None) -> tuple[int, int]:
    """``--chown`` as numbers, names looked up in the stage's /etc/passwd and /etc/group."""
    if not chown:
        return (0, 0)
    user, _, group = chown.partition(":")
    if user.isdigit() and (not group or group.isdigit()):
        return int(user), int(group or user)
    from rootless.runtime.securejoin import resolve_in_root
    from rootless.runtime.users import resolve_user

    def read(name: str) -> str:
        try:
            return Path(resolve_in_root(rootfs, name)).read_text()
        except OSError:
            return ""

    resolved = resolve_user(chown, read("/etc/passwd"), read("/etc/group"))
    return resolved.user.uid, resolved.user.gid


def _mode(chmod: str | None) -> int | None:
    if chmod is None:
        return None
    try:
        mode = int(chmod, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise BuildError(f"invalid --chmod={chmod}: use an octal mode such as 755")
    return mode


def _at(cf: df.Containerfile, ins: df.Instruction, error: BuildError) -> BuildError:
    if ins.line == 0 or error.message.startswith(f"{cf.filename}:"):
        return error
    text = ins.text if len(ins.text) <= 60 else ins.text[:57] + "..."
    return BuildError(f"{cf.filename}:{ins.line}: {text}: {error.message}", hint=error.hint)


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if isinstance(exc, RootlessError):
            return exc
    return group.exceptions[0]
