"""Tests for gateway.config: loading and checking raydo.toml."""

from __future__ import annotations

import pickle
from dataclasses import fields
from pathlib import Path

import pytest

from raydo.actors import BindingSpec
from raydo.gateway import config as config_module
from raydo.gateway.config import (
    MAX_CONFIG_BYTES,
    AppConfig,
    ConfigError,
    ObjectBinding,
    load_config,
)
from raydo.storage.limits import DEFAULT_LIMITS

FULL = """\
name = "my-app"
main = "app:app"              # module:attribute of the Starlette app
storage = ".raydo"            # root of every SQLite file and blob
durability = "normal"         # or "full": fsync every commit

[[durable_objects.bindings]]
name = "ROOM"
class_name = "room:ChatRoom"  # module:Class
shards = 8                    # virtual shards, each one host actor
placement = "sharded"         # or "dedicated": one Ray actor per object
idle_timeout_s = 10           # evict an object after this long without events
max_live_objects = 10000      # per host; least recently used are evicted first
mailbox_limit = 1000          # pending events per object before "overloaded"

[[d1_databases]]
binding = "DB"
database_name = "my-app"
migrations_dir = "migrations"

[[r2_buckets]]
binding = "FILES"
bucket_name = "my-app-files"

[[kv_namespaces]]
binding = "CONFIG"

[[queues.producers]]
binding = "JOBS"
queue = "jobs"

[[queues.consumers]]
queue = "jobs"
max_batch_size = 10
max_retries = 3
dead_letter_queue = "jobs-dlq"
"""

MINIMAL = 'name = "app"\nmain = "app:app"\n'


def write(folder: Path, text: str | bytes) -> Path:
    path = folder / "raydo.toml"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def binding_toml(**fields: str) -> str:
    """A minimal file with one durable object binding; ``fields`` are raw TOML values."""
    values = {"name": '"ROOM"', "class_name": '"room:Room"', **fields}
    body = "".join(f"{k} = {v}\n" for k, v in values.items() if v)
    return MINIMAL + "[[durable_objects.bindings]]\n" + body


def fails(folder: Path, text: str | bytes) -> ConfigError:
    path = write(folder, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert str(err).startswith(f"{path.resolve()}: "), str(err)
    assert err.path == path.resolve()
    return err


def test_full_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    root = tmp_path.resolve()
    assert config.path == root / "raydo.toml"
    assert config.root == root
    assert (config.name, config.main, config.durability) == (
        "my-app",
        "app:app",
        "normal",
    )
    assert config.storage == root / ".raydo"
    assert config.limits == DEFAULT_LIMITS
    assert config.durable_objects == (
        ObjectBinding(name="ROOM", class_name="room:ChatRoom", shards=8, idle_timeout_s=10.0),
    )
    room = config.binding("ROOM")
    assert isinstance(room.idle_timeout_s, float)
    assert room.namespace_key is None
    assert config.d1_databases == (
        {"binding": "DB", "database_name": "my-app", "migrations_dir": "migrations"},
    )
    assert config.r2_buckets == (
        {
            "binding": "FILES",
            "bucket_name": "my-app-files",
            "backend": "filesystem",
            "endpoint_url": None,
            "region": None,
            "s3_bucket": None,
            "presign_secret_env": None,
        },
    )
    assert config.kv_namespaces == (
        {
            "binding": "CONFIG",
            "id": None,
            "cache_ttl": 60.0,
            "min_ttl": 60.0,
            "cache_bytes": 64 * 1024 * 1024,
        },
    )
    assert config.queue_producers == ({"binding": "JOBS", "queue": "jobs"},)
    assert config.queue_consumers == (
        {
            "queue": "jobs",
            "max_batch_size": 10,
            "max_batch_timeout": 5.0,
            "max_retries": 3,
            "dead_letter_queue": "jobs-dlq",
        },
    )


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    text = MINIMAL + '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "db.main"\n'
    text += '[[queues.consumers]]\nqueue = "q"\n'
    config = load_config(write(tmp_path, text))
    assert config == AppConfig(
        path=config.path,
        root=tmp_path.resolve(),
        name="app",
        main="app:app",
        storage=tmp_path.resolve() / ".raydo",
        d1_databases=(
            {
                "binding": "DB",
                "database_name": "db.main",
                "migrations_dir": "migrations",
            },
        ),
        queue_consumers=(
            {
                "queue": "q",
                "max_batch_size": 10,
                "max_batch_timeout": 5.0,
                "max_retries": 3,
                "dead_letter_queue": None,
            },
        ),
    )


def test_binding_defaults_match_the_dataclass(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, binding_toml()))
    assert config.binding("ROOM") == ObjectBinding(name="ROOM", class_name="room:Room")


