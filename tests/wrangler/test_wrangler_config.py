"""wrangler.jsonc / wrangler.json / wrangler.toml loaded onto the one AppConfig, and refused
clearly when malformed or hostile (the error names the file, the line and the key)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from raydo.gateway.config import MAX_CONFIG_BYTES, ConfigError, load_config
from raydo.gateway.wrangler_config import line_of, strip_jsonc

ENTRY = """\
from starlette.applications import Starlette

from raydo import DurableObject


class Counter(DurableObject):
    async def increment(self) -> int:
        n = self.ctx.storage.get("n", 0) + 1
        self.ctx.storage.put("n", n)
        return n


app = Starlette()
"""

JSONC = """\
// A Worker's config, as wrangler writes it.
{
  "$schema": "node_modules/wrangler/config-schema.json",
  "name": "my-worker",
  "main": "src/entry.py", /* the entry point */
  "compatibility_date": "2025-01-01",
  "compatibility_flags": ["python_workers"],
  "workers_dev": true,
  "vars": { "API_HOST": "example.com", "LIMITS": { "per_minute": 60 }, },
  "durable_objects": {
    "bindings": [
      { "name": "COUNTER", "class_name": "Counter" },
    ],
  },
  "migrations": [
    { "tag": "v1", "new_sqlite_classes": ["Counter"] },
  ],
  "d1_databases": [
    { "binding": "DB", "database_name": "my-db", "database_id": "0-1", "migrations_dir": "m" },
  ],
  "kv_namespaces": [{ "binding": "CACHE", "id": "0123456789abcdef0123456789abcdef" }],
  "r2_buckets": [{ "binding": "FILES", "bucket_name": "my-files" }],
  "queues": {
    "producers": [{ "binding": "JOBS", "queue": "jobs" }],
    "consumers": [{ "queue": "jobs", "max_batch_size": 5, "max_concurrency": 2 }],
  },
  "observability": { "enabled": true },
}
"""


def worker(tmp_path: Path, config: str, name: str = "wrangler.jsonc", entry: str = ENTRY) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "entry.py").write_text(entry)
    (tmp_path / name).write_text(config)
    return tmp_path


def error(tmp_path: Path, config: str, name: str = "wrangler.jsonc") -> ConfigError:
    worker(tmp_path, config, name)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    return info.value


def test_a_full_jsonc_maps_onto_the_app_config(tmp_path: Path) -> None:
    config = load_config(worker(tmp_path, JSONC))
    assert config.path == (tmp_path / "wrangler.jsonc").resolve()
    assert config.name == "my-worker"
    assert config.main == "entry:app"
    assert config.root == tmp_path.resolve()
    assert config.code_root == (tmp_path / "src").resolve()
    assert config.storage == (tmp_path / ".raydo").resolve()
    (binding,) = config.durable_objects
    assert (binding.name, binding.class_name) == ("COUNTER", "entry:Counter")
    assert config.vars == {"API_HOST": "example.com", "LIMITS": {"per_minute": 60}}
    assert config.d1_databases[0]["database_name"] == "my-db"
    assert config.d1_databases[0]["migrations_dir"] == "m"
    assert config.kv_namespaces[0]["id"] == "0123456789abcdef0123456789abcdef"
    assert config.r2_buckets[0]["bucket_name"] == "my-files"
    assert config.queue_producers[0]["queue"] == "jobs"
    assert config.queue_consumers[0]["max_batch_size"] == 5
    assert config.class_migrations == ({"tag": "v1", "renamed": [], "deleted": []},)
    # Accepted without use: said once at start; $schema and the compatibility keys are not.
    assert config.ignored == (
        "workers_dev",
        "observability",
        "d1_databases[0].database_id",
        "queues.consumers[0].max_concurrency",
    )


def test_wrangler_toml_and_json_load_the_same(tmp_path: Path) -> None:
    toml = """\
name = "my-worker"
main = "src/entry.py"
compatibility_date = "2025-01-01"

[vars]
API_HOST = "example.com"

