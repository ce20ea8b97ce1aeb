# workerd config for bench/compare_workerd: the counter and chat examples as Durable Objects
# with SQLite storage (enableSql), as measured in the project's performance anchors.
#
#   workerd serve config.capnp [config|configMem] --socket-addr http=127.0.0.1:PORT \
#       --directory-path disk=DIR
#
# `config`: one SQLite file per object on local disk (WAL; workerd fsyncs every commit).
# `configMem`: the same objects with in-memory storage (nothing reaches the disk); the counter
# only, as in-memory storage has no SQL API and the chat room keeps its history in SQL.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .diskWorker),
    (name = "disk", disk = (path = ".storage", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const configMem :Workerd.Config = (
  services = [
    (name = "main", worker = .memWorker),
    (name = "disk", disk = (path = ".storage", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const diskWorker :Workerd.Worker = (
  modules = .modules,
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = .namespaces,
  durableObjectStorage = (localDisk = "disk"),
  bindings = .bindings,
);

const memWorker :Workerd.Worker = (
  modules = .modules,
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = .namespaces,
  durableObjectStorage = (inMemory = void),
  bindings = .bindings,
);

const modules :List(Workerd.Worker.Module) = [
  (name = "worker.js", esModule = embed "worker.js"),
  (name = "index.html", text = embed "../../examples/chat/static/index.html"),
];

const namespaces :List(Workerd.Worker.DurableObjectNamespace) = [
  (className = "Counter", uniqueKey = "raydo-bench-counter", enableSql = true),
  (className = "ChatRoom", uniqueKey = "raydo-bench-chatroom", enableSql = true),
];

const bindings :List(Workerd.Worker.Binding) = [
  (name = "COUNTER", durableObjectNamespace = "Counter"),
  (name = "ROOM", durableObjectNamespace = "ChatRoom"),
];