def test_an_object_binding_is_the_hosts_binding_spec_and_every_field_is_a_key() -> None:
    assert ObjectBinding is BindingSpec
    checked = set(config_module._OBJECT_BINDING_FIELDS)
    assert checked == {f.name for f in fields(BindingSpec)} - {"internal"}


def test_folder_file_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, FULL)
    by_file = load_config(path)
    assert load_config(tmp_path) == by_file
    assert load_config(str(tmp_path)) == by_file
    monkeypatch.chdir(tmp_path)
    assert load_config(".") == by_file
    assert load_config("raydo.toml") == by_file


def test_other_file_name(tmp_path: Path) -> None:
    path = tmp_path / "staging.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_config(path).path == path.resolve()


def test_binding_lookup(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    with pytest.raises(KeyError, match=r"no durable object binding named 'CHAT'.*ROOM"):
        config.binding("CHAT")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert (
        str(info.value) == f"{tmp_path.resolve() / 'raydo.toml'}: no raydo.toml"
        f" (nor wrangler.jsonc, wrangler.json, wrangler.toml) in {tmp_path.resolve()}"
    )
    assert info.value.key == ""
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "other.toml")


def test_config_path_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "raydo.toml").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path)


def test_invalid_toml(tmp_path: Path) -> None:
    err = fails(tmp_path, MINIMAL + "shards = = 3\n")
    assert err.key == ""
    assert "invalid TOML" in str(err) and "line 3" in str(err)


def test_non_utf8_file(tmp_path: Path) -> None:
    err = fails(tmp_path, b'name = "app"\nmain = "\xff:app"\n')
    assert err.key == ""
    assert "not valid UTF-8" in str(err) and "line 2" in str(err)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, b"\xef\xbb\xbf" + MINIMAL.encode())).name == "app"


def test_oversized_file(tmp_path: Path) -> None:
    padding = "#" * (MAX_CONFIG_BYTES - len(MINIMAL) - 1) + "\n"
    assert len((MINIMAL + padding).encode()) == MAX_CONFIG_BYTES
    assert load_config(write(tmp_path, MINIMAL + padding)).name == "app"
    err = fails(tmp_path, MINIMAL + "#" + padding)
    assert err.key == ""
    assert "larger than 1 MiB" in str(err)


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    err = fails(tmp_path, binding_toml(shard="3"))
    assert err.key == "durable_objects.bindings[0].shard"
    assert (
        "unknown key 'shard' (did you mean 'shards'?); known keys: name, class_name, shards"
        in str(err)
    )


def test_unknown_key_without_a_close_match(tmp_path: Path) -> None:
    err = fails(tmp_path, MINIMAL + 'compatibility_date = "2024-01-01"\n')
    assert err.key == "compatibility_date"
    assert "unknown key 'compatibility_date'; known keys: name, main, storage" in str(err)
    assert "did you mean" not in str(err)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[queues]\nproducer = []\n", "queues.producer"),
        ("[durable_objects]\nbinding = []\n", "durable_objects.binding"),
        ('[[r2_buckets]]\nbinding = "F"\nbucket = "b"\n', "r2_buckets[0].bucket"),
        (
            '[[queues.consumers]]\nqueue = "q"\nmax_retry = 1\n',
            "queues.consumers[0].max_retry",
        ),
    ],
)
def test_unknown_keys_in_sections(tmp_path: Path, text: str, key: str) -> None:
    err = fails(tmp_path, MINIMAL + text)
    assert err.key == key
    assert f"{key}: unknown key" in str(err) and "did you mean" in str(err)


def test_missing_required_keys(tmp_path: Path) -> None:
    err = fails(tmp_path, binding_toml(class_name=""))
    assert err.key == "durable_objects.bindings[0].class_name"
    assert str(err).endswith(
        "durable_objects.bindings[0].class_name: missing required key 'class_name'"
    )
    err = fails(tmp_path, 'main = "app:app"\n')
    assert err.key == "name"
    assert "missing required key 'name'" in str(err)
    err = fails(tmp_path, MINIMAL + '[[queues.producers]]\nbinding = "JOBS"\n')
    assert err.key == "queues.producers[0].queue"


