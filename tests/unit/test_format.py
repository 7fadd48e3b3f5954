from __future__ import annotations

import json

import pytest

from rootless.cli._format import header_for, render
from rootless.errors import ConfigError

ROWS = [
    {
        "ID": "0123456789ab",
        "Image": "docker.io/library/busybox:latest",
        "Names": "web",
        "CreatedAt": "2024-05-01T10:00:00Z",
        "State": {"Status": "running", "Pid": 42},
        "Labels": {"app": "shop", "tier": "front"},
        "Ports": ["8080/tcp", "443/tcp"],
        "ExitCode": 0,
        "Running": True,
        "Health": None,
    },
    {
        "ID": "fedcba987654",
        "Image": "busybox",
        "Names": "a-much-longer-name",
        "CreatedAt": "2024-05-02T10:00:00Z",
        "State": {"Status": "exited", "Pid": 0},
        "Labels": {},
        "Ports": [],
        "ExitCode": 137,
        "Running": False,
        "Health": None,
    },
]
COLUMNS = ("ID", "Image", "Names")
HEADERS = {"ID": "CONTAINER ID"}


def fmt(template, rows=ROWS):
    return render(rows, template, columns=COLUMNS, headers=HEADERS)


def test_default_table_pads_like_podmans_tabwriter():
    expected = (
        "CONTAINER ID  IMAGE                             NAMES\n"
        "0123456789ab  docker.io/library/busybox:latest  web\n"
        "fedcba987654  busybox                           a-much-longer-name\n"
    )
    assert fmt(None) == expected
    assert fmt("table") == expected
    assert fmt("") == expected


def test_minimum_cell_width_is_12():
    rows = [{"A": "x", "B": "y"}]
    assert render(rows, None, columns=("A", "B")) == "A           B\nx           y\n"


def test_table_with_no_rows_prints_the_header():
    assert fmt(None, []) == "CONTAINER ID  IMAGE       NAMES\n"


def test_json_is_an_indented_array():
    out = fmt("json")
    assert out.startswith("[\n    {\n")
    assert json.loads(out) == ROWS
    assert fmt("json", []) == "[]\n"


def test_plain_fields_and_escapes():
    assert fmt("{{.Names}}\\t{{.ID}}") == (
        "web                 0123456789ab\na-much-longer-name  fedcba987654\n"
    )
    assert fmt("{{.Names}}\\n") == "web\na-much-longer-name\n"
    assert (
        fmt("{{ .ID }}:{{.ExitCode}}:{{.Running}}")
        == "0123456789ab:0:true\nfedcba987654:137:false\n"
    )


def test_nested_fields_and_nil():
    assert fmt("{{.State.Status}} {{.State.Pid}}") == "running 42\nexited 0\n"
    assert fmt("{{.Health}}") == "<nil>\n<nil>\n"
    assert fmt("{{.Labels.app}}") == "shop\n<no value>\n"


def test_table_template_headers_from_field_names():
    assert fmt("table {{.ID}}\\t{{.CreatedAt}}\\t{{.State.Status}}") == (
        "CONTAINER ID  CREATED AT            STATUS\n"
        "0123456789ab  2024-05-01T10:00:00Z  running\n"
        "fedcba987654  2024-05-02T10:00:00Z  exited\n"
    )


@pytest.mark.parametrize(
    ("name", "header"),
    [("CreatedAt", "CREATED AT"), ("ID", "ID"), ("ImageID", "IMAGE ID"), ("Names", "NAMES"),
     ("HTTPPort", "HTTP PORT"), ("RunningFor", "RUNNING FOR"), ("Pid", "PID")],
)  # fmt: skip
def test_header_for(name, header):
    assert header_for(name) == header


def test_functions():
    assert fmt("{{json .Labels}}", ROWS[:1]) == '{"app":"shop","tier":"front"}\n'
    assert fmt("{{json .}}", ROWS[:1]) == json.dumps(ROWS[0], separators=(",", ":")) + "\n"
    assert fmt('{{index .Labels "tier"}}|{{index .Labels "nope"}}', ROWS[:1]) == "front|<nil>\n"
    assert fmt("{{index .Ports 1}}", ROWS[:1]) == "443/tcp\n"
    assert fmt("{{upper .Names}} {{lower .State.Status | upper}}", ROWS[:1]) == "WEB RUNNING\n"
    assert fmt('{{join .Ports ", "}}', ROWS[:1]) == "8080/tcp, 443/tcp\n"
    assert fmt('{{printf "%-6s|%5d|%q|%v" .Names .ExitCode .ID .Running}}', ROWS[:1]) == (
        'web   |    0|"0123456789ab"|true\n'
    )
    assert fmt('{{printf "%.3s%%" .Image}}', ROWS[:1]) == "doc%\n"
    assert (
        fmt("{{.Ports}} {{.Labels}}", ROWS[:1]) == "[8080/tcp 443/tcp] map[app:shop tier:front]\n"
    )


def test_range():
    assert fmt("{{range .Ports}}<{{.}}>{{end}}") == "<8080/tcp><443/tcp>\n\n"
    assert fmt("{{range .Labels}}{{.}},{{end}}", ROWS[:1]) == "shop,front,\n"
    rows = [{"Mounts": [{"Destination": "/data", "Type": "volume"}, {"Destination": "/etc/x"}]}]
    assert render(rows, "{{range .Mounts}}{{.Destination}} {{end}}", columns=()) == (
        "/data /etc/x \n"
    )


def test_trim_markers():
    assert fmt("{{.Names}}   {{- .ID -}}   !", ROWS[:1]) == "web0123456789ab!\n"


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{{.Nmes}}", 'no field "Nmes" in {{.Nmes}}.*fields: ID, Image, Names'),
        ("{{title .Names}}", 'unknown function "title".*functions: index, join, json'),
        ("{{.Names", "unclosed action"),
        ("{{range .Ports}}x", "without {{end}}"),
        ("x{{end}}", "{{end}} without {{range}}"),
        ("{{if .Running}}y{{end}}", '"if" is not supported'),
        ('{{printf "%s %s" .Names}}', "missing argument for %s"),
        ('{{printf "%d" .Names}}', "%d needs a number"),
        ("{{upper}}", 'wrong number of arguments for "upper"'),
        ("{{.Names .ID}}", "only a function can take arguments"),
        ("{{}}", "empty action"),
        ("{{range .Names}}{{end}}", "cannot range over"),
        ("{{.Names.First}}", 'cannot take field "First"'),
    ],
)
def test_errors_name_the_problem(template, match):
    with pytest.raises(ConfigError, match=match) as e:
        fmt(template)
    assert str(e.value).startswith("invalid --format")


def test_unknown_function_is_reported_without_rows():
    with pytest.raises(ConfigError, match="unknown function"):
        fmt("{{nope .X}}", [])


def test_tabwriter_blocks_follow_go():
    # A line without a tab ends a column block; the next block is aligned on its own.
    rows = [{"A": "a", "B": "b"}, {"A": "long-long-long-cell", "B": "b"}]
    out = render(rows, "{{.A}}\\t{{.B}}\\n--", columns=())
    assert out.splitlines() == [
        "a           b",
        "--",
        "long-long-long-cell  b",
        "--",
    ]
