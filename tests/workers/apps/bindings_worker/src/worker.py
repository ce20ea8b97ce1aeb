# D1, KV and R2 from a Python Worker, as Cloudflare's docs call them (with type annotations,
# as this repository's tests are typed).
from typing import Any
from urllib.parse import urlparse

from workers import Headers, Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Response:
        path = urlparse(request.url).path
        await self.env.DB.exec(
            "CREATE TABLE IF NOT EXISTS quotes (id INTEGER PRIMARY KEY, quote TEXT, author TEXT);"
            " INSERT OR IGNORE INTO quotes"
            " VALUES (1, 'Simple is better than complex.', 'Tim Peters');"
        )
        if path == "/d1":
            query = "SELECT quote, author FROM quotes ORDER BY id LIMIT 1;"
            results = await self.env.DB.prepare(query).all()
            data = results.results[0]
            return Response.json({"quote": data.quote, "author": data["author"]})
        if path == "/d1/add":
            body = await request.json()
            insert = self.env.DB.prepare("INSERT INTO quotes (quote, author) VALUES (?, ?)")
            done = await insert.bind(body["quote"], body["author"]).run()
            count = self.env.DB.prepare("SELECT count(*) AS n FROM quotes")
            first, raw = await self.env.DB.batch([count, count])
            columns = await count.raw({"columnNames": True})
            return Response.json(
                {
                    "last_row_id": done.meta.last_row_id,
                    "changes": done.meta.changes,
                    "n": await count.first("n"),
                    "batch": [first.results[0].n, raw.results[0]["n"]],
                    "raw": columns,
                }
            )
        if path == "/kv":
            await self.env.CACHE.put("greeting", '{"hello": "kv"}', {"expirationTtl": 3600})
            await self.env.CACHE.put("plain", "text", expirationTtl=3600)
            listed = await self.env.CACHE.list({"prefix": "gr"})
            return Response.json(
                {
                    "json": await self.env.CACHE.get("greeting", {"type": "json"}),
                    "text": await self.env.CACHE.get("plain"),
                    "keys": [k.name for k in listed.keys],
                    "missing": await self.env.CACHE.get("missing"),
                    "buffer": list(await self.env.CACHE.get("plain", "arrayBuffer")),
                    "keyword": list(await self.env.CACHE.get("plain", type="arrayBuffer")),
                    "with_metadata": (
                        await self.env.CACHE.getWithMetadata("greeting", {"type": "json"})
                    ).value,
                    "cache_status": (await self.env.CACHE.getWithMetadata("greeting")).cacheStatus,
                    "metadata_item": (await self.env.CACHE.getWithMetadata("missing"))["metadata"],
                }
            )
        if path == "/r2/meta":  # what R2's Python docs read from an object
            await self.env.FILES.put(
                "page.html", "<p>hi</p>", {"httpMetadata": {"contentType": "text/html"}}
            )
            found = await self.env.FILES.get("page.html")
            headers = Headers()
            found.writeHttpMetadata(headers)
            headers["etag"] = found.httpEtag
            listed = await self.env.FILES.list({"prefix": "page", "delimiter": "/"})
            return Response(
                await found.arrayBuffer(),
                headers={
                    **dict(headers),
                    "x-meta": str(found.httpMetadata),
                    "x-used": str(found.bodyUsed),
                    "x-listed": str([o.httpEtag == found.httpEtag for o in listed.objects]),
                    "x-prefixes": str(listed.delimitedPrefixes),
                },
            )
        if path == "/r2":
            await self.env.FILES.put("notes/a.txt", "stored in r2")
            found = await self.env.FILES.get("notes/a.txt")
            head = await self.env.FILES.head("notes/a.txt")
            listed = await self.env.FILES.list({"prefix": "notes/"})
            return Response.json(
                {
                    "text": await found.text(),
                    "size": head.size,
                    "keys": [o.key for o in listed.objects],
                }
            )
        return Response("not found", status=404)