def test_wrong_type_message(tmp_path: Path) -> None:
    path = tmp_path.resolve() / "raydo.toml"
    err = fails(tmp_path, binding_toml(shards='"x"'))
    assert str(err) == (
        f"{path}: durable_objects.bindings[0].shards: expected an integer from 1 to 4096, got 'x'"
    )
    assert err.key == "durable_objects.bindings[0].shards"
    assert err.reason == "expected an integer from 1 to 4096, got 'x'"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (binding_toml(shards="true"), "durable_objects.bindings[0].shards"),
        (
            binding_toml(idle_timeout_s="true"),
            "durable_objects.bindings[0].idle_timeout_s",
        ),
        (MINIMAL + "[limits]\nkey_bytes = true\n", "limits.key_bytes"),
        (
            MINIMAL + '[[queues.consumers]]\nqueue = "q"\nmax_retries = false\n',
            "queues.consumers[0].max_retries",
        ),
    ],
)
def test_bool_is_not_an_integer(tmp_path: Path, text: str, key: str) -> None:
    err = fails(tmp_path, text)
    assert err.key == key
    assert str(err).endswith(("got True", "got False"))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("shards", "0", "an integer from 1 to 4096"),
        ("shards", "4097", "an integer from 1 to 4096"),
        ("shards", "2.0", "an integer from 1 to 4096"),
        ("idle_timeout_s", "0", "a number greater than 0 and at most 86400"),
        ("idle_timeout_s", "86400.5", "a number greater than 0 and at most 86400"),
        ("idle_timeout_s", "nan", "a number greater than 0 and at most 86400"),
        ("idle_timeout_s", "inf", "a number greater than 0 and at most 86400"),
        ("max_live_objects", "10_000_001", "an integer from 1 to 10000000"),
        ("mailbox_limit", "0", "an integer from 1 to 1000000"),
        ("mailbox_limit", "[1]", "an integer from 1 to 1000000"),
        ("queue_wait_seconds", "0", "a number greater than 0 and at most 86400"),
        ("queue_wait_seconds", "-1", "a number greater than 0 and at most 86400"),
    ],
)
def test_binding_values_out_of_range(tmp_path: Path, field: str, value: str, expected: str) -> None:
    err = fails(tmp_path, binding_toml(**{field: value}))
    assert err.key == f"durable_objects.bindings[0].{field}"
    assert f"expected {expected}, got " in str(err)


def test_binding_number_accepts_int_and_float(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, binding_toml(idle_timeout_s="0.25")))
    assert config.binding("ROOM").idle_timeout_s == 0.25
    config = load_config(write(tmp_path, binding_toml(idle_timeout_s="86400")))
    assert config.binding("ROOM").idle_timeout_s == 86400.0
    assert config.binding("ROOM").queue_wait_seconds == 30.0  # the default
    config = load_config(write(tmp_path, binding_toml(queue_wait_seconds="2.5")))
    assert config.binding("ROOM").queue_wait_seconds == 2.5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_batch_size", "0"),
        ("max_batch_size", "101"),
        ("max_batch_timeout", "-1"),
        ("max_batch_timeout", "60.5"),
        ("max_retries", "-1"),
        ("max_retries", "101"),
    ],
)
def test_consumer_values_out_of_range(tmp_path: Path, field: str, value: str) -> None:
    err = fails(tmp_path, MINIMAL + f'[[queues.consumers]]\nqueue = "q"\n{field} = {value}\n')
    assert err.key == f"queues.consumers[0].{field}"
    assert f"got {value}" in str(err)


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "room",
        "Room",
        "A/B",
        "A\\\\B",
        "",
        "_A",
        "A" * 64,
        "ROOM\\n",
        "ROOM\\u0000",
    ],
)
def test_bad_binding_names(tmp_path: Path, name: str) -> None:
    err = fails(tmp_path, binding_toml(name=f'"{name}"'))
    assert err.key == "durable_objects.bindings[0].name"
    assert "expected a binding name matching ^[A-Z][A-Z0-9_]{0,62}$" in str(err)


def test_bad_binding_name_in_platform_section(tmp_path: Path) -> None:
    err = fails(tmp_path, MINIMAL + '[[kv_namespaces]]\nbinding = "../kv"\n')
    assert err.key == "kv_namespaces[0].binding"
    assert "got '../kv'" in str(err)


