"""Top-level secrets from a file, a variable (environment:) or the store (external:)."""

from __future__ import annotations

import textwrap

import pytest

from rootless.compose.files import load_project
from rootless.compose.images import _secrets_env, build_steps
from rootless.compose.render import project_dict
from rootless.compose.to_run import service_run
from rootless.errors import ConfigError

TEXT = """
name: shop
services:
  app:
    image: busybox
    secrets:
      - pw
      - {source: token, target: api/token, mode: 0400}
      - {source: shared, target: /etc/shared, mode: "0440", uid: "1000"}
    build:
      context: .
      secrets: [pw, {source: token, target: tok}]
secrets:
  pw: {file: ./pw.txt}
  token: {environment: API_TOKEN}
  shared: {external: true, name: team_secret}
"""


def load(tmp_path, text=TEXT, environ=None):  # type: ignore[no-untyped-def]
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    return load_project(cwd=tmp_path, environ={"API_TOKEN": "s3cret"} if environ is None
                        else environ)  # fmt: skip


def test_kinds_names_and_modes(tmp_path):  # type: ignore[no-untyped-def]
    loaded = load(tmp_path)
    p = loaded.project
    pw, token, shared = (p.secret(k) for k in ("pw", "token", "shared"))
    assert (pw.file, pw.stored) == (f"{tmp_path}/pw.txt", False)
    assert (token.environment, token.name, token.value_of("x")) == ("API_TOKEN", "shop_token",
                                                                   b"s3cret")  # fmt: skip
    assert (shared.external, shared.name, shared.stored) == (True, "team_secret", True)
    assert "s3cret" not in repr(p)
    modes = [(s.target, s.mode) for s in p.service("app").secrets]
    assert modes == [
        ("/run/secrets/pw", None),
        ("/run/secrets/api/token", 0o400),
        ("/etc/shared", 0o440),
    ]
    assert loaded.warnings == (
        "compose.yaml:9: services.app.secrets[2].uid: not supported for stored secrets, ignored",
    )


def test_a_file_secret_is_bound_and_a_stored_one_goes_as_run_secret(tmp_path):  # type: ignore[no-untyped-def]
    opts = service_run(load(tmp_path).project, "app").options
    assert opts.mounts.mounts == (f"type=bind,source={tmp_path}/pw.txt,target=/run/secrets/pw,ro",)
    assert opts.secrets == (
        "shop_token,target=/run/secrets/api/token,mode=0400",
        "team_secret,target=/etc/shared,mode=0440",
    )
    assert "s3cret" not in repr(opts)


def test_build_gets_env_secrets_through_its_environment(tmp_path):  # type: ignore[no-untyped-def]
    [step] = build_steps(load(tmp_path).project, ["app"])
    assert step.argv[step.argv.index("--secret") :][:4] == (
        "--secret", f"id=pw,src={tmp_path}/pw.txt", "--secret", "id=tok,env=API_TOKEN",
    )  # fmt: skip
    assert "s3cret" not in " ".join(step.argv)
    assert _secrets_env(step) == {"API_TOKEN": "s3cret"}


def test_a_missing_variable_fails_only_where_the_secret_is_used(tmp_path):  # type: ignore[no-untyped-def]
    project = load(tmp_path, environ={}).project  # config still works
    assert project_dict(project)["secrets"]["token"] == {
        "environment": "API_TOKEN",
        "name": "shop_token",
    }
    [step] = build_steps(project, ["app"])
    with pytest.raises(ConfigError) as e:
        _secrets_env(step)
    assert e.value.message == (
        'cannot build the image busybox of service "app" with secret "token": '
        "the variable API_TOKEN of its environment: is not set"
    )
    assert e.value.hint == "set API_TOKEN in the environment or in .env"


def test_the_value_can_come_from_dot_env(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("API_TOKEN=from-dotenv\n")
    assert load(tmp_path, environ={}).project.secret("token").value_of("x") == b"from-dotenv"


@pytest.mark.parametrize(
    ("top", "use", "message"),
    [
        ("{}", "[k]", "secrets.k: needs one of file, environment and external: true"),
        ("{file: a, environment: B}", "[k]",
         "secrets.k: needs one of file, environment and external: true"),
        ("{environment: V}", "[{source: k, mode: rwx}]",
         'services.s.secrets[0].mode: invalid mode "rwx": use an octal file mode such as 0440'),
        ("{external: true}", "[{source: k, target: 'a,b'}]",
         'services.s.secrets[0]: invalid secret target "a,b": a path without ","'),
    ],
)  # fmt: skip
def test_mistakes(tmp_path, top, use, message):  # type: ignore[no-untyped-def]
    text = f"services:\n  s:\n    image: i\n    secrets: {use}\nsecrets:\n  k: {top}\n"
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    assert e.value.message.split(": ", 1)[1] == message


def test_an_external_secret_cannot_go_to_a_build(tmp_path):  # type: ignore[no-untyped-def]
    text = (
        "services:\n  s:\n    build: {context: ., secrets: [k]}\nsecrets:\n  k: {external: true}\n"
    )
    with pytest.raises(ConfigError) as e:
        load(tmp_path, text)
    assert e.value.message == (
        'compose.yaml:3: services.s.build.secrets[0]: secret "k" is external: '
        "builds take file and environment secrets"
    )