[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["Counter"]
"""
    (tmp_path / "t").mkdir()
    from_toml = load_config(worker(tmp_path / "t", toml, "wrangler.toml"))
    (tmp_path / "j").mkdir()
    json_text = (
        '{"name": "my-worker", "main": "src/entry.py", "vars": {"API_HOST": "example.com"},'
        ' "durable_objects": {"bindings": [{"name": "COUNTER", "class_name": "Counter"}]},'
        ' "migrations": [{"tag": "v1", "new_sqlite_classes": ["Counter"]}]}'
    )
    from_json = load_config(worker(tmp_path / "j", json_text, "wrangler.json"))
    for config in (from_toml, from_json):
        assert config.main == "entry:app"
        assert config.vars == {"API_HOST": "example.com"}
        assert config.durable_objects[0].class_name == "entry:Counter"
    # The file itself may be given, too.
    assert load_config(tmp_path / "t" / "wrangler.toml").name == "my-worker"


def test_raydo_toml_wins_and_jsonc_comes_before_json_and_toml(tmp_path: Path) -> None:
    worker(tmp_path, '{"name": "from-jsonc", "main": "src/entry.py"}')
    (tmp_path / "wrangler.json").write_text('{"name": "from-json", "main": "src/entry.py"}')
    (tmp_path / "wrangler.toml").write_text('name = "from-toml"\nmain = "src/entry.py"\n')
    assert load_config(tmp_path).name == "from-jsonc"
    (tmp_path / "raydo.toml").write_text('name = "from-raydo"\nmain = "app:app"\n')
    config = load_config(tmp_path)
    assert (config.name, config.ignored, config.code_root) == ("from-raydo", (), tmp_path.resolve())


def test_a_default_entrypoint_class_is_the_main_attribute(tmp_path: Path) -> None:
    entry = "from workers import WorkerEntrypoint\n\nclass Default(WorkerEntrypoint):\n    pass\n"
    worker(tmp_path, '{"name": "w", "main": "src/entry.py"}', entry=entry)
    assert load_config(tmp_path).main == "entry:Default"


def test_dev_vars_are_secrets_in_dev_and_dot_env_only_without_them(tmp_path: Path) -> None:
    worker(tmp_path, '{"name": "w", "main": "src/entry.py", "vars": {"MODE": "dev"}}')
    (tmp_path / ".env").write_text("FROM_ENV=1\n")
    assert load_config(tmp_path).secrets == {"FROM_ENV": "1"}
    (tmp_path / ".dev.vars").write_text(
        '# secrets\nAPI_TOKEN="s3cr3t # not a comment"\nexport OTHER = plain # a comment\n'
        "QUOTED='x=y'\n\n"
    )
    config = load_config(tmp_path)
    assert config.secrets == {
        "API_TOKEN": "s3cr3t # not a comment",
        "OTHER": "plain",
        "QUOTED": "x=y",
    }
    assert "s3cr3t" not in repr(config)
    assert load_config(tmp_path, dev_vars=False).secrets == {}  # raydo serve reads none


def test_raydo_toml_has_vars_too(tmp_path: Path) -> None:
    (tmp_path / "raydo.toml").write_text(
        'name = "a"\nmain = "app:app"\n[vars]\nMODE = "prod"\nRETRIES = 3\n'
    )
    assert load_config(tmp_path).vars == {"MODE": "prod", "RETRIES": 3}
    (tmp_path / "raydo.toml").write_text('name = "a"\nmain = "app:app"\n[vars]\n"a-b" = "x"\n')
    with pytest.raises(ConfigError, match=r"vars\.a-b: a var's name must match"):
        load_config(tmp_path)


# Malformed files: the file, the line and the key.


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    e = error(tmp_path, '{\n  "name": "w",\n  "main": "src/entry.py"\n  "vars": {}\n}\n')
    assert e.line == 4
    assert str(e).startswith(f"{tmp_path.resolve() / 'wrangler.jsonc'}:4: invalid JSON")


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    e = error(tmp_path, 'name = "w"\nmain = \n', "wrangler.toml")
    assert "invalid TOML" in str(e) and "line 2" in str(e)


def test_a_wrong_value_names_its_line_and_key(tmp_path: Path) -> None:
    config = JSONC.replace('"class_name": "Counter"', '"class_name": "Counter", "shards": 0')
    config = config.replace('{ "name": "COUNTER"', '{ "name": "counter"')
    e = error(tmp_path, config)
    assert e.key == "durable_objects.bindings[0].name"
    assert e.line == 12
    assert "wrangler.jsonc:12: durable_objects.bindings[0].name: expected a binding name" in str(e)


def test_a_wrong_value_in_the_second_entry_names_its_line(tmp_path: Path) -> None:
    config = """\
{
  "name": "w",
  "main": "src/entry.py",
  "kv_namespaces": [
    { "binding": "A" },
    { "binding": "B",
      "id": "Not An Id" }
  ]
}
"""
    e = error(tmp_path, config)
    assert (e.key, e.line) == ("kv_namespaces[1].id", 7)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    e = error(tmp_path, '{\n "name": "w",\n "main": "src/entry.py",\n "name": "x"\n}')
    assert e.key == "name" and "twice" in str(e)


def test_duplicate_binding_names_are_refused(tmp_path: Path) -> None:
    config = JSONC.replace('"binding": "CACHE"', '"binding": "DB"')
    assert "already used" in str(error(tmp_path, config))
    config = JSONC.replace('"API_HOST"', '"COUNTER"')
    assert "already used" in str(error(tmp_path, config))


@pytest.mark.parametrize(
    ("main", "message"),
    [
        ('"src/entry.js"', "ending in .py"),
        ("42", "ending in .py"),
        ('"../outside.py"', "outside the app's folder"),
        ('"/etc/passwd.py"', "outside the app's folder"),
        ('"src/missing.py"', "no such file"),
    ],
)
def test_main_must_be_a_python_file_in_the_folder(tmp_path: Path, main: str, message: str) -> None:
    e = error(tmp_path, f'{{"name": "w",\n "main": {main}}}')
    assert e.key == "main" and e.line == 2 and message in str(e)


def test_missing_name_and_main_are_errors(tmp_path: Path) -> None:
    assert "missing required key 'main'" in str(error(tmp_path, '{"name": "w"}'))
    assert "missing required key 'name'" in str(error(tmp_path, '{"main": "src/entry.py"}'))


def test_a_class_of_another_worker_is_refused(tmp_path: Path) -> None:
    config = JSONC.replace('"class_name": "Counter"', '"class_name": "Counter", "script_name": "x"')
    e = error(tmp_path, config)
    assert e.key == "durable_objects.bindings[0].script_name" and "another Worker" in str(e)


@pytest.mark.parametrize(
    ("migrations", "key", "message"),
    [
        ('[{"new_classes": ["A"]}]', "migrations[0].tag", "expected a non-empty tag"),
        ('[{"tag": "v1"}, {"tag": "v1"}]', "migrations[1].tag", "used twice"),
        (
            '[{"tag": "v1", "deleted_classes": ["Counter"]}]',
            "migrations[0].deleted_classes",
            "a binding still uses it",
        ),
        (
            '[{"tag": "v1", "renamed_classes": [{"from": "A"}]}]',
            "migrations[0].renamed_classes[0]",
            "expected",
        ),
        (
            '[{"tag": "v1", "new_classes": ["a b"]}]',
            "migrations[0].new_classes[0]",
            "expected a class name",
        ),
        (
            '[{"tag": "v1", "transferred_classes": []}]',
            "migrations[0].transferred_classes",
            "one Worker",
        ),
        ('{"tag": "v1"}', "migrations", "expected an array"),
    ],
)
def test_bad_migrations_are_refused(
    tmp_path: Path, migrations: str, key: str, message: str
) -> None:
    config = JSONC.replace(
        '[\n    { "tag": "v1", "new_sqlite_classes": ["Counter"] },\n  ]', migrations
    )
    assert migrations in config
    e = error(tmp_path, config)
    assert e.key == key and message in str(e), str(e)


# Hostile files.


def test_a_file_over_one_mebibyte_is_refused(tmp_path: Path) -> None:
    e = error(
        tmp_path, '{"name": "w", "main": "src/entry.py", "x": "' + "a" * MAX_CONFIG_BYTES + '"}'
    )
    assert "larger than 1 MiB" in str(e)


def test_deep_nesting_is_refused_before_parsing(tmp_path: Path) -> None:
    e = error(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert "nested deeper than 64" in str(e)


def test_not_utf8_and_not_an_object_are_refused(tmp_path: Path) -> None:
    worker(tmp_path, "")
    (tmp_path / "wrangler.jsonc").write_bytes(b'{"name": "\xff"}')
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(tmp_path)
    assert "expected a table" in str(error(tmp_path, "[1, 2]"))


def test_an_unclosed_comment_or_string_is_invalid_json(tmp_path: Path) -> None:
    assert "invalid JSON" in str(error(tmp_path, '{"name": "w" /* never closed'))
    assert "invalid JSON" in str(error(tmp_path, '{"name": "w\\'))


def test_nul_and_odd_vars_are_refused(tmp_path: Path) -> None:
    e = error(tmp_path, '{"name": "w", "main": "src/entry.py", "vars": {"A": "x\\u0000y"}}')
    assert e.key == "vars.A"
    e = error(tmp_path, '{"name": "w", "main": "src/entry.py", "vars": {"A": null}}')
    assert e.key == "vars.A"


def test_a_malformed_dev_vars_line_names_its_file_and_line(tmp_path: Path) -> None:
    worker(tmp_path, '{"name": "w", "main": "src/entry.py"}')
    (tmp_path / ".dev.vars").write_text("OK=1\nthis is not a pair\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.path == tmp_path.resolve() / ".dev.vars" and info.value.line == 2


def test_errors_pickle_with_their_line(tmp_path: Path) -> None:
    e = error(tmp_path, '{"name": "w",\n "main": 1}')
    copy = pickle.loads(pickle.dumps(e))
    assert (str(copy), copy.line) == (str(e), 2)


def test_jsonc_stripping_keeps_strings_and_offsets() -> None:
    text = '{"a": "// not a comment", /* x */ "b": [1, 2, ], "c": "/* nor */",}'
    plain = strip_jsonc(text)
    assert len(plain) == len(text)
    import json

    assert json.loads(plain) == {"a": "// not a comment", "b": [1, 2], "c": "/* nor */"}


def test_line_of_walks_nested_keys() -> None:
    text = '{\n "a": [\n  {"x": 1},\n  {"x": 2,\n   "y": 3}\n ]\n}'
    assert line_of(text, "a[1].y") == 5
    assert line_of(text, "a[1].x") == 4
    assert line_of(text, "a[0].x") == 3
    assert line_of(text, "nope") is None


def test_required_secrets_come_from_the_dev_file_then_the_environment_and_only_they(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker(
        tmp_path,
        '{"name": "w", "main": "src/entry.py",'
        ' "secrets": {"required": ["API_KEY", "DB_PASSWORD", "ABSENT"], "other": 1}}',
    )
    (tmp_path / ".dev.vars").write_text("API_KEY=from-file\nNOT_LISTED=x\n")
    monkeypatch.setenv("API_KEY", "from-env")
    monkeypatch.setenv("DB_PASSWORD", "pw")
    monkeypatch.delenv("ABSENT", raising=False)
    config = load_config(tmp_path)
    # The file first, then the environment; keys the list does not name are left out.
    assert config.secrets == {"API_KEY": "from-file", "DB_PASSWORD": "pw"}
    assert config.required_secrets == ("API_KEY", "DB_PASSWORD", "ABSENT")
    assert config.missing_secrets == ("ABSENT",)  # dev warns of it at start
    assert config.ignored == ("secrets.other",)
    # raydo serve: the environment only, and a missing one is an error naming it.
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, dev_vars=False)
    assert info.value.key == "secrets.required"
    assert "ABSENT" in str(info.value) and "API_KEY" not in str(info.value)
    monkeypatch.setenv("ABSENT", "now-set")
    assert load_config(tmp_path, dev_vars=False).secrets == {
        "API_KEY": "from-env",
        "DB_PASSWORD": "pw",
        "ABSENT": "now-set",
    }


@pytest.mark.parametrize(
    ("required", "reason"),
    [
        ('"API_KEY"', "expected an array of secret names"),
        ('["no-dashes"]', "a secret's name must match"),
        ("[1]", "a secret's name must match"),
        ('["A", "A"]', "a name appears twice"),
    ],
)
def test_a_bad_required_secrets_list_is_refused(tmp_path: Path, required: str, reason: str) -> None:
    (tmp_path / "raydo.toml").write_text(
        f'name = "app"\nmain = "app:app"\n[secrets]\nrequired = {required}\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.key == "secrets.required" and reason in str(info.value), str(info.value)


def test_a_raydo_toml_app_gets_dev_secrets_too_and_serve_hands_hosts_the_environment(
    tmp_path: Path,
) -> None:
    from raydo.gateway.runtime import app_environment

    (tmp_path / "raydo.toml").write_text('name = "app"\nmain = "app:app"\n')
    (tmp_path / ".dev.vars").write_text("TOKEN=t\n")
    assert load_config(tmp_path).secrets == {"TOKEN": "t"}
    assert load_config(tmp_path, dev_vars=False).secrets == {}
    given = {
        "APP_MODE": "prod",
        "OPENAI_API_KEY": "k",
        "PATH": "/usr/bin",
        "HOME": "/root",
        "RAY_ADDRESS": "x",
        "RAYDO_NODE_STORAGE": "/disk",
        "PYTHONPATH": "/src",
        "LC_ALL": "C",
    }
    assert app_environment(given) == {"APP_MODE": "prod", "OPENAI_API_KEY": "k"}


def test_workers_ai_maps_onto_the_ai_table(tmp_path: Path) -> None:
    config = JSONC.replace(
        '"workers_dev": true,',
        '"workers_dev": true, "ai": { "binding": "AI", "remote": true, "replicas": 2 },',
    )
    loaded = load_config(worker(tmp_path, config))
    assert loaded.ai is not None
    assert (loaded.ai["binding"], loaded.ai["replicas"]) == ("AI", 2)
    assert "ai" not in loaded.ignored and "ai.remote" in loaded.ignored