@pytest.mark.parametrize("name", ["My-App", "../app", "a/b", "-app", "a.b", "", "a" * 64])
def test_bad_app_names(tmp_path: Path, name: str) -> None:
    err = fails(tmp_path, f'name = "{name}"\nmain = "app:app"\n')
    assert err.key == "name"
    assert "expected an app name matching" in str(err)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (
            '[[r2_buckets]]\nbinding = "F"\nbucket_name = "{}"\n',
            "r2_buckets[0].bucket_name",
        ),
        (
            '[[d1_databases]]\nbinding = "D"\ndatabase_name = "{}"\n',
            "d1_databases[0].database_name",
        ),
        (
            '[[queues.producers]]\nbinding = "J"\nqueue = "{}"\n',
            "queues.producers[0].queue",
        ),
        (
            '[[queues.consumers]]\nqueue = "q"\ndead_letter_queue = "{}"\n',
            "queues.consumers[0].dead_letter_queue",
        ),
        ('[[kv_namespaces]]\nbinding = "K"\nid = "{}"\n', "kv_namespaces[0].id"),
    ],
)
@pytest.mark.parametrize("name", ["../etc", "a..b", "a/b", ".hidden", "Upper", ""])
def test_bad_resource_names(tmp_path: Path, section: str, key: str, name: str) -> None:
    err = fails(tmp_path, MINIMAL + section.format(name))
    assert err.key == key
    assert "without '..'" in str(err)


@pytest.mark.parametrize(
    "class_name",
    [
        "room",
        "room:",
        ":Room",
        "room:Chat.Room",
        "a/b:Room",
        "room:class",
        "1room:Room",
        "room:Chat Room",
        "a..b:C",
        "a:b:C",
    ],
)
def test_bad_class_name(tmp_path: Path, class_name: str) -> None:
    err = fails(tmp_path, binding_toml(class_name=f'"{class_name}"'))
    assert err.key == "durable_objects.bindings[0].class_name"
    assert "expected 'module:Class'" in str(err)


def test_dotted_class_module_is_fine(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, binding_toml(class_name='"pkg.rooms.chat:ChatRoom"')))
    assert config.binding("ROOM").class_name == "pkg.rooms.chat:ChatRoom"


@pytest.mark.parametrize("main", ["app", "app.py", "app:", "app:app()", "import:app"])
def test_bad_main(tmp_path: Path, main: str) -> None:
    err = fails(tmp_path, f'name = "app"\nmain = "{main}"\n')
    assert err.key == "main"
    assert "expected 'module:attribute'" in str(err)


def test_duplicate_binding_names_across_kinds(tmp_path: Path) -> None:
    err = fails(
        tmp_path,
        binding_toml() + '[[d1_databases]]\nbinding = "ROOM"\ndatabase_name = "db"\n',
    )
    assert err.key == "d1_databases[0].binding"
    assert "binding name 'ROOM' is already used by durable_objects.bindings[0].name" in str(err)
    text = (
        MINIMAL
        + '[[kv_namespaces]]\nbinding = "JOBS"\n'
        + '[[queues.producers]]\nbinding = "JOBS"\nqueue = "jobs"\n'
    )
    err = fails(tmp_path, text)
    assert err.key == "queues.producers[0].binding"
    assert "already used by kv_namespaces[0].binding" in str(err)


def test_duplicate_durable_object_bindings(tmp_path: Path) -> None:
    err = fails(
        tmp_path,
        binding_toml() + '[[durable_objects.bindings]]\nname = "ROOM"\nclass_name = "a:B"\n',
    )
    assert err.key == "durable_objects.bindings[1].name"
    assert "already used by durable_objects.bindings[0].name" in str(err)


def test_queue_consumer_checks(tmp_path: Path) -> None:
    twice = MINIMAL + '[[queues.consumers]]\nqueue = "q"\n[[queues.consumers]]\nqueue = "q"\n'
    err = fails(tmp_path, twice)
    assert err.key == "queues.consumers[1].queue"
    assert "already has a consumer at queues.consumers[0]" in str(err)
    err = fails(
        tmp_path,
        MINIMAL + '[[queues.consumers]]\nqueue = "q"\ndead_letter_queue = "q"\n',
    )
    assert err.key == "queues.consumers[0].dead_letter_queue"


def test_bad_durability(tmp_path: Path) -> None:
    err = fails(tmp_path, MINIMAL + 'durability = "paranoid"\n')
    assert err.key == "durability"
    assert "expected one of 'normal', 'full', got 'paranoid'" in str(err)
    assert load_config(write(tmp_path, MINIMAL + 'durability = "full"\n')).durability == "full"


def test_bad_placement(tmp_path: Path) -> None:
    err = fails(tmp_path, binding_toml(placement='"single"'))
    assert err.key == "durable_objects.bindings[0].placement"
    assert "expected one of 'sharded', 'dedicated', got 'single'" in str(err)
    config = load_config(write(tmp_path, binding_toml(placement='"dedicated"')))
    assert config.binding("ROOM").placement == "dedicated"


def test_limits_override(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "[limits]\nkey_bytes = 4096\nsql_params = 10\n"))
    assert config.limits.key_bytes == 4096
    assert config.limits.sql_params == 10
    assert config.limits.value_bytes == DEFAULT_LIMITS.value_bytes


def test_unknown_limit_name(tmp_path: Path) -> None:
    err = fails(tmp_path, MINIMAL + "[limits]\nkey_byte = 4096\n")
    assert err.key == "limits.key_byte"
    assert (
        "unknown key 'key_byte' (did you mean 'key_bytes'?); known keys: key_bytes, value_bytes"
        in str(err)
    )


@pytest.mark.parametrize("value", ["0", "-1", '"1 KiB"', "1.5"])
def test_limit_must_be_a_positive_integer(tmp_path: Path, value: str) -> None:
    err = fails(tmp_path, MINIMAL + f"[limits]\nvalue_bytes = {value}\n")
    assert err.key == "limits.value_bytes"
    assert "expected a positive integer" in str(err)


def test_storage_path_resolution(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert (
        load_config(write(tmp_path, MINIMAL + 'storage = "data/store"\n')).storage
        == root / "data" / "store"
    )
    assert (
        load_config(write(tmp_path, MINIMAL + 'storage = "../shared"\n')).storage
        == root.parent / "shared"
    )
    elsewhere = root / "elsewhere"
    config = load_config(write(tmp_path, MINIMAL + f"storage = '{elsewhere}'\n"))
    assert config.storage == elsewhere


@pytest.mark.parametrize("value", ['""', '"a\\u0000b"', "1", "['a']"])
def test_bad_storage(tmp_path: Path, value: str) -> None:
    err = fails(tmp_path, MINIMAL + f"storage = {value}\n")
    assert err.key == "storage"
    assert "expected a non-empty string without NUL" in str(err)


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (
            'd1_databases = {binding = "DB"}\n',
            "d1_databases",
            "an array of tables ([[d1_databases]])",
        ),
        ("durable_objects = 3\n", "durable_objects", "a table ([durable_objects])"),
        ("limits = []\n", "limits", "a table ([limits])"),
        ("queues = 'jobs'\n", "queues", "a table ([queues])"),
        (
            "[durable_objects]\nbindings = [1]\n",
            "durable_objects.bindings[0]",
            "a table",
        ),
        ('r2_buckets = ["FILES"]\n', "r2_buckets[0]", "a table"),
    ],
)
def test_section_shapes(tmp_path: Path, text: str, key: str, expected: str) -> None:
    err = fails(tmp_path, MINIMAL + text)
    assert err.key == key
    assert f"{key}: expected {expected}, got " in str(err)


def test_namespace_key_is_kept_secret(tmp_path: Path) -> None:
    secret = "tooshort10"
    err = fails(tmp_path, binding_toml(namespace_key=f'"{secret}"'))
    assert err.key == "durable_objects.bindings[0].namespace_key"
    assert secret not in str(err)
    assert "got a string of 10 characters" in str(err)
    good = "k" * 32
    binding = load_config(write(tmp_path, binding_toml(namespace_key=f'"{good}"'))).binding("ROOM")
    assert binding.namespace_key == good
    assert good not in repr(binding)


def test_long_values_are_cut_in_messages(tmp_path: Path) -> None:
    err = fails(tmp_path, f'name = "{"x" * 500}"\nmain = "app:app"\n')
    shown = err.reason.split("got ", 1)[1]
    assert len(shown) == 80
    assert shown.endswith("...")


def test_config_error_pickles(tmp_path: Path) -> None:
    err = fails(tmp_path, binding_toml(shards="0"))
    copy = pickle.loads(pickle.dumps(err))
    assert (str(copy), copy.path, copy.key, copy.reason) == (
        str(err),
        err.path,
        err.key,
        err.reason,
    )
